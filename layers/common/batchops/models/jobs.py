"""Jobs, runs and bulk triggers (seed 001), in the seed's snake_case: the request models with
their documented bounds, and the run and batch-operation vocabularies."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_PAYLOAD_BYTES = 256 * 1024
# The part of an endpoint's response kept as a run's result.
MAX_RESULT_BYTES = 256 * 1024
MAX_BULK_ITEMS = 500
MAX_JOB_HEADERS = 50
# Headers batchops sets on every call: a job may not override them.
RESERVED_HEADERS = frozenset(
    {"webhook-id", "webhook-timestamp", "webhook-signature", "host", "content-length", "content-type"}
)

# Batches refer to jobs by name, so names are short and URL-safe.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


def canonical_json(payload: Any) -> str:
    """One text per JSON value: key order and spacing never make two payloads differ."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def payload_bytes(payload: Any) -> int:
    return len(canonical_json(payload).encode())


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

    payload: Any = Field(default_factory=dict, description="Any JSON value, at most 256 KB (262,144 bytes) as JSON")
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)

    @field_validator("payload")
    @classmethod
    def _payload_size(cls, value: Any) -> Any:
        size = payload_bytes(value)
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(f"is {size:,} bytes as JSON; at most {MAX_PAYLOAD_BYTES:,} bytes (256 KB)")
        return value


class BulkTriggerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[TriggerRequest] = Field(
        min_length=1, max_length=MAX_BULK_ITEMS, description="1-500 items; each creates at most one run"
    )


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


class RunErrorCode(StrEnum):
    HTTP_ERROR = "HTTP_ERROR"
    TIMEOUT = "TIMEOUT"
    CONNECTION_ERROR = "CONNECTION_ERROR"
    UNSAFE_URL = "UNSAFE_URL"
    INVALID_URL = "INVALID_URL"
    JOB_NOT_FOUND = "JOB_NOT_FOUND"
    RESULT_TOO_LARGE = "RESULT_TOO_LARGE"
    # A worker stopped mid-call (crash or Lambda timeout) on the run's last attempt.
    INTERRUPTED = "INTERRUPTED"


# ---------------------------------------------------------------- response shapes (OpenAPI)
class Run(BaseModel):
    id: str
    job_id: str
    project_id: str
    batch_id: str | None
    status: RunStatus
    payload: Any
    attempts: int = Field(description="Attempts started so far; an attempt counts from 1")
    result: Any = Field(description="The endpoint's JSON response (text if not JSON), at most 256 KB")
    error: RunError | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    deduplicated: bool | None = Field(default=None, description="true when a trigger matched this existing run")


class RunPage(BaseModel):
    data: list[Run]
    next_cursor: str | None


class RunCounts(BaseModel):
    queued: int
    running: int
    completed: int
    failed: int
    cancelled: int
    timed_out: int


class BatchOperation(BaseModel):
    id: str
    project_id: str
    job_id: str
    item_count: int
    created_count: int = Field(description="Runs created; lower than item_count when items were duplicates")
    created_by: str = Field(description="apikey:<key id>")
    created_at: str
    finished_at: str | None = Field(description="Set once, when every created run has finished")
    run_counts: RunCounts | None = Field(default=None, description="Live counts (GET endpoints)")


class BatchOperationPage(BaseModel):
    data: list[BatchOperation]
    next_cursor: str | None


class CreatedRun(BaseModel):
    index: int
    id: str
    status: RunStatus


class BulkTriggerResponse(BaseModel):
    batch_operation: BatchOperation
    runs: list[CreatedRun]
    deduplicated_indexes: list[int]
