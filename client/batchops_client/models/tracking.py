"""Tracking (seed 004, `/v1/track`, `/v1/bulk-track`): what its calls answer."""

from __future__ import annotations

from typing import Any, Optional

from batchops_client.models.events import CamelModel

# An upload in one of these states changes no more.
UPLOAD_FINISHED = frozenset({"completed", "failed"})


class TrackResult(CamelModel):
    """`track.track`: the event's messageId (generated when the event had none)."""

    status: str = "ok"
    message_id: str


class TrackingError(CamelModel):
    """An event left out, by its position in what was sent."""

    index: int
    error: str


class BulkTrackResult(CamelModel):
    """`track.bulk` / `track.wait_for_upload`: the accepted events' messageIds in input order, and
    the events left out (`errors`, by index into the input; empty when none was)."""

    status: str = "ok"
    message_ids: list[str] = []
    errors: list[TrackingError] = []


class TrackedEvent(CamelModel):
    """`track.get_event`: a tracked event as stored, with every field it was sent with."""

    message_id: str
    received_at: Optional[str] = None
    event: Optional[str] = None
    properties: dict[str, Any] = {}
    timestamp: Optional[str] = None


class TrackingUpload(CamelModel):
    """`track.upload`: an upload whose body was sent to S3; follow it with `wait_for_upload`.
    `url`, `fields` and `file_field` are the presigned S3 form it was sent with."""

    upload_id: str
    status: str
    method: str = "POST"
    url: str
    fields: dict[str, str] = {}
    file_field: str = "file"
    max_bytes: Optional[int] = None
    expires_at: Optional[str] = None


class Upload(CamelModel):
    """`track.get_upload`: an upload's state, its counts once done, and a short-lived link to its
    result (what bulk-track would have answered, or its error)."""

    upload_id: str
    status: str
    created_at: Optional[str] = None
    completed_at: Optional[str] = None
    accepted: Optional[int] = None
    rejected: Optional[int] = None
    error: Optional[dict[str, Any]] = None
    result_url: Optional[str] = None

    @property
    def finished(self) -> bool:
        return self.status in UPLOAD_FINISHED

    @property
    def succeeded(self) -> bool:
        return self.status == "completed"
