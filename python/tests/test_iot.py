"""IoT X.509 credentials from the project's loopback credential provider,
with a PEM key (as a path and as bytes) and with a key in a SoftHSM2
token; the credentials handed out are the ones the provider issued; MQTT
over the device's identity to mosquitto."""

import queue

import pytest
from conftest import bounded

from refresh_session import ConnectionError, RefreshableSession


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


def test_mqtt_over_the_devices_identity(iot):
    dir = iot["dir"]
    session = iot_session(
        iot, certificate=str(dir / "device.pem"), private_key=str(dir / "device.key")
    )
    connection = session.mqtt(
        "127.0.0.1", port=iot["mqtt_port"], ca=str(dir / "ca.pem"), timeout=20
    )
    received = queue.Queue()
    try:
        connection.subscribe("python/#", lambda topic, payload: received.put((topic, payload)))
        # The subscription may land after a first publish: publish until
        # the message comes back, a bounded number of times.
        for _ in range(20):
            connection.publish("python/hello", b"from the device")
            try:
                assert received.get(timeout=1) == ("python/hello", b"from the device")
                break
            except queue.Empty:
                continue
        else:
            raise AssertionError("the message never came back")
    finally:
        connection.disconnect()


def test_mqtt_to_a_broker_that_is_not_there_is_a_connection_error(iot):
    dir = iot["dir"]
    session = iot_session(
        iot, certificate=str(dir / "device.pem"), private_key=str(dir / "device.key")
    )
    with pytest.raises(ConnectionError):
        # A port nothing listens on (the provider's speaks HTTPS, not MQTT).
        bounded(lambda: session.mqtt("127.0.0.1", port=1, ca=str(dir / "ca.pem"), timeout=5))
