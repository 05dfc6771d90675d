"""boto3 managed transfers with the SDK's own checksum defaults, one step after another; prints JSON.

Usage: python boto3_upload_fileobj.py ENDPOINT REGION ACCESS_KEY SECRET_KEY STEPS_JSON
STEPS_JSON is a list of steps, each one of
  ["upload", BUCKET, KEY, FILE]    upload_fileobj (multipart above 8 MiB, 5 MiB parts)
  ["download", BUCKET, KEY, FILE]  download_fileobj
  ["list", BUCKET, PREFIX]         list_objects_v2
The client is configured like an application's: no checksum settings, so a recent boto3 computes
CRC32 flexible checksums on every upload (request_checksum_calculation=when_supported).
Prints {"config": ..., "results": [...], "requests": [...]}: per step {"ok": true, ...} or
{"ok": false, "code": S3 error code, "status": HTTP status}; per request sent, its operation and
checksum headers. Exits non-zero only on unexpected failures (anything but a ClientError).
"""
import json
import sys

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, region, access_key, secret_key, steps_json = sys.argv[1:6]
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    region_name=region,
    aws_access_key_id=access_key,
    aws_secret_access_key=secret_key,
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
)
transfer = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)

requests = []


def record(request, event_name, **_):
    headers = {name.lower(): value.decode() if isinstance(value, bytes) else value for name, value in request.headers.items()}
    requests.append(
        {
            "operation": event_name.rsplit(".", 1)[-1],
            "checksumHeaders": sorted(name for name in headers if name.startswith("x-amz-checksum-")),
            "sdkChecksumAlgorithm": headers.get("x-amz-sdk-checksum-algorithm"),
            "trailer": headers.get("x-amz-trailer"),
        }
    )


s3.meta.events.register("before-send.s3", record)


def step(kind, *args):
    if kind == "upload":
        bucket, key, path = args
        with open(path, "rb") as handle:
            s3.upload_fileobj(handle, bucket, key, Config=transfer)
        return {}
    if kind == "download":
        bucket, key, path = args
        with open(path, "wb") as handle:
            s3.download_fileobj(bucket, key, handle, Config=transfer)
        return {}
    if kind == "list":
        bucket, prefix = args
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return {"keys": sorted(item["Key"] for item in listed.get("Contents", []))}
    raise SystemExit(f"unknown step {kind!r}")


results = []
for entry in json.loads(steps_json):
    try:
        results.append({"ok": True, **step(*entry)})
    except ClientError as error:
        results.append(
            {
                "ok": False,
                "code": error.response.get("Error", {}).get("Code"),
                "status": error.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            }
        )

config = {
    "boto3": boto3.__version__,
    "requestChecksumCalculation": getattr(s3.meta.config, "request_checksum_calculation", None),
}
print(json.dumps({"config": config, "results": results, "requests": requests}))
