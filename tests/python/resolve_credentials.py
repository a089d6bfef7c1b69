"""An independent oracle for the default credential chain: botocore's
resolution of the same environment and shared files.

Reads one JSON object on stdin:
  {"env": {...}, "profile": "name" or null, "whoami": true/false}
Replaces the process environment's AWS_* variables and HOME with "env",
resolves credentials with boto3 (a named profile as
boto3.Session(profile_name=...)), and prints JSON:
  {"access_key": "...", "arn": "..." (with whoami: GetCallerIdentity)}
or {"error": "ExceptionName: message"}.
"""

import json
import os
import sys

job = json.load(sys.stdin)
for name in list(os.environ):
    if name.startswith("AWS_") or name == "HOME":
        del os.environ[name]
os.environ.update(job["env"])

import boto3  # noqa: E402  (after the environment is set)

try:
    session = boto3.Session(profile_name=job.get("profile"))
    credentials = session.get_credentials()
    if credentials is None:
        print(json.dumps({"error": "NoCredentials"}))
        sys.exit(0)
    answer = {"access_key": credentials.get_frozen_credentials().access_key}
    if job.get("whoami"):
        sts = session.client("sts", region_name=session.region_name or "us-east-1")
        answer["arn"] = sts.get_caller_identity()["Arn"]
    print(json.dumps(answer))
except Exception as error:  # the oracle reports, the test judges
    print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
