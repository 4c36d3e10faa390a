"""Operations surface (seed 003): many API calls in one request, in the seed's camelCase."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from batchops.models.base import Model
from batchops.models.headers import check_header_fields

MAX_OPERATIONS = 100
MAX_BATCH_BODY_BYTES = 5 * 1024 * 1024
MAX_OPERATION_BODY_BYTES = 100 * 1024
TIMEOUT_MS = 60_000
ALLOWED_METHODS = ("POST", "PATCH", "DELETE")
MAX_HEADERS = 50
MAX_HEADER_BYTES = 8 * 1024
OPERATION_BODY_TOO_LARGE = "Operation body must not exceed 100KB"
SKIPPED_MESSAGE = "Skipped: a previous operation failed"


class Operation(Model):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, description="Client-assigned id, unique in the batch")
    method: str = Field(
        description="POST, PATCH or DELETE (any case)",
        # The validator takes any case; JSON Schema's regex has no case-insensitive flag.
        json_schema_extra={"pattern": "^([Pp][Oo][Ss][Tt]|[Pp][Aa][Tt][Cc][Hh]|[Dd][Ee][Ll][Ee][Tt][Ee])$"},
    )
    path: str = Field(min_length=1, max_length=500, description="API path to call, e.g. /v1/events")
    # The seed types it "object"; an array is taken too, for the one route whose body is an array
    # (POST /v1/bulk-track, seed 004), and a route whose body is an object still refuses one.
    body: dict[str, Any] | list[Any] | None = Field(
        default=None,
        description="Request body: a JSON object, or an array for /v1/bulk-track (at most 100 KB serialized)",
    )
    headers: dict[str, str] | None = Field(
        default=None, max_length=MAX_HEADERS, description=f"Extra headers (at most {MAX_HEADERS}, 8 KB each)"
    )

    @field_validator("headers")
    @classmethod
    def _small_headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        # Operations are stored for async and transaction runs: bound what one can carry.
        for name, text in (value or {}).items():
            if not 0 < len(name) <= 256 or len(text) > MAX_HEADER_BYTES:
                raise ValueError(f"header {name[:40]!r}: names 1-256 characters, values at most 8 KB")
        # Headers an API client could send (RFC 9110): an operation behaves like the direct call.
        check_header_fields(value or {})
        return value

    @field_validator("method")
    @classmethod
    def _allowed_method(cls, value: str) -> str:
        if value.upper() not in ALLOWED_METHODS:
            raise ValueError(f"must be one of {', '.join(ALLOWED_METHODS)}")
        return value.upper()


class BatchRequest(Model):
    model_config = ConfigDict(extra="forbid")

    operations: list[Operation] = Field(min_length=1, max_length=MAX_OPERATIONS)
    continueOnError: bool = Field(default=True, description="Go on after a failed operation")
    parallel: bool = Field(default=False, description="Run operations concurrently")

    @model_validator(mode="after")
    def _unique_ids(self) -> BatchRequest:
        seen: set[str] = set()
        for operation in self.operations:
            if operation.id in seen:
                raise ValueError(f"operation ids must be unique; {operation.id!r} repeats")
            seen.add(operation.id)
        return self


class OperationResult(Model):
    id: str
    status: int
    body: Any = None

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status < 300

    @property
    def skipped(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("code") == "SKIPPED"

    @property
    def timed_out(self) -> bool:
        """Not reached before the batch deadline (504 TIMEOUT)."""
        return self.status == 504 and isinstance(self.body, dict) and self.body.get("code") == "TIMEOUT"


class Summary(Model):
    total: int
    succeeded: int
    failed: int
    skipped: int

    @classmethod
    def of(cls, results: list[OperationResult]) -> Summary:
        skipped = sum(r.skipped for r in results)
        succeeded = sum(r.succeeded for r in results)
        return cls(
            total=len(results),
            succeeded=succeeded,
            failed=len(results) - succeeded - skipped,
            skipped=skipped,
        )


class BatchResponse(Model):
    results: list[OperationResult]
    summary: Summary


class RateLimits(Model):
    """The caller's plan budgets (the plan table in models/plans.py)."""

    requestsPerSecond: int = Field(description="Sustained API requests per second (RateLimit-Limit)")
    requestBurst: int = Field(description="Requests allowed at once after a quiet spell")
    trackedEventsPerSecond: int = Field(description="Tracked events per second (bulk-track counts each event)")


class Limits(Model):
    maxOperations: int
    timeoutMs: int
    allowedMethods: list[str]
    allowedPaths: list[str]
    maxBodyBytes: int
    maxOperationBodyBytes: int
    plan: str = Field(description="The caller's plan")
    rateLimits: RateLimits


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class AsyncJob(Model):
    id: str
    status: JobStatus
    results: list[OperationResult] | None = None
    summary: Summary | None = None
    error: str | None = None
    createdAt: str
    startedAt: str | None = None
    completedAt: str | None = None


class AsyncJobCreated(Model):
    jobId: str
    status: JobStatus
    createdAt: str


class AsyncJobCreatedData(Model):
    data: AsyncJobCreated


class AsyncJobData(Model):
    data: AsyncJob


class AsyncJobPage(Model):
    """A page of async jobs, each without its results (GET /v1/batch/async/{jobId} has them)."""

    data: list[AsyncJob]
    nextCursor: str | None = None
