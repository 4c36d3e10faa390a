"""OpenAPI response declarations, so the document shows our error shape on every route."""

from __future__ import annotations

import json
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


# Powertools' own validation-error schemas: documented for a `{"detail": [...]}` batchops never sends.
_POWERTOOLS_ONLY_SCHEMAS = ("HTTPValidationError", "ValidationError")


def finished_document(document: dict[str, Any]) -> dict[str, Any]:
    """The generated document as batchops answers: a response without a body (204) has no
    `content` (Powertools writes an empty one), and no schema of Powertools' error shape is left."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                if response.get("content") == {}:
                    del response["content"]
    schemas = document.get("components", {}).get("schemas", {})
    if "HTTPValidationError" not in json.dumps(document.get("paths", {})):
        for name in _POWERTOOLS_ONLY_SCHEMAS:
            schemas.pop(name, None)
    return document


# Ids batchops makes (`batch_<hex>`, `wh_<hex>`, `job_<hex>`, ...). API Gateway hands a path segment
# on percent-encoded, so the pattern also keeps the length checked the length the client meant.
GENERATED_ID = r"^[A-Za-z0-9_-]+$"
