"""Typed domain errors. Services raise these; `api/errors.py` alone maps them to HTTP."""

from __future__ import annotations

from typing import Any


class BatchopsError(Exception):
    """Base of every error a service may raise on purpose."""

    code = "ERROR"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        if code:
            self.code = code


class BadRequestError(BatchopsError):
    code = "BAD_REQUEST"


class ValidationFailedError(BatchopsError):
    code = "VALIDATION_FAILED"


class InvalidUrlError(ValidationFailedError):
    """Not an http(s) URL we can call."""

    code = "INVALID_URL"


class UnsafeUrlError(ValidationFailedError):
    """An address batchops never calls (loopback, private, link-local, ...): OWASP API7, SSRF."""

    code = "UNSAFE_URL"


class UnstorableValueError(ValidationFailedError):
    """A value DynamoDB cannot hold reached a write: a number past 38 significant digits or outside
    1E-130..9.99E+125, NaN or Infinity. Models bound what clients send, so this is a gap in them;
    it is still the client's value that cannot be kept, hence a 422 rather than a 500."""

    code = "VALUE_NOT_STORABLE"


class UnauthorizedError(BatchopsError):
    code = "UNAUTHORIZED"


class NotFoundError(BatchopsError):
    code = "NOT_FOUND"


class ConflictError(BatchopsError):
    code = "CONFLICT"


class PayloadTooLargeError(BatchopsError):
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaTypeError(BatchopsError):
    code = "UNSUPPORTED_MEDIA_TYPE"


class IdempotencyKeyReusedError(BatchopsError):
    code = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyInProgressError(BatchopsError):
    code = "IDEMPOTENCY_IN_PROGRESS"


class RateLimitedError(BatchopsError):
    code = "RATE_LIMITED"

    def __init__(
        self,
        message: str,
        *,
        retry_after_seconds: int,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ):
        super().__init__(message, details=details)
        self.retry_after_seconds = max(1, retry_after_seconds)
        # RateLimit-* of the budget that refused the request.
        self.headers = dict(headers or {})


class OperationInProgressError(BatchopsError):
    """Another run holds this operation right now; try again later (SQS or Step Functions retry)."""

    code = "OPERATION_IN_PROGRESS"


class StorageError(BatchopsError):
    """AWS refused or lost a write even after retries."""

    code = "STORAGE_ERROR"


def client_message(error: BaseException, generic: str) -> str:
    """What a client may be shown about `error` where it is stored for them (an async job's
    `error`): a typed error's code and message, which are written for clients, else `generic`.
    Any other exception's text can name tables, ARNs and internals: it is for the log only."""
    if isinstance(error, BatchopsError):
        return f"{error.code}: {error.message}"
    return generic
