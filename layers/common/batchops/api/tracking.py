"""Tracking surface (seed 004): /v1/bulk-track, /v1/track, reading an event back, and uploads
for bodies too large for the API."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.metrics import MetricUnit

from batchops.api.context import current_body, current_caller
from batchops.api.openapi import GENERATED_ID, responses
from batchops.api.router import SurfaceRouter
from batchops.encoding import MAX_BODY_BYTES
from batchops.errors import ValidationFailedError
from batchops.models.tracking import (
    MAX_MESSAGE_ID_CHARS,
    BulkTrackResponse,
    StoredEvent,
    TrackedEvent,
    TrackResponse,
    Upload,
    UploadCreated,
    request_schema,
)
from batchops.observability import metrics
from batchops.services import tracking, tracking_uploads

router = SurfaceRouter("Tracking")

# Checked once decoded (`_message_id`): encoded, a 100-character id may be 900 characters long.
MessageId = Annotated[
    str,
    Path(
        min_length=1,
        description=f"The event's messageId (at most {MAX_MESSAGE_ID_CHARS} characters), percent-encoded",
        json_schema_extra={"maxLength": MAX_MESSAGE_ID_CHARS},
    ),
]
UploadId = Annotated[str, Path(min_length=1, max_length=100, pattern=GENERATED_ID, description="The upload's id")]
INGEST_ERRORS = (413, 415)


@router.post(
    "/v1/bulk-track",
    summary="Track multiple events in bulk (optionally gzipped, at most 10 MB uncompressed)",
    max_body_bytes=MAX_BODY_BYTES,
    request_body=request_schema(TrackedEvent, array=True),
    check_body=tracking.check_bulk,
    responses=responses(200, BulkTrackResponse, *INGEST_ERRORS, 503),
)
def bulk_track() -> dict[str, Any]:
    """Valid events are accepted next to per-index `errors`; if none is valid, 400 INVALID_EVENT
    and nothing is stored. Bodies Lambda cannot receive (over ~6 MB) go through /v1/bulk-track/uploads."""
    result = tracking.track_bulk(current_caller(), current_body())
    metrics().add_metric(name="TrackedEventsAccepted", unit=MetricUnit.Count, value=len(result.messageIds))
    metrics().add_metric(name="TrackedEventsRejected", unit=MetricUnit.Count, value=len(result.errors or []))
    return result.model_dump(mode="json", exclude_none=True)


@router.post(
    "/v1/track",
    summary="Track one event",
    max_body_bytes=MAX_BODY_BYTES,
    request_body=request_schema(TrackedEvent, array=False),
    check_body=tracking.check_one,
    responses=responses(200, TrackResponse, *INGEST_ERRORS, 503),
)
def track() -> dict[str, Any]:
    result = tracking.track_one(current_caller(), current_body())
    metrics().add_metric(name="TrackedEventsAccepted", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")


@router.get(
    "/v1/track/events/{messageId}",
    summary="A tracked event as stored (to confirm delivery)",
    responses=responses(200, StoredEvent, 404),
)
def get_tracked_event(messageId: MessageId) -> dict[str, Any]:
    return tracking.get_event(current_caller().workspace_id, _message_id(messageId))


def _message_id(segment: str) -> str:
    """The messageId a path segment names. API Gateway (REST) hands the path on percent-encoded, so
    an id with a space or any non-ASCII character arrives encoded (and was never found, a 404)."""
    message_id = unquote(segment)
    if len(message_id) > MAX_MESSAGE_ID_CHARS:
        message = f"messageId must be at most {MAX_MESSAGE_ID_CHARS} characters"
        raise ValidationFailedError("Request validation failed", details=[{"field": "messageId", "error": message}])
    return message_id


@router.post(
    "/v1/bulk-track/uploads",
    status_code=201,
    summary="Start an upload of a bulk-track body too large for the API (presigned S3 POST)",
    responses=responses(201, UploadCreated),
)
def create_tracking_upload() -> dict[str, Any]:
    """POST the body (a JSON array of events, gzipped or not, at most 10 MB) as the `file` field
    of a multipart form to `url`, after `fields`; then poll GET /v1/bulk-track/uploads/{uploadId}."""
    return tracking_uploads.create_upload(current_caller()).model_dump(mode="json")


@router.get(
    "/v1/bulk-track/uploads/{uploadId}",
    summary="Status and result of an upload",
    responses=responses(200, Upload, 404),
)
def get_tracking_upload(uploadId: UploadId) -> dict[str, Any]:
    return tracking_uploads.get_upload(current_caller().workspace_id, uploadId).model_dump(mode="json")
