"""A small synchronous SDK over the batchops HTTP API (httpx)."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

# Bodies above this are sent gzipped (Content-Encoding: gzip): tracked events compress ~10x.
GZIP_ABOVE_BYTES = 64 * 1024
# Lambda takes at most 6 MB per request: larger bulk-track bodies go through an S3 upload.
UPLOAD_ABOVE_BYTES = 5 * 1024 * 1024


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
    seconds), since a refused request did nothing and can always be sent again."""

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
    ):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport)
        self._max_retries = max_retries
        self._max_wait = max_wait
        self._sleep = sleep

    def __enter__(self) -> BatchopsClient:
        return self

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType] | Any) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(
        self,
        method: str,
        path: str,
        *,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        sent = {**(headers or {}), **({"Idempotency-Key": idempotency_key} if idempotency_key else {})}
        for attempt in range(self._max_retries + 1):
            response = self._http.request(method, path, headers=sent or None, **kwargs)
            if response.status_code != 429 or attempt == self._max_retries:
                break
            self._sleep(min(self._max_wait, _retry_after(response)))
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.is_error:
            raise ApiError(response.status_code, body)
        return body

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/v1/health")
        return result

    def create_event(self, entry: dict[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/v1/events", json=entry, idempotency_key=idempotency_key)
        return result

    def create_event_batch(
        self,
        events: Sequence[dict[str, Any]],
        batch_id: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"events": list(events)}
        if batch_id is not None:
            body["batchId"] = batch_id
        result: dict[str, Any] = self._call("POST", "/v1/events/batch", json=body, idempotency_key=idempotency_key)
        return result

    def get_event_batch(
        self, batch_id: str, *, page: int = 1, page_size: int = 20, event_status: str | None = None
    ) -> dict[str, Any]:
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
        deadline = time.monotonic() + timeout
        while True:
            upload = self.get_upload(upload_id)
            if upload["status"] in ("completed", "failed"):
                outcome: dict[str, Any] = httpx.get(upload["resultUrl"], timeout=self._http.timeout).json()
                return outcome
            if time.monotonic() > deadline:
                raise TimeoutError(f"upload {upload_id} still {upload['status']} after {timeout} s")
            self._sleep(interval)

    def limits(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/v1/batch/limits")
        return result


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(1.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0
