"""Batches surface (seed 002), in the seed's snake_case: the create/cancel/retry requests with their
bounds, the batch and job vocabularies, and the response shapes for the OpenAPI document."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from batchops.models.base import Model
from batchops.models.jobs import MAX_PAYLOAD_BYTES, _check_headers, payload_bytes
from batchops.models.validation import HTTP_URL_PATTERN

BUILTIN_HTTP = "http"
BUILTIN_OPERATION = "operation"
JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,63}$"
MAX_TIMEOUT_MINUTES = 1440
# One second: deadlines are kept to the second's fraction, and anything shorter (1e-300 minutes was
# taken, then failed DynamoDB's write as a decimal underflow, a 500) cannot mean a batch's timeout.
MIN_TIMEOUT_MINUTES = 1 / 60
MAX_JOB_RETRIES = 10
# SQS delays a message at most 15 minutes: a retry batch's start can wait that long.
MAX_RETRY_DELAY_MINUTES = 15
EXPORT_FORMATS = ("json", "csv", "xlsx", "pdf")


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        return ("low", "medium", "high", "urgent").index(self.value)

    @property
    def expedited(self) -> bool:
        """urgent and high jobs have their own queue and worker."""
        return self in (Priority.HIGH, Priority.URGENT)


class BatchStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def finished(self) -> bool:
        return self not in (BatchStatus.QUEUED, BatchStatus.RUNNING)


class JobStatus(StrEnum):
    """`pending`: waiting for a place in the max_parallel window (shown as `queued`); `queued`: on
    SQS (or waiting for a retry); then running and one of the four ends."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def finished(self) -> bool:
        return self not in (JobStatus.PENDING, JobStatus.QUEUED, JobStatus.RUNNING)

    @property
    def public(self) -> str:
        return "queued" if self is JobStatus.PENDING else self.value


# ---------------------------------------------------------------- requests
class JobSpec(Model):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=JOB_ID_PATTERN, description="Unique within the batch")
    type: str = Field(
        min_length=1,
        max_length=100,
        description="A registered job's name, or a built-in: `http` (call config.url) or `operation` (one API call)",
    )
    config: Any = Field(default_factory=dict, description="What the job receives; at most 256 KB as JSON")

    @field_validator("config")
    @classmethod
    def _config_size(cls, value: Any) -> Any:
        size = payload_bytes(value)
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(f"is {size:,} bytes as JSON; at most {MAX_PAYLOAD_BYTES:,} bytes (256 KB)")
        return value


class HttpJobConfig(Model):
    """config of a built-in `http` job."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, json_schema_extra={"pattern": HTTP_URL_PATTERN})
    method: Literal["POST", "PUT", "PATCH", "DELETE", "GET"] = "POST"
    headers: dict[str, str] | None = None
    body: Any = None
    timeout_secs: int = Field(default=30, ge=1, le=900)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return _check_headers(value)


class Notification(Model):
    model_config = ConfigDict(extra="forbid")

    webhook: str | None = Field(default=None, min_length=1, max_length=2048, description="Signed lifecycle events")
    email: str | None = Field(default=None, pattern=EMAIL_PATTERN, description="An email on completion or failure")


class OutputOptions(Model):
    model_config = ConfigDict(extra="forbid")

    format: Literal["json", "csv", "xlsx", "pdf"] = "json"
    include_raw: bool = False
    aggregate_report: bool = True


class BatchOptions(Model):
    model_config = ConfigDict(extra="forbid")

    max_parallel: int | None = Field(
        default=None, ge=1, description="Jobs running or queued at once; default min(5, the plan's max jobs)"
    )
    timeout_minutes: float = Field(
        default=60, gt=0, le=MAX_TIMEOUT_MINUTES, allow_inf_nan=False, description="1/60 (one second) to 1440"
    )
    retry_failed: bool = False
    max_retries: int = Field(default=2, ge=0, le=MAX_JOB_RETRIES, description="Retries of a failed job")
    notification: Notification | None = None
    output: OutputOptions | None = None
    # The seed's own templates put these two at this level.
    aggregate_report: bool | None = None
    require_approval: bool = Field(
        default=False,
        description="Not supported: batches start at once (true is refused)",
        json_schema_extra={"enum": [False]},
    )

    @field_validator("timeout_minutes")
    @classmethod
    def _at_least_a_second(cls, value: float) -> float:
        if value < MIN_TIMEOUT_MINUTES:
            raise ValueError("must be at least 1/60 (one second)")
        return value

    @field_validator("require_approval")
    @classmethod
    def _no_approval(cls, value: bool) -> bool:
        if value:
            raise ValueError("approval before start is not supported; batches start as soon as they are created")
        return value


class BatchCreate(Model):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    type: str | None = Field(default=None, min_length=1, max_length=64, description="A label: analysis, report, ...")
    priority: Priority = Priority.MEDIUM
    jobs: list[JobSpec] = Field(min_length=1, description="At most the plan's max jobs per batch; ids unique")
    options: BatchOptions = Field(default_factory=BatchOptions)


class BatchCancel(Model):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)
    cancel_running_jobs: bool = True
    refund_unused_credits: bool = Field(default=True, description="Credits are charged per job-second used only")


class BatchRetry(Model):
    model_config = ConfigDict(extra="forbid")

    job_ids: list[str] | None = Field(default=None, min_length=1, max_length=1000)
    max_retries: int | None = Field(default=None, ge=0, le=MAX_JOB_RETRIES)
    retry_delay_minutes: float = Field(default=0, ge=0, le=MAX_RETRY_DELAY_MINUTES, allow_inf_nan=False)


# ---------------------------------------------------------------- responses (OpenAPI)
class JobCounts(Model):
    total: int
    queued: int
    running: int
    completed: int
    failed: int
    cancelled: int
    timed_out: int


class CreatedBatch(Model):
    batch_id: str
    name: str
    status: BatchStatus
    created_at: str
    estimated_completion: str | None
    jobs: JobCounts
    priority: Priority
    webhook_url: str | None
    signing_secret: str = Field(description="Signs this batch's http job calls and webhook; shown only here")


class Progress(Model):
    percentage: int
    current_jobs: list[str]
    completed_jobs: list[str]
    failed_jobs: list[str]
    estimated_remaining: str | None = Field(description="HH:MM:SS, from recorded durations; null without history")


class ResourceUsage(Model):
    invocations: int = Field(description="Job attempts started")
    billed_duration_ms: int = Field(description="Time spent in job attempts")
    credits_used: int = Field(description="1 credit = 1 job-second, each job rounded up")
    credits_estimated: int | None


class BatchView(Model):
    batch_id: str
    name: str
    description: str | None
    type: str | None
    status: BatchStatus
    priority: Priority
    created_at: str
    started_at: str | None
    completed_at: str | None
    progress: Progress
    jobs: JobCounts
    resource_usage: ResourceUsage
    webhook_url: str | None
    error: dict[str, Any] | None
    retry_of: str | None
    retried_by: list[str]
    individual_jobs: list[dict[str, Any]] | None = None


class Envelope(Model):
    success: bool
    data: Any


class Pagination(Model):
    page: int
    per_page: int
    total_pages: int
    total_items: int


class BatchPage(Model):
    success: bool
    data: list[dict[str, Any]]
    pagination: Pagination


def envelope_of(model: type[BaseModel]) -> type[BaseModel]:
    """`{"success": true, "data": <model>}` as an OpenAPI schema."""
    from pydantic import create_model

    created: type[BaseModel] = create_model(f"{model.__name__}Envelope", success=(bool, ...), data=(model, ...))
    return created
