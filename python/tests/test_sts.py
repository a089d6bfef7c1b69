"""An STS session against moto (signature checking on): boto3 clients made
once sign with each new credential across refreshes, MFA codes come from
the provider on every refresh, and whoami names the assumed role."""

import time

import boto3
from conftest import bounded

from refresh_session import RefreshableSession

SERIAL = "arn:aws:iam::123456789012:mfa/tester"


def sts_session(moto, **extra):
    return RefreshableSession(
        assume_role_kwargs={
            "RoleArn": moto["role_arn"],
            "RoleSessionName": "python",
            # Short credentials: moto issues them on loopback.
            "DurationSeconds": 4,
            "SerialNumber": SERIAL,
        },
        sts_client_kwargs={"endpoint_url": moto["url"], "region_name": "us-east-1"},
        aws_access_key_id=moto["access_key_id"],
        aws_secret_access_key=moto["secret_access_key"],
        region_name="us-east-1",
        **extra,
    )


def test_clients_sign_with_each_new_credential_and_mfa_comes_from_the_provider(moto):
    asked = []

    def mfa_code(prefix):
        asked.append(prefix)
        return "123456"

    session = sts_session(
        moto, mfa_token_provider=mfa_code, mfa_token_provider_args={"prefix": "code"}
    )
    s3 = session.client("s3", endpoint_url=moto["url"])
    sts = session.client("sts", endpoint_url=moto["url"])
    assert session.client("s3", endpoint_url=moto["url"]) is s3, "cached"
    bounded(lambda: s3.create_bucket(Bucket="python-session"))
    keys = set()
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:
        identity = bounded(sts.get_caller_identity)
        assert identity["Arn"] == "arn:aws:sts::123456789012:assumed-role/app/python"
        bounded(lambda: s3.put_object(Bucket="python-session", Key="k", Body=b"v"))
        keys.add(session.get_credentials().get_frozen_credentials().access_key)
        time.sleep(0.5)
    assert len(keys) >= 3, f"several refreshes seen by the same clients: {keys}"
    # One code per refresh; the last may still be in flight at the end.
    assert len(keys) <= len(asked) <= len(keys) + 1, (asked, keys)
    assert asked[0] == "code", "called with mfa_token_provider_args"
    assert bounded(session.whoami)["Arn"].endswith(":assumed-role/app/python")
    assert session.get_identity() == session.whoami()


def test_boto3_default_session_and_botocore_session_uses(moto):
    session = sts_session(moto, mfa_command=["sh", "-c", "echo 246810"])
    saved = boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = session
    try:
        sts = boto3.client("sts", endpoint_url=moto["url"])
        assert bounded(sts.get_caller_identity)["Arn"].endswith(":assumed-role/app/python")
    finally:
        boto3.DEFAULT_SESSION = saved
    # A plain boto3 session over the botocore session under ours.
    plain = boto3.session.Session(botocore_session=session._session)
    sts = plain.client("sts", endpoint_url=moto["url"])
    assert bounded(sts.get_caller_identity)["Arn"].endswith(":assumed-role/app/python")


def test_eager_sessions_fetch_at_construction(moto):
    session = sts_session(moto, defer_refresh=False, mfa_token_provider=lambda: "123456")
    credentials = session.refreshable_credentials()
    assert credentials["access_key"].startswith("ASIA")
    assert credentials["expiry_time"].endswith("+00:00")
    assert session.credentials["access_key"] == credentials["access_key"]
