"""S3 objects: presigned upload forms and download links, bounded reads, small JSON writes."""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from batchops.dal import clients
from batchops.errors import PayloadTooLargeError


class ObjectChangedError(Exception):
    """The object is gone, or is no longer the one announced (replaced since)."""


@dataclass(frozen=True)
class UploadForm:
    url: str
    fields: dict[str, str]


def presigned_post(bucket: str, key: str, *, max_bytes: int, expires_seconds: int) -> UploadForm:
    """A form that can create exactly `key`, of 1 to `max_bytes` bytes, until it expires: S3
    checks the policy, so a client cannot write elsewhere or send more."""
    post = clients.client("s3").generate_presigned_post(
        Bucket=bucket,
        Key=key,
        Conditions=[["content-length-range", 1, max_bytes]],
        ExpiresIn=expires_seconds,
    )
    return UploadForm(str(post["url"]), {str(k): str(v) for k, v in post["fields"].items()})


def read_object(bucket: str, key: str, *, etag: str, max_bytes: int) -> bytes:
    """The object's bytes, if it is still the version with `etag` and at most `max_bytes` long.
    Reads at most max_bytes + 1 bytes whatever the object claims to be."""
    try:
        response = clients.client("s3").get_object(Bucket=bucket, Key=key, IfMatch=etag)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "PreconditionFailed", "412", "404"):
            raise ObjectChangedError(key) from None
        raise
    body = response["Body"]
    try:
        if int(response.get("ContentLength") or 0) > max_bytes:
            raise PayloadTooLargeError(f"object is {int(response['ContentLength']):,} bytes")
        data: bytes = body.read(max_bytes + 1)
    finally:
        body.close()
    if len(data) > max_bytes:
        raise PayloadTooLargeError(f"object is over {max_bytes:,} bytes")
    return data


def put_json(bucket: str, key: str, text: str) -> None:
    clients.client("s3").put_object(Bucket=bucket, Key=key, Body=text.encode(), ContentType="application/json")


def presigned_get(bucket: str, key: str, *, expires_seconds: int) -> str:
    return str(
        clients.client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_seconds
        )
    )


def delete_object(bucket: str, key: str) -> None:
    clients.client("s3").delete_object(Bucket=bucket, Key=key)


def put_file(bucket: str, key: str, data: bytes, *, content_type: str, filename: str) -> None:
    """An export, downloaded under `filename` through its presigned link."""
    clients.client("s3").put_object(
        Bucket=bucket,
        Key=key,
        Body=data,
        ContentType=content_type,
        ContentDisposition=f'attachment; filename="{filename}"',
    )
