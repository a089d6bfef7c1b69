"""boto3-refresh-session's hot paths, for docs/benchmarks.md: a fresh
credential from `refreshable_credentials()` and a cached `client("s3")`,
in nanoseconds per call (best of five timeit runs). No network: the
custom provider returns an hour-long credential."""

import datetime
import json
import timeit

from boto3_refresh_session import RefreshableSession


def provider():
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    return {
        "access_key": "ASIABENCH",
        "secret_key": "bench-secret",
        "token": "bench-token",
        "expiry_time": expiry.isoformat(),
    }


def per_call_ns(statement, number):
    return min(timeit.repeat(statement, number=number, repeat=5)) / number * 1e9


session = RefreshableSession(
    method="custom", custom_credentials_method=provider, region_name="us-east-1"
)
session.refreshable_credentials()
session.client("s3")
print(
    json.dumps(
        {
            "refreshable_credentials_ns": per_call_ns(session.refreshable_credentials, 100_000),
            "cached_client_ns": per_call_ns(lambda: session.client("s3"), 20_000),
        }
    )
)
