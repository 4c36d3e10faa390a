"""`client.track`: tracking (seed 004, `/v1/track`, `/v1/bulk-track`, `/v1/bulk-track/uploads`).

`bulk` takes any number of events: it splits them into bodies the API takes (at most 10 MB of
JSON each, the seed's limit), gzips the larger ones, and sends a body too large for Lambda (which
takes at most 6 MB per request, after API Gateway has inflated the gzip) through a presigned S3
upload, then merges the answers as if one request had carried them all.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

from batchops_client._core import Plan, Send, checked, json_of, poll
from batchops_client._resource import D, Resource, endpoint, path
from batchops_client.errors import BatchopsError, ValidationError
from batchops_client.models.tracking import BulkTrackResult, TrackedEvent, TrackingUpload, TrackResult, Upload

# The API refuses a bulk-track body (or an upload) over 10 MB of JSON, uncompressed: 413.
MAX_BODY_BYTES = 10 * 1024 * 1024
# Bodies above this are sent gzipped (Content-Encoding: gzip): tracked events compress ~10x.
GZIP_ABOVE_BYTES = 64 * 1024
# Lambda takes at most 6 MB (6,291,456 bytes) per request, the body as a JSON string inside the
# event (API Gateway inflates gzip first, so gzip does not help): a body whose escaped size passes
# this goes through an S3 upload. The rest of the 6 MB is room for the headers and the event.
UPLOAD_ABOVE_BYTES = 5 * 1024 * 1024
# A failed upload's code -> the HTTP status POST /v1/bulk-track would have refused it with.
_REFUSALS = {"INVALID_EVENT": 400, "MALFORMED_JSON": 400, "INVALID_GZIP": 400, "PAYLOAD_TOO_LARGE": 413}


@dataclass(frozen=True)
class Chunk:
    """One request's worth of events: `count` events from position `start`, as the JSON `body`."""

    start: int
    count: int
    body: bytes


def _json(value: Any) -> str:
    # ASCII: the size counted is the size sent, and a lone surrogate goes to the API (which
    # names the event) instead of failing here.
    return json.dumps(value, separators=(",", ":"))


def chunk_events(events: Sequence[Mapping[str, Any]], limit: int = MAX_BODY_BYTES) -> list[Chunk]:
    """`events` as consecutive JSON arrays of at most `limit` bytes each, in order, each as full as
    it can be. ValueError (before anything is sent) for no events, or for an event that alone
    makes a body over `limit`."""
    if not events:
        raise ValueError("bulk tracking needs at least one event")
    chunks: list[Chunk] = []
    parts: list[bytes] = []
    size, start = 2, 0  # "[" and "]"
    for index, event in enumerate(events):
        part = _json(event).encode()
        if len(part) + 2 > limit:
            raise ValueError(
                f"event {index} is {len(part):,} bytes of JSON; a request takes at most {limit:,} "
                "(and the API keeps events of at most 65,536 bytes)"
            )
        extra = len(part) + (1 if parts else 0)  # its comma
        if parts and size + extra > limit:
            chunks.append(Chunk(start, len(parts), b"[" + b",".join(parts) + b"]"))
            parts, size, start = [], 2, index
            extra = len(part)
        parts.append(part)
        size += extra
    chunks.append(Chunk(start, len(parts), b"[" + b",".join(parts) + b"]"))
    return chunks


def lambda_bytes(body: bytes) -> int:
    """The size of `body` inside Lambda's event, where it is a JSON string: every `"` and `\\`
    gains an escaping backslash (the body is ASCII JSON, so nothing else grows)."""
    return len(body) + body.count(b'"') + body.count(b"\\")


def _compressed(body: bytes) -> bytes:
    # mtime=0: the same events give the same bytes.
    return gzip.compress(body, compresslevel=6, mtime=0)


class Track(Resource[D]):
    @endpoint
    def track(self, event: Mapping[str, Any], *, idempotency_key: Optional[str] = None) -> Plan[TrackResult]:
        """Track one event (`POST /v1/track`; `event`, `properties` and an RFC 3339 `timestamp`
        required); it is stored at once and readable with `get_event`. ValidationError if invalid."""
        answer = yield from self._request("POST", "/v1/track", json=dict(event), idempotency_key=idempotency_key)
        return TrackResult.model_validate(answer)

    @endpoint
    def get_event(self, message_id: str) -> Plan[TrackedEvent]:
        """A tracked event as stored (`GET /v1/track/events/{message_id}`); NotFoundError if it is
        unknown, expired, or not stored yet (bulk events are stored by a worker shortly after)."""
        answer = yield from self._request("GET", path("/v1/track/events/{}", message_id))
        return TrackedEvent.model_validate(answer)

    @endpoint
    def bulk(
        self,
        events: Sequence[Mapping[str, Any]],
        *,
        gzip_above: int = GZIP_ABOVE_BYTES,
        upload_above: int = UPLOAD_ABOVE_BYTES,
        max_request_bytes: int = MAX_BODY_BYTES,
        poll_interval: float = 1.0,
        timeout: Optional[float] = 600.0,
    ) -> Plan[BulkTrackResult]:
        """Track any number of events (`POST /v1/bulk-track`): split into requests of at most
        `max_request_bytes` of JSON (at most 10 MB, the API's limit), each gzipped above
        `gzip_above` bytes, and sent through an S3 upload (waited for up to `timeout` seconds)
        when Lambda could not take it (escaped JSON above `upload_above` bytes). The answer
        is one result in input order: the accepted events' `message_ids`, and `errors` by index
        into `events`. Valid events are accepted next to invalid ones; ValidationError
        (INVALID_EVENT, `details` by index) only when no event was valid.

        The requests go one after another: if one fails, the error is raised and the events of
        the requests before it stay accepted (sending them again with their own `messageId`s
        stores nothing twice: the first copy of a messageId is kept)."""
        if not 0 < max_request_bytes <= MAX_BODY_BYTES:
            raise ValueError(f"max_request_bytes must be between 1 and {MAX_BODY_BYTES:,}")
        chunks = chunk_events(events, max_request_bytes)
        message_ids: list[str] = []
        errors: list[dict[str, Any]] = []
        for chunk in chunks:
            try:
                if lambda_bytes(chunk.body) > upload_above:
                    created = yield from self._upload(chunk.body)
                    answer = yield from self._upload_result(created.upload_id, poll_interval, timeout, None)
                else:
                    answer = yield from self._post_bulk(chunk.body, gzip_above)
            except ValidationError as refused:
                refusals = _item_errors(refused)
                if refusals is None or len(chunks) == 1:
                    raise
                # This request had no valid event: its events are errors of the whole, as they
                # would have been in one request.
                answer = {"messageIds": [], "errors": refusals}
            message_ids += [str(message_id) for message_id in answer.get("messageIds") or []]
            errors += [
                {"index": int(error["index"]) + chunk.start, "error": str(error["error"])}
                for error in answer.get("errors") or []
            ]
        if not message_ids:
            raise ValidationError("Invalid event format.", status=400, code="INVALID_EVENT", details=errors)
        return BulkTrackResult.model_validate(
            {"status": "ok", "messageIds": message_ids, **({"errors": errors} if errors else {})}
        )

    def _post_bulk(self, body: bytes, gzip_above: int) -> Plan[Any]:
        headers = {"Content-Type": "application/json"}
        if len(body) > gzip_above:
            body, headers["Content-Encoding"] = _compressed(body), "gzip"
        return (yield from self._request("POST", "/v1/bulk-track", content=body, headers=headers))

    @endpoint
    def upload(self, events: Sequence[Mapping[str, Any]]) -> Plan[TrackingUpload]:
        """Send up to 10 MB of events (JSON, uncompressed) through a presigned S3 upload
        (`POST /v1/bulk-track/uploads`, then the form to S3, gzipped); follow it with
        `wait_for_upload(upload.upload_id)`. ValueError for a body over 10 MB: `bulk` splits."""
        chunks = chunk_events(events)
        if len(chunks) > 1:
            raise ValueError(
                f"the events make more than {MAX_BODY_BYTES:,} bytes of JSON: use bulk(), which splits them"
            )
        return (yield from self._upload(chunks[0].body))

    def _upload(self, body: bytes) -> Plan[TrackingUpload]:
        answer = yield from self._request("POST", "/v1/bulk-track/uploads")
        created = TrackingUpload.model_validate(answer)
        # The form goes to S3, which answers 204: the URL and fields are its own credential, and
        # S3 refuses a request that carries the API key too.
        form = Send(
            "POST",
            created.url,
            data=dict(created.fields),
            files={created.file_field: ("events.json.gz", _compressed(body), "application/gzip")},
            plain=True,
        )
        yield from checked(form, self._policy)
        return created

    @endpoint
    def get_upload(self, upload_id: str) -> Plan[Upload]:
        """An upload's status (`pending`, `processing`, `completed`, `failed`), counts and result
        link (`GET /v1/bulk-track/uploads/{upload_id}`)."""
        answer = yield from self._request("GET", path("/v1/bulk-track/uploads/{}", upload_id))
        return Upload.model_validate(answer)

    @endpoint
    def wait_for_upload(
        self,
        upload_id: str,
        *,
        poll_interval: float = 1.0,
        timeout: Optional[float] = 600.0,
        on_status: Optional[Callable[[Upload], Any]] = None,
    ) -> Plan[BulkTrackResult]:
        """Poll until the upload is ingested and return what `POST /v1/bulk-track` would have
        answered. A failed upload raises what that would have raised (ValidationError for
        INVALID_EVENT, PAYLOAD_TOO_LARGE, ...; BatchopsError for INGEST_FAILED: upload again);
        WaitTimeout after `timeout` seconds (None waits for ever)."""
        answer = yield from self._upload_result(upload_id, poll_interval, timeout, on_status)
        return BulkTrackResult.model_validate(answer)

    def _upload_result(
        self,
        upload_id: str,
        poll_interval: float,
        timeout: Optional[float],
        on_status: Optional[Callable[[Upload], Any]],
    ) -> Plan[Any]:
        upload = yield from poll(
            lambda: Track.get_upload.plan(self, upload_id),
            lambda state: state.finished,
            interval=poll_interval,
            timeout=timeout,
            describe=lambda state: f"upload {upload_id} still {state.status}",
            on_each=on_status,
        )
        result: Any = None
        if upload.result_url:
            # A presigned S3 link: sent without the API key.
            result = yield from json_of(Send("GET", upload.result_url, plain=True), self._policy)
        if upload.succeeded:
            if not isinstance(result, dict):
                raise BatchopsError(f"upload {upload_id} completed without a readable result", code="NO_RESULT")
            return result
        raise _upload_error(upload, result)


def _item_errors(refused: ValidationError) -> Optional[list[dict[str, Any]]]:
    """The per-event errors of a bulk-track refused because none of its events was valid, or None
    for any other refusal (malformed JSON, a body too large, ...)."""
    details = refused.details
    if refused.code != "INVALID_EVENT" or not isinstance(details, list) or not details:
        return None
    if not all(isinstance(item, dict) and isinstance(item.get("index"), int) for item in details):
        return None
    return [{"index": item["index"], "error": str(item.get("error", ""))} for item in details]


def _upload_error(upload: Upload, result: Any) -> BatchopsError:
    """A failed upload as the error POST /v1/bulk-track would have raised: its result file is that
    error's body (`{"error", "code", "details"}`), else the upload's own `error`."""
    body = result if isinstance(result, dict) else dict(upload.error or {})
    code = body.get("code") if isinstance(body.get("code"), str) else None
    message = str(body.get("error") or body.get("message") or f"upload {upload.upload_id} failed")
    status = _REFUSALS.get(code or "")
    kind = ValidationError if status else BatchopsError
    return kind(
        f"upload {upload.upload_id}: {message}", status=status or 0, code=code, details=body.get("details"), body=body
    )
