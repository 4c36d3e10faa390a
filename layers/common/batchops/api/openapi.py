"""OpenAPI response declarations, so the document shows our error shape on every route."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from batchops.models.common import ErrorResponse

_DESCRIPTIONS = {
    400: "Malformed JSON, or an invalid body the route parses itself",
    401: "Missing, unknown or revoked API key",
    404: "Not found (or another workspace's)",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported Content-Type or Content-Encoding",
    422: "Validation failed",
    429: "Rate limited (Retry-After says when to retry)",
    503: "AWS refused the write; send the request again",
}


def errors(*statuses: int) -> dict[int, Any]:
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, "Error"),
            "content": {"application/json": {"model": ErrorResponse}},
        }
        for status in statuses
    }


# Every authenticated route answers a bad key with 401 and spends its workspace's request budget,
# so any may answer 429: the resolver adds these where a route does not declare them.
AUTHENTICATED_ERRORS = (401, 429)


def responses(success: int, model: type[BaseModel], *errors_: int) -> dict[int, Any]:
    return {
        success: {"description": "Success", "content": {"application/json": {"model": model}}},
        **errors(400, *AUTHENTICATED_ERRORS, *errors_),
    }
