"""What `refresh-session credential-process` does, with
boto3-refresh-session: assume the role in argv[1] through the STS endpoint
in AWS_ENDPOINT_URL_STS and print credential_process JSON. It keeps no
cache between processes, so every run calls AssumeRole."""

import json
import os
import sys

from boto3_refresh_session import RefreshableSession

session = RefreshableSession(
    assume_role_kwargs={"RoleArn": sys.argv[1], "RoleSessionName": "python"},
    sts_client_kwargs={
        "endpoint_url": os.environ["AWS_ENDPOINT_URL_STS"],
        "region_name": "us-east-1",
    },
    region_name="us-east-1",
)
credentials = session.refreshable_credentials()
print(
    json.dumps(
        {
            "Version": 1,
            "AccessKeyId": credentials["access_key"],
            "SecretAccessKey": credentials["secret_key"],
            "SessionToken": credentials["token"],
            "Expiration": credentials["expiry_time"],
        }
    )
)
