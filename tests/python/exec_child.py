"""A long-running boto3 program for `refresh-session exec`: the test's and
the demo's child.

Usage: exec_child.py ENDPOINT_URL SECONDS

For SECONDS it keeps calling STS GetCallerIdentity and S3 (put, list, get)
on ENDPOINT_URL with the credentials boto3 finds on its own: those of the
container endpoint `refresh-session exec` serves. It prints a line each time
the access key changes, then one JSON summary line:
  {"keys": [...], "calls": n, "arn": "...", "endpoint": FULL_URI,
   "without_token": status, "wrong_token": status}
Any failed call raises: the exit status is not 0.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

import boto3


def status_of(url, token=None):
    """The HTTP status the credential endpoint answers."""
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", token)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def main(endpoint, seconds):
    session = boto3.Session(region_name="us-east-1")
    sts = session.client("sts", endpoint_url=endpoint)
    s3 = session.client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket="refresh-session-demo")
    keys, calls, arn = [], 0, None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        key = session.get_credentials().get_frozen_credentials().access_key
        if not keys or keys[-1] != key:
            keys.append(key)
            print(f"child: credentials {len(keys)}: {key}", flush=True)
        arn = sts.get_caller_identity()["Arn"]
        body = f"call {calls}".encode()
        s3.put_object(Bucket="refresh-session-demo", Key="last", Body=body)
        listed = s3.list_objects_v2(Bucket="refresh-session-demo")["KeyCount"]
        got = s3.get_object(Bucket="refresh-session-demo", Key="last")["Body"].read()
        assert listed == 1 and got == body, (listed, got)
        calls += 1
        time.sleep(0.25)
    uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    summary = {
        "keys": keys,
        "calls": calls,
        "arn": arn,
        "endpoint": uri,
        "without_token": status_of(uri),
        "wrong_token": status_of(uri, "not-the-token"),
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
