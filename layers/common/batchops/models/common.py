"""Models shared by every surface: the one error shape and the caller's identity."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from batchops.models.base import Model


class ErrorDetail(Model):
    index: int | None = None
    field: str | None = None
    error: str


class ErrorResponse(Model):
    """`{"error", "code", "details"}`: the only error body batchops sends."""

    error: str = Field(description="Human-readable message")
    code: str = Field(description="Machine-readable code, e.g. VALIDATION_FAILED")
    details: list[dict[str, Any]] | None = Field(default=None, description="Per-item or per-field problems")


def error_body(message: str, code: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The error shape as a plain dict (for responses and for operation results)."""
    body: dict[str, Any] = {"error": message, "code": code}
    if details:
        body["details"] = details
    return body


class Plan(StrEnum):
    FREE = "free"
    PRO = "pro"
    TEAM = "team"
    ENTERPRISE = "enterprise"


class Caller(Model):
    """Who is calling, as the authorizer established it."""

    model_config = ConfigDict(frozen=True)

    workspace_id: str
    key_id: str
    plan: Plan
