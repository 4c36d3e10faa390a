"""Bulk-track bodies too large for the API (Lambda takes at most 6 MB per request): the client
sends them to S3 with a presigned POST form, and an S3-notified worker ingests each object as
POST /v1/bulk-track would, keeping the answer for GET /v1/bulk-track/uploads/{uploadId}.

An upload is claimed for one object version (its ETag) with a conditional write, so a duplicate
notification, a redelivered message or a second object sent with the same form change nothing.
Events without a messageId get ids derived from the upload, so ingesting an object again (after
a crash) stores the same events under the same ids.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

from batchops.dal.items import iso
from batchops.dal.messaging import delay_message
from batchops.dal.objects import (
    ObjectChangedError,
    delete_object,
    presigned_get,
    presigned_post,
    put_json,
    read_object,
)
from batchops.dal.tracking import TrackingUploadRepository
from batchops.encoding import GZIP_MAGIC, MAX_BODY_BYTES, decoded_body, too_large
from batchops.errors import BadRequestError, BatchopsError, NotFoundError, PayloadTooLargeError, RateLimitedError
from batchops.models.common import Caller, Plan, error_body
from batchops.models.tracking import Upload, UploadCreated, UploadStatus
from batchops.observability import logger
from batchops.services import tracking
from batchops.settings import get_settings

UPLOAD_PREFIX = "uploads/"
RESULT_PREFIX = "results/"
FORM_SECONDS = 15 * 60  # how long the upload form is valid
LINK_SECONDS = 15 * 60  # how long a result link is valid
RECORD_SECONDS = 7 * 24 * 3600  # upload records and results are kept a week (the bucket's lifecycle)
# Failed ingestions of one object before its upload ends failed: under TrackingUploadQueue's
# maxReceiveCount (10), leaving receives for waits on the events budget.
MAX_INGEST_FAILURES = 5
FINISHED = ("completed", "failed")
_IDS = uuid.UUID("6f1e4c1a-6b0e-4d9e-9a57-4b3f0f1d2c11")  # namespace of the ids derived from uploads


def object_key(workspace_id: str, upload_id: str) -> str:
    return f"{UPLOAD_PREFIX}{quote(workspace_id, safe='')}/{upload_id}"


def result_key(workspace_id: str, upload_id: str) -> str:
    return f"{RESULT_PREFIX}{quote(workspace_id, safe='')}/{upload_id}.json"


def _repository() -> TrackingUploadRepository:
    return TrackingUploadRepository(get_settings().table_name)


def create_upload(caller: Caller, now: datetime | None = None) -> UploadCreated:
    settings = get_settings()
    created = now or datetime.now(UTC)
    upload_id = f"upl_{uuid.uuid4().hex}"
    _repository().create(
        caller.workspace_id,
        upload_id,
        created_at=iso(created),
        expires_at=int(created.timestamp()) + RECORD_SECONDS,
        caller={"key_id": caller.key_id, "plan": caller.plan.value},
    )
    form = presigned_post(
        settings.tracking_upload_bucket,
        object_key(caller.workspace_id, upload_id),
        max_bytes=MAX_BODY_BYTES,
        expires_seconds=FORM_SECONDS,
    )
    return UploadCreated(
        uploadId=upload_id,
        status=UploadStatus.PENDING,
        url=form.url,
        fields=form.fields,
        maxBytes=MAX_BODY_BYTES,
        expiresAt=iso(created + timedelta(seconds=FORM_SECONDS)),
    )


def get_upload(workspace_id: str, upload_id: str) -> Upload:
    item = _repository().get(workspace_id, upload_id)
    if item is None:
        raise NotFoundError(f"No upload {upload_id}")
    status = UploadStatus(item["status"])
    link = None
    if status in (UploadStatus.COMPLETED, UploadStatus.FAILED):
        link = presigned_get(
            get_settings().tracking_upload_bucket, result_key(workspace_id, upload_id), expires_seconds=LINK_SECONDS
        )
    return Upload(
        uploadId=upload_id,
        status=status,
        createdAt=item["created_at"],
        completedAt=item.get("completed_at"),
        accepted=item.get("accepted"),
        rejected=item.get("rejected"),
        error=item.get("error"),
        resultUrl=link,
    )


def parse_object_key(key: str) -> tuple[str, str] | None:
    """(workspace, upload id) of an uploads/ key."""
    parts = key.split("/")
    if len(parts) != 3 or f"{parts[0]}/" != UPLOAD_PREFIX or not parts[2].startswith("upl_"):
        return None
    return unquote(parts[1]), parts[2]


def ingest(bucket: str, key: str, etag: str, received_at: str) -> str:
    """Ingest one uploaded object (`key` as stored, not URL-encoded); returns what happened
    ("completed", "failed", "ignored"). Raises RateLimitedError when the workspace's events budget
    is spent (the caller retries after Retry-After) and StorageError when AWS failed (retried)."""
    received_at = iso(datetime.fromisoformat(received_at))
    parsed = parse_object_key(key)
    if parsed is None:
        logger().warning("Ignored an object outside the upload layout", extra={"key": key})
        return "ignored"
    workspace_id, upload_id = parsed
    repository = _repository()
    record = repository.get(workspace_id, upload_id)
    if record is None or not repository.claim(workspace_id, upload_id, etag):
        if record is not None and record.get("status") in FINISHED and record.get("etag") == etag:
            # This version was ingested and its record finished, but removing the object failed
            # (or the worker died first): that is all that is left to do.
            delete_object(bucket, key)
        # Unknown, already ingested, or held by another version of the object: this one is not
        # ours to ingest (the form can be used more than once until it expires).
        logger().info(
            "Upload not ingested again", extra={"upload_id": upload_id, "status": (record or {}).get("status")}
        )
        return "ignored"
    caller = Caller(workspace_id=workspace_id, key_id=str(record.get("key_id", "upload")), plan=Plan(record["plan"]))
    fields: dict[str, Any] | None = None
    try:
        fields, result = _ingested(caller, upload_id, bucket, key, etag, received_at)
        put_json(bucket, result_key(workspace_id, upload_id), result)
    except RateLimitedError:
        raise  # waiting for the budget is not a failure
    except Exception:
        failures = repository.count_failure(workspace_id, upload_id, etag)
        if failures is None or failures < MAX_INGEST_FAILURES:
            raise  # the message comes back: transient AWS trouble usually passes
        # Give up before the queue's maxReceiveCount would move the notification to the DLQ and
        # leave the upload `processing` for good: the client learns it failed and uploads again.
        # Events already queued (only the result file would not be written) keep the upload
        # completed with its counts: failing it would have the client send them again.
        logger().exception("Upload could not be finished normally; it ends now", extra={"upload_id": upload_id})
        if fields is None:
            stuck = BatchopsError("The upload could not be ingested; create a new upload", code="INGEST_FAILED")
            fields = {"status": "failed", "error": {"error": stuck.message, "code": stuck.code}}
            result = json.dumps(error_body(stuck.message, stuck.code))
        try:
            put_json(bucket, result_key(workspace_id, upload_id), result)
        except Exception:  # noqa: BLE001 - the record says how it ended; the result file is a copy
            logger().warning("Result of a failed upload not written", extra={"upload_id": upload_id}, exc_info=True)
    repository.finish(workspace_id, upload_id, etag, {**fields, "completed_at": iso(datetime.now(UTC))})
    delete_object(bucket, key)
    return str(fields["status"])


def _ingested(
    caller: Caller, upload_id: str, bucket: str, key: str, etag: str, received_at: str
) -> tuple[dict[str, Any], str]:
    """The upload record's fields and the result document, for an object read and queued, or
    refused as bulk-track would refuse it."""
    workspace_id = caller.workspace_id
    try:
        checked = tracking.accept(
            caller,
            _events_of_object(bucket, key, etag),
            received_at,
            lambda position: str(uuid.uuid5(_IDS, f"{workspace_id}/{upload_id}/{position}")),
            all_or_retry=True,
        )
    except (BadRequestError, PayloadTooLargeError) as error:
        failed = {"status": "failed", "error": {"error": error.message, "code": error.code}}
        return failed, json.dumps(error_body(error.message, error.code, error.details))
    except ObjectChangedError:
        gone = BatchopsError("The upload was replaced or removed while being read; create a new upload", code="GONE")
        return {"status": "failed", "error": {"error": gone.message, "code": gone.code}}, json.dumps(
            error_body(gone.message, gone.code)
        )
    result = tracking.bulk_response(checked).model_dump_json(exclude_none=True)
    return {"status": "completed", "accepted": len(checked.accepted), "rejected": len(checked.errors)}, result


def defer(receipt_handle: str, seconds: int) -> None:
    """Hide the upload's notification until the workspace's events budget has room again."""
    delay_message(get_settings().tracking_upload_queue_url, receipt_handle, min(seconds, 12 * 3600))


def _events_of_object(bucket: str, key: str, etag: str) -> list[Any]:
    try:
        raw = read_object(bucket, key, etag=etag, max_bytes=MAX_BODY_BYTES)
    except PayloadTooLargeError:
        raise too_large() from None
    # An object has no Content-Encoding of its own to trust: a gzip stream announces itself.
    body = decoded_body(raw, "gzip" if raw[:2] == GZIP_MAGIC else None)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("Malformed JSON body: not UTF-8 text", code="MALFORMED_JSON") from None
    return tracking.events_of(tracking.parse_body(text))
