"""Tracked events (seed 004): what one event must carry. Other top-level fields are allowed
and kept as sent."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from batchops.models.base import Model

MAX_EVENT_BYTES = 64 * 1024  # one event, serialized
MAX_MESSAGE_ID_CHARS = 100
# RFC 3339 starts with a full date and a time: what tells it from the Unix times pydantic also reads.
_RFC_3339_START = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _rfc_3339_text(value: Any) -> Any:
    """The seed's `timestamp` is `type: string, format: date-time`. pydantic's lax datetime also
    takes a JSON number, or a string of digits, as Unix time: refused, so a client's epoch
    milliseconds never become a date in the year 57,000."""
    if not isinstance(value, str) or not _RFC_3339_START.match(value):
        raise ValueError("must be an RFC 3339 date-time string with an offset, e.g. 2025-10-29T22:00:00.778Z")
    return value


Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_rfc_3339_text)]


class TrackedEvent(Model):
    model_config = ConfigDict(extra="allow")

    event: str = Field(min_length=1, description="The name/type of the event")
    properties: dict[str, Any] = Field(description="Event-specific key/value pairs")
    timestamp: Rfc3339 = Field(description="When the event occurred (RFC 3339, with an offset or Z)")
    messageId: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_MESSAGE_ID_CHARS,
        description="Unique id for de-duplication; generated (UUID) when absent",
    )


class TrackingError(Model):
    index: int = Field(description="Position of the event in the request")
    error: str


class BulkTrackResponse(Model):
    status: str = Field(default="ok", description="Always ok: the accepted events are queued")
    messageIds: list[str] = Field(description="Ids of the accepted events, in request order")
    errors: list[TrackingError] | None = Field(default=None, description="Events left out, by index")


class TrackResponse(Model):
    status: str = "ok"
    messageId: str


class StoredEvent(Model):
    """A tracked event as stored: the fields it was sent with, plus messageId and receivedAt."""

    model_config = ConfigDict(extra="allow")

    messageId: str
    receivedAt: str = Field(description="When batchops received it (UTC)")


class UploadStatus(StrEnum):
    PENDING = "pending"  # created; waiting for the object
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class UploadCreated(Model):
    """How to send a body too large for the API: a presigned S3 POST (a multipart form)."""

    uploadId: str
    status: UploadStatus
    method: str = Field(default="POST", description="Send a multipart/form-data POST to url")
    url: str = Field(description="Where to POST the form")
    fields: dict[str, str] = Field(description="Form fields to send, in this order, before the file field")
    fileField: str = Field(default="file", description="Name of the form field that carries the body (last)")
    maxBytes: int = Field(description="The largest file S3 accepts (gzip or JSON)")
    expiresAt: str = Field(description="The form is valid until then (UTC)")


class Upload(Model):
    uploadId: str
    status: UploadStatus
    createdAt: str
    completedAt: str | None = None
    accepted: int | None = Field(default=None, description="Events accepted (when completed)")
    rejected: int | None = Field(default=None, description="Events left out (when completed)")
    error: dict[str, Any] | None = Field(default=None, description="Why the whole upload failed (when failed)")
    resultUrl: str | None = Field(
        default=None,
        description="A short-lived link to the result: the body POST /v1/bulk-track would have answered",
    )


def request_schema(model: type[BaseModel], *, array: bool) -> dict[str, Any]:
    """OpenAPI requestBody for routes that read their own body (tracking parses raw bytes itself,
    for speed and for the seed's 400s)."""
    schema: dict[str, Any] = model.model_json_schema()
    if array:
        schema = {"type": "array", "items": schema, "minItems": 1}
    return {"required": True, "content": {"application/json": {"schema": schema}}}
