"""Jobs, runs and bulk triggers (seed 001), in the seed's snake_case. Groundwork for issue 4:
the request models with their documented bounds."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_BULK_ITEMS = 500
MAX_JOB_HEADERS = 50
# Headers batchops sets on every call: a job may not override them.
RESERVED_HEADERS = frozenset({"webhook-id", "webhook-timestamp", "webhook-signature", "host", "content-length"})

# Batches refer to jobs by name, so names are short and URL-safe.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


def _check_headers(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if len(value) > MAX_JOB_HEADERS:
        raise ValueError(f"at most {MAX_JOB_HEADERS} headers")
    for name, text in value.items():
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"{name} is set by batchops and cannot be overridden")
        if not 0 < len(name) <= 256 or len(text) > 8 * 1024:
            raise ValueError(f"header {name[:40]!r}: names 1-256 characters, values at most 8 KB")
    return value


class JobFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint_url: str = Field(min_length=1, max_length=2048)
    method: Literal["POST", "PUT", "PATCH", "DELETE", "GET"] = "POST"
    headers: dict[str, str] | None = None
    timeout_secs: int = Field(default=30, ge=1, le=900)
    max_attempts: int = Field(default=3, ge=1, le=10)
    retry_backoff_secs: int = Field(default=2, ge=1, le=3600)
    dedup_window_secs: int = Field(default=0, ge=0, le=86400)
    enabled: bool = True

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return _check_headers(value)


class JobCreate(JobFields):
    name: str = Field(pattern=NAME_PATTERN)


class JobUpdate(BaseModel):
    """PATCH: only the fields sent change; the same bounds apply."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    endpoint_url: str | None = Field(default=None, min_length=1, max_length=2048)
    method: Literal["POST", "PUT", "PATCH", "DELETE", "GET"] | None = None
    headers: dict[str, str] | None = None
    timeout_secs: int | None = Field(default=None, ge=1, le=900)
    max_attempts: int | None = Field(default=None, ge=1, le=10)
    retry_backoff_secs: int | None = Field(default=None, ge=1, le=3600)
    dedup_window_secs: int | None = Field(default=None, ge=0, le=86400)
    enabled: bool | None = None

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return _check_headers(value)


class TriggerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payload: Any = Field(default_factory=dict, description="Any JSON value, at most 256 KB serialized")
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)


class BulkTriggerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[TriggerRequest] = Field(min_length=1, max_length=MAX_BULK_ITEMS)


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)


class RunError(BaseModel):
    code: str
    message: str
    http_status: int | None = None
