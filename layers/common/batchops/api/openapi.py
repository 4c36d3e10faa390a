"""OpenAPI response declarations, so the document shows our error shape on every route."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from batchops.models.common import ErrorResponse

_DESCRIPTIONS = {
    400: "Malformed JSON",
    401: "Missing, unknown or revoked API key",
    404: "Not found (or another workspace's)",
    409: "Conflict",
    413: "Payload too large",
    422: "Validation failed",
    429: "Rate limited",
}


def responses(success: int, model: type[BaseModel], *errors: int) -> dict[int, Any]:
    declared: dict[int, Any] = {
        success: {"description": "Success", "content": {"application/json": {"model": model}}},
    }
    for status in (400, 401, *errors):
        declared[status] = {
            "description": _DESCRIPTIONS.get(status, "Error"),
            "content": {"application/json": {"model": ErrorResponse}},
        }
    return declared
