"""Bad input is a ConfigurationError at construction that says what to
fix; the exception classes form one hierarchy."""

import pytest

import refresh_session
from refresh_session import ConfigurationError, RefreshableSession, RefreshSessionError


def test_one_hierarchy():
    for name in ("ConfigurationError", "CredentialError", "ConnectionError", "RequestError"):
        assert issubclass(getattr(refresh_session, name), RefreshSessionError)
    assert issubclass(RefreshSessionError, Exception)


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"method": "ldap"}, "method"),
        ({}, "assume_role_kwargs"),
        ({"assume_role_kwargs": {"RoleArn": "not-an-arn"}}, "RoleArn"),
        ({"assume_role_kwargs": {"RoleArn": "arn:aws:iam::123456789012:role/r", "Rolearn": "x"}},
         "Rolearn"),
        (
            {
                "assume_role_kwargs": {"RoleArn": "arn:aws:iam::123456789012:role/r"},
                "mfa_token_provider": lambda: "123456",
            },
            "SerialNumber",
        ),
        (
            {
                "assume_role_kwargs": {
                    "RoleArn": "arn:aws:iam::123456789012:role/r",
                    "DurationSeconds": 1.5,
                }
            },
            "DurationSeconds",
        ),
        ({"method": "custom"}, "custom_credentials_method"),
        ({"method": "custom", "custom_credentials_method": print, "role_alias": "x"}, "role_alias"),
        ({"method": "iot", "endpoint": "x", "role_alias": "y"}, "certificate"),
        (
            {
                "method": "iot",
                "endpoint": "x",
                "role_alias": "y",
                "certificate": "c.pem",
                "pkcs11": {"pkcs11_lib": "/m.so", "user_pin": "1", "private_key_label": "k"},
            },
            "slot_id or token_label",
        ),
        ({"method": "custom", "custom_credentials_method": print, "advisory_timeout": "soon"},
         "advisory_timeout"),
        ({"aws_access_key_id": "AKIA", "assume_role_kwargs": {"RoleArn": "x"}},
         "aws_secret_access_key"),
    ],
)
def test_bad_input_says_what_to_fix(kwargs, says):
    with pytest.raises(ConfigurationError) as raised:
        RefreshableSession(region_name="us-east-1", **kwargs)
    assert says in str(raised.value)


def test_a_pin_is_never_in_an_error():
    with pytest.raises(RefreshSessionError) as raised:
        RefreshableSession(
            method="iot",
            endpoint="127.0.0.1:1",
            role_alias="r",
            certificate="/nonexistent/cert.pem",
            pkcs11={
                "pkcs11_lib": "/nonexistent/module.so",
                "user_pin": "secret-pin-8642",
                "token_label": "t",
                "private_key_label": "k",
            },
        )
    assert "secret-pin-8642" not in str(raised.value)
    assert "secret-pin-8642" not in repr(raised.value)
