"""A small synchronous SDK over the batchops HTTP API (httpx)."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

# Bodies above this are sent gzipped (Content-Encoding: gzip): tracked events compress ~10x.
GZIP_ABOVE_BYTES = 64 * 1024
# Lambda takes at most 6 MB per request: larger bulk-track bodies go through an S3 upload.
UPLOAD_ABOVE_BYTES = 5 * 1024 * 1024
# A batch in one of these states changes no more: `wait_for_batch` stops there.
BATCH_DONE = frozenset({"completed", "failed", "cancelled", "timed_out"})
RESULT_FORMATS = ("json", "csv", "xlsx", "pdf")


ACCEPT = {
    "json": "application/json",
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


# The keys of an event-log entry in the order the platform's Java SDK sends them (snake_case here).
_ENTRY_FIELDS = (
    "correlation_id",
    "account_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "span_links",
    "batch_id",
    "application_id",
    "target_system",
    "originating_system",
    "process_name",
    "step_sequence",
    "step_name",
    "event_type",
    "event_status",
    "identifiers",
    "summary",
    "result",
    "metadata",
    "event_timestamp",
    "execution_time_ms",
    "endpoint",
    "http_method",
    "http_status_code",
    "error_code",
    "error_message",
    "request_payload",
    "response_payload",
    "idempotency_key",
)


def new_correlation_id() -> str:
    """32 lowercase hex characters (W3C Trace Context), as the event log requires."""
    return uuid.uuid4().hex


def new_trace_id() -> str:
    return uuid.uuid4().hex


def new_span_id() -> str:
    """16 lowercase hex characters."""
    return uuid.uuid4().hex[:16]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def event_log_entry(
    *,
    correlation_id: str,
    trace_id: str,
    application_id: str,
    target_system: str,
    originating_system: str,
    process_name: str,
    event_type: str,
    event_status: str,
    summary: str,
    result: str,
    **optional: Any,
) -> dict[str, Any]:
    """An event-log entry as the platform's Java SDK builds it: camelCase keys in its order, unset
    fields left out, `identifiers` and `metadata` sent as `{}` when not given, and `spanId` and
    `eventTimestamp` (UTC, milliseconds) filled in when not given. `optional` takes the other fields
    in snake_case (`account_id`, `step_sequence`, `idempotency_key`, ...)."""
    unknown = set(optional) - set(_ENTRY_FIELDS)
    if unknown:
        raise TypeError(f"not event-log entry fields: {', '.join(sorted(unknown))}")
    given: dict[str, Any] = {
        "correlation_id": correlation_id,
        "trace_id": trace_id,
        "application_id": application_id,
        "target_system": target_system,
        "originating_system": originating_system,
        "process_name": process_name,
        "event_type": event_type,
        "event_status": event_status,
        "summary": summary,
        "result": result,
        **optional,
    }
    given.setdefault("span_id", new_span_id())
    given.setdefault("identifiers", {})
    given.setdefault("metadata", {})
    if given.get("event_timestamp") is None:
        given["event_timestamp"] = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {_camel(name): given[name] for name in _ENTRY_FIELDS if given.get(name) is not None}


class ApiError(Exception):
    """A non-2xx answer, with batchops' error shape unpacked."""

    def __init__(self, status: int, body: Any):
        self.status = status
        self.body = body
        self.code = body.get("code") if isinstance(body, dict) else None
        self.details = body.get("details") if isinstance(body, dict) else None
        message = body.get("error") if isinstance(body, dict) else str(body)
        super().__init__(f"{status} {self.code or ''}: {message}".replace("  ", " "))


class BatchopsClient:
    """`max_retries`: how often a 429 is retried after its Retry-After (capped at `max_wait`
    seconds), since a refused request did nothing and can always be sent again.

    `client.batches` offers the batch calls under the seed's names (`create`, `get_status`, ...)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_wait: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport)
        # For presigned S3 URLs: no base URL and no API key (S3 refuses a request carrying two credentials).
        self._plain = httpx.Client(timeout=timeout, transport=transport)
        self._max_retries = max_retries
        self._max_wait = max_wait
        self._sleep = sleep
        self._clock = clock
        self.batches = Batches(self)

    def __enter__(self) -> BatchopsClient:
        return self

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType] | Any) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()
        self._plain.close()

    def _send(
        self,
        method: str,
        path: str,
        *,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """The raw response, after retrying 429s; errors are left to the caller."""
        sent = {**(headers or {}), **({"Idempotency-Key": idempotency_key} if idempotency_key else {})}
        for attempt in range(self._max_retries + 1):
            response = self._http.request(method, path, headers=sent or None, **kwargs)
            if response.status_code != 429 or attempt == self._max_retries:
                break
            self._sleep(min(self._max_wait, _retry_after(response)))
        return response

    def _call(
        self,
        method: str,
        path: str,
        *,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        response = self._send(method, path, idempotency_key=idempotency_key, headers=headers, **kwargs)
        body = _body(response)
        if response.is_error:
            raise ApiError(response.status_code, body)
        return body

    def _data(self, method: str, path: str, **kwargs: Any) -> Any:
        """`_call` for the endpoints that answer `{"success": true, "data": ...}`: the `data`."""
        return _unwrap(self._call(method, path, **kwargs))

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/v1/health")
        return result

    def create_event(self, entry: dict[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """`POST /v1/events` (build `entry` with `event_log_entry`): `{"success", "executionIds":
        [id], "correlationId"}`. An entry whose `idempotencyKey` is already stored answers that
        entry's executionId."""
        result: dict[str, Any] = self._call("POST", "/v1/events", json=entry, idempotency_key=idempotency_key)
        return result

    def create_event_batch(
        self,
        events: Sequence[dict[str, Any]],
        batch_id: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """`POST /v1/events/batch`: `{"success", "totalReceived", "totalInserted", "executionIds",
        "correlationIds", "batchId"?, "errors"?}`, where `errors` lists refused entries by index.
        `batch_id` overrides each entry's own `batchId`."""
        body: dict[str, Any] = {"events": list(events)}
        if batch_id is not None:
            body["batchId"] = batch_id
        result: dict[str, Any] = self._call("POST", "/v1/events/batch", json=body, idempotency_key=idempotency_key)
        return result

    def get_event_batch(
        self, batch_id: str, *, page: int = 1, page_size: int = 20, event_status: str | None = None
    ) -> dict[str, Any]:
        """One page of a batch's stored entries, newest first, with its counts."""
        params: dict[str, Any] = {"page": page, "pageSize": page_size}
        if event_status:
            params["eventStatus"] = event_status
        result: dict[str, Any] = self._call("GET", f"/v1/events/batch/{quote(batch_id, safe='')}", params=params)
        return result

    def get_event_batch_summary(self, batch_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/events/batch/{quote(batch_id, safe='')}/summary")
        return result

    # ---------------------------------------------------------------- tracking (seed 004)

    def track(self, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/v1/track", json=event)
        return result

    def bulk_track(self, events: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """`{"status", "messageIds", "errors"?}`; sent gzipped when large. Bodies Lambda cannot take
        (over ~5 MB) raise ValueError: use `upload_bulk_track`."""
        raw = json.dumps(list(events)).encode()
        if len(raw) > UPLOAD_ABOVE_BYTES:
            raise ValueError(f"{len(raw):,} bytes is too large for one request; use upload_bulk_track")
        headers = {"Content-Type": "application/json"}
        if len(raw) > GZIP_ABOVE_BYTES:
            raw, headers["Content-Encoding"] = gzip.compress(raw), "gzip"
        result: dict[str, Any] = self._call("POST", "/v1/bulk-track", content=raw, headers=headers)
        return result

    def get_tracked_event(self, message_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/track/events/{quote(message_id, safe='')}")
        return result

    def upload_bulk_track(self, events: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Send a body of up to 10 MB (uncompressed) through a presigned S3 upload; returns the
        upload (`uploadId`, `status`); follow it with `wait_for_upload`."""
        created: dict[str, Any] = self._call("POST", "/v1/bulk-track/uploads")
        body = gzip.compress(json.dumps(list(events)).encode())
        # The form goes to S3, not to the API: no API key on it.
        sent = httpx.post(
            created["url"],
            data=created["fields"],
            files={created["fileField"]: ("events.json.gz", body, "application/gzip")},
            timeout=self._http.timeout,
        )
        if sent.is_error:
            raise ApiError(sent.status_code, sent.text)
        return created

    def get_upload(self, upload_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/bulk-track/uploads/{quote(upload_id, safe='')}")
        return result

    def wait_for_upload(self, upload_id: str, *, timeout: float = 300.0, interval: float = 1.0) -> dict[str, Any]:
        """Poll until the upload is ingested; return its result (the body bulk-track would have
        answered, or the error it would have given)."""
        deadline = self._clock() + timeout
        while True:
            upload = self.get_upload(upload_id)
            if upload["status"] in ("completed", "failed"):
                outcome: dict[str, Any] = httpx.get(upload["resultUrl"], timeout=self._http.timeout).json()
                return outcome
            if self._clock() > deadline:
                raise TimeoutError(f"upload {upload_id} still {upload['status']} after {timeout} s")
            self._sleep(interval)

    def limits(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/v1/batch/limits")
        return result

    # ---------------------------------------------------------------- batches (seed 002)

    def create_batch(
        self,
        name: str,
        jobs: Sequence[dict[str, Any]],
        *,
        description: str | None = None,
        type: str | None = None,
        priority: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The new batch: `batch_id`, `status`, `jobs` counts, `signing_secret`, ..."""
        body: dict[str, Any] = {"name": name, "jobs": list(jobs)}
        optional = {"description": description, "type": type, "priority": priority, "options": options}
        body.update({key: value for key, value in optional.items() if value is not None})
        result: dict[str, Any] = self._data("POST", "/v1/batches", json=body)
        return result

    def get_batch(self, batch_id: str, *, include_jobs: bool = False, job_status: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"include_jobs": _flag(include_jobs)}
        if job_status:
            params["job_status"] = job_status
        result: dict[str, Any] = self._data("GET", _batch_path(batch_id), params=params)
        return result

    def list_batches(
        self,
        *,
        status: str | None = None,
        type: str | None = None,
        priority: str | None = None,
        page: int | None = None,
        per_page: int | None = None,
        sort: str | None = None,
    ) -> dict[str, Any]:
        """The whole body, `{"success", "data": [...], "pagination": {...}}`: a page needs its pagination."""
        given = {"status": status, "type": type, "priority": priority, "page": page, "per_page": per_page}
        params = {key: value for key, value in {**given, "sort": sort}.items() if value is not None}
        result: dict[str, Any] = self._call("GET", "/v1/batches", params=params)
        return result

    def batch_results(
        self,
        batch_id: str,
        *,
        format: str = "json",
        include_raw: bool = False,
        jobs: Sequence[str] | str | None = None,
    ) -> dict[str, Any] | bytes:
        """The results' `data` for `json`; the file's bytes for `csv`, `xlsx` and `pdf`. An export
        too large for a Lambda response comes as a 303 to a presigned S3 URL, which is followed."""
        if format not in RESULT_FORMATS:
            raise ValueError(f"format must be one of {', '.join(RESULT_FORMATS)}, not {format!r}")
        params: dict[str, Any] = {"format": format, "include_raw": _flag(include_raw)}
        if jobs:
            params["jobs"] = jobs if isinstance(jobs, str) else ",".join(jobs)
        # API Gateway returns a binary body as bytes only when Accept names its type.
        response = self._send(
            "GET", f"{_batch_path(batch_id)}/results", params=params, headers={"Accept": ACCEPT[format]}
        )
        if response.is_error:
            raise ApiError(response.status_code, _body(response))
        if 300 <= response.status_code < 400:
            response = self._download(response)
        if format == "json":
            result: dict[str, Any] = _unwrap(response.json())
            return result
        return response.content

    def _download(self, redirect: httpx.Response) -> httpx.Response:
        location = redirect.headers.get("Location")
        if not location:
            data = _unwrap(_body(redirect))
            location = data.get("download_url") if isinstance(data, dict) else None
        if not location:
            raise ApiError(redirect.status_code, _body(redirect))
        # The presigned URL is its own credential: sent through the plain client, without the API key.
        response = self._plain.get(redirect.url.join(location))
        if response.is_error:
            raise ApiError(response.status_code, _body(response))
        return response

    def cancel_batch(
        self, batch_id: str, *, reason: str | None = None, cancel_running_jobs: bool | None = None
    ) -> dict[str, Any]:
        optional = {"reason": reason, "cancel_running_jobs": cancel_running_jobs}
        body = {key: value for key, value in optional.items() if value is not None}
        result: dict[str, Any] = self._data("DELETE", _batch_path(batch_id), json=body or None)
        return result

    def retry_batch(
        self,
        batch_id: str,
        *,
        job_ids: Sequence[str] | None = None,
        max_retries: int | None = None,
        retry_delay_minutes: int | None = None,
    ) -> dict[str, Any]:
        """`{batch_id, jobs_retried, new_batch_id, estimated_completion}`; all failed jobs when no `job_ids`."""
        body: dict[str, Any] = {}
        if job_ids is not None:
            body["job_ids"] = list(job_ids)
        if max_retries is not None:
            body["max_retries"] = max_retries
        if retry_delay_minutes is not None:
            body["retry_delay_minutes"] = retry_delay_minutes
        result: dict[str, Any] = self._data("POST", f"{_batch_path(batch_id)}/retry", json=body)
        return result

    def wait_for_batch(
        self,
        batch_id: str,
        *,
        timeout: float = 600.0,
        interval: float = 2.0,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll `get_batch` until the batch is completed, failed, cancelled or timed out, and return
        it; `on_progress` gets its `progress` after every poll. TimeoutError after `timeout` seconds."""
        deadline = self._clock() + timeout
        while True:
            batch = self.get_batch(batch_id)
            if on_progress is not None:
                on_progress(batch.get("progress") or {})
            if batch.get("status") in BATCH_DONE:
                return batch
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise TimeoutError(f"batch {batch_id} still {batch.get('status')} after {timeout} s")
            self._sleep(min(interval, remaining))

    # ---------------------------------------------------------------- webhooks

    def create_webhook(self, url: str, events: Sequence[str]) -> dict[str, Any]:
        """The subscription, with its `id` and the `secret` its deliveries are signed with."""
        result: dict[str, Any] = self._data("POST", "/v1/webhooks", json={"url": url, "events": list(events)})
        return result

    def list_webhooks(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._data("GET", "/v1/webhooks")
        return result

    def delete_webhook(self, webhook_id: str) -> None:
        self._call("DELETE", _webhook_path(webhook_id))

    def webhook_deliveries(self, webhook_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._data("GET", f"{_webhook_path(webhook_id)}/deliveries")
        return result


class Batches:
    """`client.batches`: the batch calls under the seed SDK's names."""

    def __init__(self, client: BatchopsClient):
        self._client = client

    def create(
        self,
        name: str,
        jobs: Sequence[dict[str, Any]],
        *,
        description: str | None = None,
        type: str | None = None,
        priority: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return self._client.create_batch(
            name, jobs, description=description, type=type, priority=priority, options=options
        )

    def get(self, batch_id: str, *, include_jobs: bool = False, job_status: str | None = None) -> dict[str, Any]:
        return self._client.get_batch(batch_id, include_jobs=include_jobs, job_status=job_status)

    get_status = get

    def results(
        self,
        batch_id: str,
        *,
        format: str = "json",
        include_raw: bool = False,
        jobs: Sequence[str] | str | None = None,
    ) -> dict[str, Any] | bytes:
        return self._client.batch_results(batch_id, format=format, include_raw=include_raw, jobs=jobs)

    def cancel(
        self, batch_id: str, *, reason: str | None = None, cancel_running_jobs: bool | None = None
    ) -> dict[str, Any]:
        return self._client.cancel_batch(batch_id, reason=reason, cancel_running_jobs=cancel_running_jobs)

    def retry(
        self,
        batch_id: str,
        *,
        job_ids: Sequence[str] | None = None,
        max_retries: int | None = None,
        retry_delay_minutes: int | None = None,
    ) -> dict[str, Any]:
        return self._client.retry_batch(
            batch_id, job_ids=job_ids, max_retries=max_retries, retry_delay_minutes=retry_delay_minutes
        )

    def wait_for_completion(
        self,
        batch_id: str,
        *,
        timeout: float = 600.0,
        interval: float = 2.0,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        return self._client.wait_for_batch(batch_id, timeout=timeout, interval=interval, on_progress=on_progress)

    # Last: inside the class body, a method named `list` hides the builtin from the annotations after it.
    def list(
        self,
        *,
        status: str | None = None,
        type: str | None = None,
        priority: str | None = None,
        page: int | None = None,
        per_page: int | None = None,
        sort: str | None = None,
    ) -> dict[str, Any]:
        return self._client.list_batches(
            status=status, type=type, priority=priority, page=page, per_page=per_page, sort=sort
        )


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _unwrap(body: Any) -> Any:
    """`data` out of the `{"success": true, "data": ...}` envelope; anything else as it came."""
    if isinstance(body, dict) and "data" in body:
        return body["data"]
    return body


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _batch_path(batch_id: str) -> str:
    return f"/v1/batches/{quote(batch_id, safe='')}"


def _webhook_path(webhook_id: str) -> str:
    return f"/v1/webhooks/{quote(webhook_id, safe='')}"


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(1.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0
