"""The one place where errors become HTTP responses with `{"error", "code", "details"}`."""

from __future__ import annotations

import json
import sys
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from batchops.errors import (
    BadRequestError,
    BatchopsError,
    ConflictError,
    IdempotencyInProgressError,
    IdempotencyKeyReusedError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    StorageError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from batchops.models.common import error_body
from batchops.models.validation import describe, field_path
from batchops.observability import logger

JSON_ONLY = "Send the body as JSON with Content-Type: application/json"

STATUS_BY_ERROR: dict[type[BatchopsError], int] = {
    BadRequestError: 400,
    UnauthorizedError: 401,
    NotFoundError: 404,
    ConflictError: 409,
    IdempotencyInProgressError: 409,
    PayloadTooLargeError: 413,
    UnsupportedMediaTypeError: 415,
    ValidationFailedError: 422,
    IdempotencyKeyReusedError: 422,
    RateLimitedError: 429,
    StorageError: 503,
}


def error_response(
    status: int,
    message: str,
    code: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error_body(message, code, details)),
        headers=headers,
    )


def status_of(error: BatchopsError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def error_headers(error: BatchopsError) -> dict[str, str]:
    """Headers an error carries: a 429 says when to retry, and which budget refused it."""
    if isinstance(error, RateLimitedError):
        return {"Retry-After": str(error.retry_after_seconds), **error.headers}
    return {}


def from_domain_error(error: BatchopsError) -> Response[str]:
    if isinstance(error, StorageError) and error.__cause__ is not None:
        # The client is told what to do; what AWS said (a chained cause) is for the log.
        logger().warning(
            "Storage error", extra={"code": error.code, "error": error.message, "cause": repr(error.__cause__)[:1000]}
        )
    return error_response(status_of(error), error.message, error.code, error.details, error_headers(error) or None)


def as_proxy_result(error: BatchopsError, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A Lambda proxy result for errors raised before the resolver runs."""
    return {
        "statusCode": status_of(error),
        "headers": {"Content-Type": content_types.APPLICATION_JSON, **(headers or {}), **error_headers(error)},
        "body": json.dumps(error_body(error.message, error.code, error.details)),
        "isBase64Encoded": False,
    }


def from_validation_error(error: RequestValidationError) -> Response[str]:
    problems = list(error.errors())
    if any(p.get("type") == "json_invalid" for p in problems):
        return error_response(400, "Malformed JSON body", "MALFORMED_JSON")
    details: list[dict[str, Any]] = []
    in_jobs = 0
    for problem in problems:
        # loc is ("body"|"query"|"path"|"header", field, ...): the first part only says where.
        loc = list(problem.get("loc", ()))
        if len(loc) > 3 and loc[:2] == ["body", "items"] and isinstance(loc[2], int):
            # A problem inside one item of a list body is reported per index, like per-item errors.
            details.append({"index": loc[2], "error": describe(problem, field=field_path(loc[3:]))})
            continue
        if len(loc) > 3 and loc[:2] == ["body", "jobs"] and isinstance(loc[2], int):
            # A Batches job (seed 002): INVALID_JOB_CONFIG with the job's index.
            details.append({"index": loc[2], "error": describe(problem, field=field_path(loc[3:]))})
            in_jobs += 1
            continue
        name = field_path(loc[1:]) if len(loc) > 1 else field_path(loc)
        details.append({"field": name, "error": describe(problem, field=name)})
    if in_jobs and in_jobs == len(problems):
        return error_response(422, "Invalid job configuration", "INVALID_JOB_CONFIG", details)
    return error_response(422, "Request validation failed", "VALIDATION_FAILED", details)


def from_unsupported_content_type(_: RequestUnsupportedContentType) -> Response[str]:
    return error_response(415, JSON_ONLY, UnsupportedMediaTypeError.code)


def from_recursion_error(_: RecursionError) -> Response[str]:
    # Only parsing a hostile body nests this deep: json.loads gives up past Python's recursion limit.
    return error_response(400, "Malformed JSON body: nested too deeply", "MALFORMED_JSON")


def register_error_handlers(app: APIGatewayRestResolver) -> None:
    app.exception_handler(BatchopsError)(from_domain_error)
    app.exception_handler(RequestValidationError)(from_validation_error)
    app.exception_handler(RequestUnsupportedContentType)(from_unsupported_content_type)
    app.exception_handler(RecursionError)(from_recursion_error)

    @app.not_found
    def not_found(_: Exception) -> Response[str]:
        return error_response(404, "Not found", "NOT_FOUND")

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def unexpected(error: Exception) -> Response[str]:
        storage = from_aws_error(error)
        if storage is not None:
            return storage
        # A server error is a bug: log it whole, tell the client nothing internal.
        logger().exception("Unhandled error", extra={"error_type": type(error).__name__})
        return error_response(500, "Internal server error", "INTERNAL_ERROR")


STORAGE_UNAVAILABLE = "A storage service is busy or unavailable; retry the request shortly"


def from_aws_error(error: Exception) -> Response[str] | None:
    """An AWS error that escaped a route (a throttle after botocore's retries, an outage, a refused
    call), or an error raised from one (Powertools' idempotency layer wraps them): 503
    STORAGE_ERROR, as the docs promise, with a generic message. AWS's own text names tables,
    queues and ARNs: it goes to the log only. None when AWS is not involved."""
    if "botocore" not in sys.modules:
        return None  # no AWS client was ever loaded (health, the OpenAPI document): not AWS
    # Imported here: routes that never load boto3 do not pay for botocore at start.
    from batchops.dal.errors import aws_error_in, error_code, is_throttling

    cause = aws_error_in(error)
    if cause is None:
        return None
    extra = {"error_type": type(error).__name__, "aws_error_code": error_code(cause)}
    if is_throttling(cause):
        logger().warning("AWS throttled a request past its retries", extra={**extra, "aws_error": str(cause)})
    else:
        # Not a throttle: an outage, or a call AWS refuses (a bug or a missing permission).
        logger().exception("AWS error escaped a route", extra=extra)
    return error_response(503, STORAGE_UNAVAILABLE, StorageError.code)
