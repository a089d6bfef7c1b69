"""Bootstraps a fresh moto server for refresh-session's tests.

Creates an IAM user allowed everything, its access key, a role it may
assume, and a second role whose trust policy demands an ExternalId. These
are the only unauthenticated calls: moto verifies SigV4 from the next
request on (INITIAL_NO_AUTH_ACTION_COUNT must equal CALLS).

Usage: bootstrap_moto.py ENDPOINT_URL  -> prints JSON on stdout
"""

import json
import sys

import boto3

CALLS = 7
ACCOUNT = "123456789012"
EXTERNAL_ID = "refresh-session-external-id"


def trust(user_arn, condition=None):
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": user_arn},
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def bootstrap(endpoint):
    """Makes the user and roles; returns their keys and ARNs."""
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
    )
    user = iam.create_user(UserName="tester")["User"]
    iam.put_user_policy(
        UserName="tester",
        PolicyName="everything",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="tester")["AccessKey"]
    role = iam.create_role(RoleName="app", AssumeRolePolicyDocument=trust(user["Arn"]))
    # Sessions of `app` may assume roles in turn (profile chains) and use
    # S3 (programs run by `refresh-session exec`).
    iam.put_role_policy(
        RoleName="app",
        PolicyName="assume-roles-and-s3",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["sts:AssumeRole", "s3:*"],
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    # A role that sessions of `app` may assume: the second hop of a profile
    # chain. moto matches principals by exact ARN or `*`, and a role
    # session's ARN names the session, so `*` it is.
    chained = iam.create_role(
        RoleName="app-chained",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "*"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    external = iam.create_role(
        RoleName="app-external",
        AssumeRolePolicyDocument=trust(
            user["Arn"], {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}
        ),
    )
    return {
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
        "user_arn": user["Arn"],
        "role_arn": role["Role"]["Arn"],
        "external_role_arn": external["Role"]["Arn"],
        "chained_role_arn": chained["Role"]["Arn"],
        "external_id": EXTERNAL_ID,
        "initial_no_auth_action_count": CALLS,
    }


if __name__ == "__main__":
    print(json.dumps(bootstrap(sys.argv[1])))
