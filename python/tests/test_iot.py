"""IoT X.509 credentials from the project's loopback credential provider,
with a PEM key (as a path and as bytes) and with a key in a SoftHSM2
token; the credentials handed out are the ones the provider issued."""

from conftest import bounded

from refresh_session import RefreshableSession


def iot_session(iot, **key):
    return RefreshableSession(
        method="iot",
        endpoint=iot["endpoint"],
        role_alias="python-role",
        thing_name="python-thing",
        ca=str(iot["dir"] / "ca.pem"),
        duration_seconds=900,
        region_name="us-east-1",
        **key,
    )


def test_pem_keys_as_paths_and_as_bytes(iot):
    dir = iot["dir"]
    for certificate, key in [
        (str(dir / "device.pem"), str(dir / "device.key")),
        ((dir / "device.pem").read_bytes(), (dir / "device.key").read_bytes()),
    ]:
        session = iot_session(iot, certificate=certificate, private_key=key)
        credentials = bounded(session.refreshable_credentials)
        assert credentials["access_key"] in iot["issued"]()


def test_a_key_in_a_softhsm2_token(iot):
    session = iot_session(
        iot,
        certificate=str(iot["dir"] / "hsm-device.pem"),
        pkcs11={
            "pkcs11_lib": iot["module"],
            "user_pin": "python-pin-1357",
            "token_label": "python-token",
            "private_key_label": "device-key",
        },
    )
    frozen = bounded(session.get_credentials().get_frozen_credentials)
    assert frozen.access_key == iot["issued"]()[-1]
