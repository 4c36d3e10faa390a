"""Typed errors: one class per kind of answer a caller handles differently.

Every API answer that is not a 2xx becomes a `BatchopsError` (or one of its subclasses) carrying
batchops' error shape (`{"error", "code", "details"}`) and the request id API Gateway gave the
request, so a report to support can name it.
"""

from __future__ import annotations

from typing import Any, Optional

import httpx


class BatchopsError(Exception):
    """The API refused or failed a request.

    `status` is the HTTP status (0 when no answer came), `code` the machine-readable code
    (`VALIDATION_ERROR`, `BATCH_NOT_FOUND`, ...), `details` the per-field or per-item details the
    API gave, `request_id` API Gateway's id for the request, and `body` the whole decoded answer.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: Optional[str] = None,
        details: Any = None,
        request_id: Optional[str] = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details
        self.request_id = request_id
        self.body = body

    def __str__(self) -> str:
        parts = [str(self.status)] if self.status else []
        if self.code:
            parts.append(self.code)
        text = " ".join(parts)
        suffix = f" (request {self.request_id})" if self.request_id else ""
        return f"{text}: {self.message}{suffix}" if text else f"{self.message}{suffix}"


class ConfigurationError(BatchopsError):
    """The client lacks what it needs to call the API (an API key, a base URL)."""


class AuthenticationError(BatchopsError):
    """401 or 403: the API key is missing, unknown, revoked, or not allowed this call."""


class NotFoundError(BatchopsError):
    """404: no such resource in this workspace (another workspace's id is 404 too)."""


class ConflictError(BatchopsError):
    """409: the resource is in a state that refuses the call (a finished batch cancelled, ...)."""


class ValidationError(BatchopsError):
    """400, 413, 415 or 422: the request itself is wrong; `details` says where."""


class RateLimitError(BatchopsError):
    """429 after every retry: `retry_after` is the seconds the API asked to wait, if it said."""

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(BatchopsError):
    """5xx after every retry: the API failed; the same call may succeed later."""


class APIConnectionError(BatchopsError):
    """No answer: the API could not be reached, or the connection dropped, after every retry."""


class WaitTimeout(BatchopsError, TimeoutError):
    """A `wait_*` call gave up before the batch, run or operation ended; `last` is its last state."""

    def __init__(self, message: str, *, last: Any = None) -> None:
        super().__init__(message, code="WAIT_TIMEOUT")
        self.last = last


_BY_STATUS: dict[int, type[BatchopsError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    413: ValidationError,
    415: ValidationError,
    422: ValidationError,
    429: RateLimitError,
}


def error_from_response(response: httpx.Response, *, retry_after: Optional[float] = None) -> BatchopsError:
    """The typed error for a non-2xx answer, with batchops' error shape unpacked."""
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = response.text
    fields = body if isinstance(body, dict) else {}
    message = fields.get("error") or fields.get("message") or _reason(response)
    if not isinstance(message, str):
        # Some surfaces nest their error, e.g. `{"error": {"code", "message"}}`.
        nested = message if isinstance(message, dict) else {}
        message = str(nested.get("message") or _reason(response))
        fields = {**nested, **{k: v for k, v in fields.items() if k != "error"}}
    kind = _BY_STATUS.get(response.status_code, ServerError if response.status_code >= 500 else BatchopsError)
    common: dict[str, Any] = {
        "status": response.status_code,
        "code": fields.get("code") if isinstance(fields.get("code"), str) else None,
        "details": fields.get("details"),
        "request_id": response.headers.get("x-amzn-requestid") or response.headers.get("x-request-id"),
        "body": body,
    }
    if kind is RateLimitError:
        return RateLimitError(message, retry_after=retry_after, **common)
    return kind(message, **common)


def _reason(response: httpx.Response) -> str:
    return response.reason_phrase or f"HTTP {response.status_code}"


class WebhookVerificationError(BatchopsError):
    """A webhook delivery failed its Standard Webhooks check: a header missing, a signature that
    does not match the body and secret, or a timestamp more than 5 minutes off (a replay)."""
