"""The one error mapping, the resolver's body guard, and the route table."""

from __future__ import annotations

import json

from batchops.api.errors import from_domain_error, status_of
from batchops.api.raw_event import body_size
from batchops.api.resolver import powertools_rule
from batchops.api.routes import find_endpoint, route_table
from batchops.errors import (
    BadRequestError,
    ConflictError,
    IdempotencyKeyReusedError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    StorageError,
    UnauthorizedError,
    ValidationFailedError,
)


def test_status_per_error_type():
    assert status_of(BadRequestError("x")) == 400
    assert status_of(UnauthorizedError("x")) == 401
    assert status_of(NotFoundError("x")) == 404
    assert status_of(ConflictError("x")) == 409
    assert status_of(PayloadTooLargeError("x")) == 413
    assert status_of(ValidationFailedError("x")) == 422
    assert status_of(IdempotencyKeyReusedError("x")) == 422
    assert status_of(RateLimitedError("x", retry_after_seconds=3)) == 429
    assert status_of(StorageError("x")) == 503


def test_error_shape_and_retry_after():
    response = from_domain_error(RateLimitedError("Rate limit exceeded. Please retry later.", retry_after_seconds=0))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"  # never zero
    assert json.loads(response.body) == {
        "error": "Rate limit exceeded. Please retry later.",
        "code": "RATE_LIMITED",
    }
    detailed = from_domain_error(ValidationFailedError("bad", details=[{"index": 0, "error": "e"}]))
    assert json.loads(detailed.body) == {
        "error": "bad",
        "code": "VALIDATION_FAILED",
        "details": [{"index": 0, "error": "e"}],
    }


def test_body_size_counts_decoded_bytes():
    assert body_size({"body": "é" * 10}) == 20
    assert body_size({"body": "QUJD", "isBase64Encoded": True}) == 3
    assert body_size({"body": None}) == 0


def test_route_table_is_unique_and_paths_convert_for_powertools():
    keys = [e.key for e in route_table()]
    assert len(keys) == len(set(keys))
    assert powertools_rule("/v1/events/batch/{batchId}/summary") == "/v1/events/batch/<batchId>/summary"
    assert find_endpoint("get", "/v1/health").auth is False
    assert find_endpoint("POST", "/v1/events/batch").idempotent is True
