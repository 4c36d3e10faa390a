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
