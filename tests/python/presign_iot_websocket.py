"""An independent oracle for AWS IoT WebSocket URLs: botocore's SigV4
query-string presigner, with AWS IoT's session-token quirk (the token is
appended after the signature, not signed).

Reads JSON lines on stdin, each
  {"url": "https://host[:port]/mqtt", "region": "..", "timestamp":
   "YYYYMMDDTHHMMSSZ", "access_key": "..", "secret_key": "..",
   "token": ".." or null}
and prints the presigned wss:// URL for each, one per line.
"""

import datetime
import json
import sys
from unittest import mock
from urllib.parse import quote

from botocore import auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

EXPIRES = 86400


def presign(job):
    at = datetime.datetime.strptime(job["timestamp"], "%Y%m%dT%H%M%SZ")
    # Signed without the token: AWS IoT wants it unsigned.
    credentials = Credentials(job["access_key"], job["secret_key"])
    signer = auth.SigV4QueryAuth(
        credentials, "iotdevicegateway", job["region"], expires=EXPIRES
    )
    request = AWSRequest(method="GET", url=job["url"])
    with mock.patch.object(auth, "get_current_datetime", return_value=at):
        signer.add_auth(request)
    url = request.url
    if job.get("token"):
        url += "&X-Amz-Security-Token=" + quote(job["token"], safe="")
    return url.replace("https://", "wss://", 1)


for line in sys.stdin:
    if line.strip():
        print(presign(json.loads(line)), flush=True)
