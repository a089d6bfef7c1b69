"""refresh_session against boto3-refresh-session 10.0.7, in one run, for
docs/benchmarks.md: the hot path (get_frozen_credentials() on a fresh
credential, and the credentials read a boto3 client's signer does for each
request), a cached client() lookup, and import plus first credentials in
a new process. Nanoseconds per call, best of five timeit runs; a custom
provider with hour-long credentials, no network.

Usage: python_bench.py  -> a Markdown table on stdout"""

import statistics
import subprocess
import sys
import time
import timeit

FIRST_CREDENTIALS = """
import datetime, time
started = time.perf_counter()
from {module} import RefreshableSession
def provider():
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    return {{"access_key": "ASIABENCH", "secret_key": "s", "token": "t",
            "expiry_time": expiry.isoformat()}}
session = RefreshableSession(method="custom", custom_credentials_method=provider,
                             region_name="us-east-1")
session.get_credentials().get_frozen_credentials()
print(time.perf_counter() - started)
"""
PROCESS_RUNS = 15


def per_call_ns(statement, number):
    return min(timeit.repeat(statement, number=number, repeat=5)) / number * 1e9


def measure(module):
    namespace = {}
    exec(FIRST_CREDENTIALS.format(module=module).replace("print(", "_ = ("), namespace)
    session = namespace["session"]
    credentials = session.get_credentials()
    client = session.client("sts")
    signer = client._request_signer
    return {
        "frozen": per_call_ns(credentials.get_frozen_credentials, 200_000),
        "signer": per_call_ns(
            lambda: signer.get_auth_instance("sts", "us-east-1", "v4"), 100_000
        ),
        "client": per_call_ns(lambda: session.client("sts"), 20_000),
        "first": statistics.median(first_credentials(module) for _ in range(PROCESS_RUNS)),
    }


def first_credentials(module):
    script = FIRST_CREDENTIALS.format(module=module)
    output = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, timeout=60
    )
    return float(output.stdout) * 1e9


def show(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.1f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def main():
    ours = measure("refresh_session")
    theirs = measure("boto3_refresh_session")
    rows = [
        ("frozen", "`get_frozen_credentials()`, fresh credential"),
        ("signer", "a client's signer reading the credentials (`get_auth_instance`)"),
        ("client", "cached `session.client(\"sts\")`"),
        ("first", "new process: import, session, first credentials"),
    ]
    print(f"measured {time.strftime('%Y-%m-%d')}, Python {sys.version.split()[0]}")
    print()
    print("| operation | boto3-refresh-session | refresh_session | ratio |")
    print("|---|---|---|---|")
    for key, label in rows:
        print(f"| {label} | {show(theirs[key])} | {show(ours[key])} | {theirs[key] / ours[key]:.1f}x |")


if __name__ == "__main__":
    main()
