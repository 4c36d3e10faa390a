"""A small synchronous SDK over the batchops HTTP API (httpx)."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx


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
    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 30.0):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def __enter__(self) -> BatchopsClient:
        return self

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType] | Any) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, *, idempotency_key: str | None = None, **kwargs: Any) -> Any:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        response = self._http.request(method, path, headers=headers, **kwargs)
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
