"""Drives one keygate endpoint with boto3 the way applications do; exits non-zero on any mismatch.

Runs under both the pyenv Python (recent boto3) and Debian's /usr/bin/python3 (python3-boto3).
Usage: python boto3_scenario.py ENDPOINT REGION ACCESS_KEY SECRET_KEY BUCKET PREFIX
"""
import hashlib
import io
import os
import sys
import tempfile

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, region, access_key, secret_key, bucket, prefix = sys.argv[1:7]
# s3rver cannot address keys containing "//"; pass "no-double-slash" to leave that key out.
DOUBLE_SLASH = "no-double-slash" not in sys.argv[7:]
# s3rver has no ListParts and no AbortMultipartUpload; pass "no-list-parts" to skip them.
LIST_PARTS = "no-list-parts" not in sys.argv[7:]
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    region_name=region,
    aws_access_key_id=access_key,
    aws_secret_access_key=secret_key,
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
)
print("boto3", boto3.__version__, file=sys.stderr)

KEYS = [
    f"{prefix}plain.txt",
    f"{prefix}unicode ✓ é/файл.txt",
    f"{prefix}with space+plus=eq~tilde&amp.txt",
] + ([f"{prefix}a//double/slash"] if DOUBLE_SLASH else [])


def check(condition, message):
    if not condition:
        raise SystemExit(f"FAIL: {message}")


# put / head / get for every awkward key
for index, key in enumerate(KEYS):
    body = f"payload {index} for {key}".encode() * (index + 1)
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/plain", Metadata={"origin": "boto3"})
    check(put["ETag"].strip('"') == hashlib.md5(body).hexdigest(), f"single PUT ETag is MD5 for {key!r}")
    head = s3.head_object(Bucket=bucket, Key=key)
    check(head["ContentLength"] == len(body), f"HEAD length for {key!r}")
    check(head["Metadata"].get("origin") == "boto3", f"metadata kept for {key!r}")
    got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    check(got == body, f"GET returns the bytes for {key!r}")

# range
ranged = s3.get_object(Bucket=bucket, Key=KEYS[0], Range="bytes=2-5")
check(ranged["Body"].read() == b"payload 0"[2:6], "range GET")
check(ranged["ContentRange"].startswith("bytes 2-5/"), "Content-Range passed through")

# list with prefix and delimiter
listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
names = sorted(obj["Key"] for obj in listed.get("Contents", []))
check(names == sorted(KEYS), f"ListObjectsV2 lists all keys: {names}")
delimited = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/")
check(any(p["Prefix"] == f"{prefix}unicode ✓ é/" for p in delimited.get("CommonPrefixes", [])), "delimiter common prefixes")
v1 = s3.list_objects(Bucket=bucket, Prefix=prefix)
check(len(v1.get("Contents", [])) == len(KEYS), "ListObjects v1")

# copy
s3.copy_object(Bucket=bucket, Key=f"{prefix}copy of ✓.txt", CopySource={"Bucket": bucket, "Key": KEYS[1]})
check(s3.get_object(Bucket=bucket, Key=f"{prefix}copy of ✓.txt")["Body"].read() == s3.get_object(Bucket=bucket, Key=KEYS[1])["Body"].read(), "copy")

# multipart with 5 parts (5 MiB minimum for all but the last)
part_size = 5 * 1024 * 1024
parts_data = [os.urandom(part_size) for _ in range(4)] + [os.urandom(1234)]
mp_key = f"{prefix}multipart ✓+.bin"
upload = s3.create_multipart_upload(Bucket=bucket, Key=mp_key)
parts = []
for number, data in enumerate(parts_data, start=1):
    response = s3.upload_part(Bucket=bucket, Key=mp_key, UploadId=upload["UploadId"], PartNumber=number, Body=data)
    parts.append({"PartNumber": number, "ETag": response["ETag"]})
if LIST_PARTS:
    listed_parts = s3.list_parts(Bucket=bucket, Key=mp_key, UploadId=upload["UploadId"])
    check(len(listed_parts["Parts"]) == 5, "ListParts shows 5 parts")
s3.complete_multipart_upload(Bucket=bucket, Key=mp_key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts})
whole = s3.get_object(Bucket=bucket, Key=mp_key)["Body"].read()
check(whole == b"".join(parts_data), "multipart object content")

# abort
if LIST_PARTS:
    aborted = s3.create_multipart_upload(Bucket=bucket, Key=f"{prefix}aborted")
    s3.abort_multipart_upload(Bucket=bucket, Key=f"{prefix}aborted", UploadId=aborted["UploadId"])

# managed transfer (upload_file/download_file switch to multipart above the threshold)
from boto3.s3.transfer import TransferConfig

transfer = TransferConfig(multipart_threshold=6 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
with tempfile.TemporaryDirectory() as tmp:
    src = os.path.join(tmp, "big.bin")
    with open(src, "wb") as handle:
        handle.write(os.urandom(13 * 1024 * 1024))
    s3.upload_file(src, bucket, f"{prefix}transfer.bin", Config=transfer)
    dst = os.path.join(tmp, "back.bin")
    s3.download_file(bucket, f"{prefix}transfer.bin", dst, Config=transfer)
    check(open(src, "rb").read() == open(dst, "rb").read(), "upload_file/download_file round trip")
    s3.upload_fileobj(io.BytesIO(b"small"), bucket, f"{prefix}fileobj.txt")

# delete one, then the rest in one DeleteObjects
s3.delete_object(Bucket=bucket, Key=KEYS[0])
try:
    s3.head_object(Bucket=bucket, Key=KEYS[0])
    raise SystemExit("FAIL: deleted object still there")
except ClientError as error:
    check(error.response["ResponseMetadata"]["HTTPStatusCode"] == 404, "HEAD after delete is 404")
remaining = [obj["Key"] for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in remaining]})
check(sorted(d["Key"] for d in result.get("Deleted", [])) == sorted(remaining), f"DeleteObjects reports every key: errors={result.get('Errors')} deleted={result.get('Deleted')} expected={remaining}")
check(s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount", 0) == 0, "bucket prefix empty after DeleteObjects")

# bucket-level
s3.head_bucket(Bucket=bucket)
location = s3.get_bucket_location(Bucket=bucket)
check("LocationConstraint" in location, "GetBucketLocation answers")
buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
check(bucket in buckets, f"ListBuckets shows {bucket}: {buckets}")
print("OK boto3", boto3.__version__)
