"""Jobs, runs and bulk triggers (seed 001), in the seed's snake_case.

Seed 001 documents Strait, so where the seed is silent the request and response shapes are
Strait's (its server's `CreateJobRequest`, `TriggerRequest`, `BulkTriggerItem`, `JobRun` and
trigger answers), so that Strait's own SDK works unchanged. The seed's BatchOperation is kept
as the seed lists it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, StringConstraints, field_validator

from batchops.models.base import Model
from batchops.models.headers import check_header_fields
from batchops.models.validation import CRON_PATTERN, HTTP_URL_PATTERN, TEXT_PATTERN

MAX_PAYLOAD_BYTES = 256 * 1024
# The part of an endpoint's response kept as a run's result.
MAX_RESULT_BYTES = 256 * 1024
MAX_BULK_ITEMS = 500
MAX_JOB_HEADERS = 50
# Headers batchops sets on every call: a job may not override them.
RESERVED_HEADERS = frozenset(
    {"webhook-id", "webhook-timestamp", "webhook-signature", "host", "content-length", "content-type"}
)
# Strait's bounds (its server's validate tags and validation.go).
MAX_NAME_LENGTH = 255
MAX_SLUG_LENGTH = 128
MAX_DESCRIPTION_LENGTH = 2000
MAX_PRIORITY = 10
# Runs of this priority and above (the upper half of Strait's 0-10, "high" and "urgent") go
# through a queue of their own, so a backlog of runs below it (the default 0 included) never
# delays them (DESIGN §2: urgent/high apart from medium/low).
URGENT_RUN_PRIORITY = 5
MAX_TTL_SECS = 30 * 24 * 3600
MAX_SCHEDULE_AHEAD = timedelta(days=30)
MAX_KEY_LENGTH = 256
MAX_TAGS = 20
MAX_TAG_KEY_LENGTH = 64
MAX_TAG_VALUE_LENGTH = 256
# JSON-valued job settings batchops only stores (schemas, payload mappings): bounded so a job
# stays far below DynamoDB's 400 KB item.
MAX_STORED_JSON_BYTES = 32 * 1024
# Strait caps a custom retry delay at one hour (worker/backoff.go maxDelay).
MAX_RETRY_DELAY_SECS = 3600
QUEUE_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,63}$"
# The largest value of Strait's integer settings (Go int64): every value Strait takes is taken, and
# each is a number DynamoDB can store (38 digits; 10**40 failed the write, a 500).
MAX_STRAIT_INT = 2**63 - 1


def canonical_json(payload: Any) -> str:
    """One text per JSON value: key order and spacing never make two payloads differ."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def payload_bytes(payload: Any) -> int:
    return len(canonical_json(payload).encode())


def _check_headers(value: dict[str, str] | None) -> dict[str, str] | None:
    # Optional: models/batches.py checks an http job's optional headers with it too.
    if value is None:
        return None
    if len(value) > MAX_JOB_HEADERS:
        raise ValueError(f"at most {MAX_JOB_HEADERS} headers")
    for name, text in value.items():
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"{name} is set by batchops and cannot be overridden")
        if not 0 < len(name) <= 256 or len(text) > 8 * 1024:
            raise ValueError(f"header {name[:40]!r}: names 1-256 characters, values at most 8 KB")
    # What HTTP can carry (RFC 9110): a CR/LF or non-Latin-1 value used to be stored and then fail
    # every run, as a connection error or a false TIMEOUT.
    check_header_fields(value)
    return value


# The document's view of the validators below (models/validation.py says why they are patterns).
_TEXT: dict[str, JsonValue] = {"pattern": TEXT_PATTERN}
_URL: dict[str, JsonValue] = {"pattern": HTTP_URL_PATTERN}
_CRON: dict[str, JsonValue] = {"pattern": CRON_PATTERN}


def _check_text(value: str) -> str:
    """Free text a client names things with: anything printable. Control characters and lone
    surrogates (which JSON can carry but UTF-8 cannot) would only ever be a client's mistake."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def _check_labels(value: dict[str, str], what: str, limit: int = MAX_TAGS) -> dict[str, str]:
    """Strait's tag rules (api/job_validation.go validateTags), also used for run metadata."""
    if len(value) > limit:
        raise ValueError(f"too many {what} (max {limit})")
    for key, text in value.items():
        if not 0 < len(key) <= MAX_TAG_KEY_LENGTH:
            raise ValueError(f"{what} keys must be 1-{MAX_TAG_KEY_LENGTH} characters")
        if len(text) > MAX_TAG_VALUE_LENGTH:
            raise ValueError(f"{what} values must be at most {MAX_TAG_VALUE_LENGTH} characters")
        _check_text(key)
        _check_text(text)
    return value


def _check_cron(value: str) -> str:
    _check_text(value)
    if len(value.split()) != 5:
        raise ValueError("cron expression must have exactly 5 fields (minute hour day month weekday)")
    return value


def _check_stored_json(value: Any) -> Any:
    if value is not None and payload_bytes(value) > MAX_STORED_JSON_BYTES:
        raise ValueError(f"at most {MAX_STORED_JSON_BYTES:,} bytes as JSON")
    return value


def _check_name(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return _check_text(value)


# A job's name and slug: printable text, not blank. (Length bounds go before the validator, so a
# too-long value is reported in characters.)
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH), AfterValidator(_check_name)]
Slug = Annotated[str, StringConstraints(min_length=1, max_length=MAX_SLUG_LENGTH), AfterValidator(_check_name)]
# A job's extra request headers: none of the ones batchops sets, bounded.
Headers = Annotated[dict[str, str], AfterValidator(_check_headers)]
# Strait's labels (tags), and run metadata (the same rules, more entries).
Tags = Annotated[dict[str, str], AfterValidator(lambda value: _check_labels(value, "tags"))]
Metadata = Annotated[dict[str, str], AfterValidator(lambda value: _check_labels(value, "metadata entries", limit=50))]
# Keys a run is given: printable text, at most 256 characters.
Key = Annotated[str, StringConstraints(max_length=MAX_KEY_LENGTH), AfterValidator(_check_text)]
IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_KEY_LENGTH), AfterValidator(_check_text)]


class StraitJobSettings(Model):
    """The rest of Strait's job fields (`CreateJobRequest`). batchops honours `slug`, `tags`,
    `description`, `run_ttl_secs`, `retry_strategy`, `retry_delays_secs`,
    `default_run_metadata`, `endpoint_signing_secret`/`webhook_secret` and `execution_mode`;
    it stores and returns the others without acting on them (docs/jobs-api.md lists them)."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH, json_schema_extra=_TEXT)
    group_id: str | None = Field(default=None, min_length=1, max_length=255, json_schema_extra=_TEXT)
    tags: Tags | None = Field(
        default=None, description="At most 20; keys 1-64 characters, values at most 256; copied onto every run"
    )
    cron: str | None = Field(
        default=None,
        max_length=255,
        description="Stored only: batchops runs no schedules",
        json_schema_extra=_CRON,
    )
    payload_schema: Any = Field(default=None, description="Stored only")
    fallback_endpoint_url: str | None = Field(default=None, min_length=1, max_length=2048, json_schema_extra=_URL)
    endpoint_signing_secret: str | None = Field(
        default=None, min_length=16, max_length=4096, description="Signs calls to the endpoint instead of a new secret"
    )
    webhook_secret: str | None = Field(
        default=None, min_length=16, max_length=4096, description="Alias of endpoint_signing_secret (wins if both)"
    )
    max_concurrency: int | None = Field(default=None, ge=0, le=MAX_STRAIT_INT)
    max_concurrency_per_key: int | None = Field(default=None, ge=0, le=MAX_STRAIT_INT)
    execution_window_cron: str | None = Field(default=None, max_length=255, json_schema_extra=_CRON)
    timezone: str | None = Field(default=None, min_length=1, max_length=64, json_schema_extra=_TEXT)
    rate_limit_max: int | None = Field(default=None, ge=0, le=MAX_STRAIT_INT)
    rate_limit_window_secs: int | None = Field(default=None, ge=0, le=MAX_STRAIT_INT)
    run_ttl_secs: int | None = Field(
        default=None, ge=0, le=MAX_TTL_SECS, description="Runs not started this long after creation expire (0: never)"
    )
    retry_strategy: Literal["exponential", "linear", "fixed", "custom"] | None = None
    retry_delays_secs: list[int] | None = Field(default=None, max_length=100)
    retry_priority_boost: int | None = Field(default=None, ge=0, le=MAX_PRIORITY)
    environment_id: str | None = Field(default=None, min_length=1, max_length=255, json_schema_extra=_TEXT)
    version_policy: Literal["pin", "latest", "minor"] | None = None
    default_run_metadata: Metadata | None = Field(default=None, description="Every run's metadata, under a trigger's")
    result_schema: Any = None
    cron_overlap_policy: Literal["allow", "skip", "cancel_running"] | None = None
    debounce_window_secs: int | None = Field(default=None, ge=0, le=MAX_STRAIT_INT)
    batch_window_secs: int | None = Field(default=None, ge=0, le=MAX_STRAIT_INT)
    batch_max_size: int | None = Field(default=None, ge=0, le=MAX_STRAIT_INT)
    execution_mode: Literal["http"] | None = Field(
        default=None, description="`http` only: batchops calls endpoints (Strait's `worker` mode has no equivalent)"
    )
    queue_name: str | None = Field(default=None, pattern=QUEUE_NAME_PATTERN)
    poison_pill_threshold: int | None = Field(default=None, ge=1, le=MAX_STRAIT_INT)
    on_complete_trigger_workflow: str | None = Field(default=None, max_length=255, json_schema_extra=_TEXT)
    on_complete_trigger_job: str | None = Field(default=None, max_length=255, json_schema_extra=_TEXT)
    on_complete_payload_mapping: Any = None
    on_failure_trigger_job: str | None = Field(default=None, max_length=255, json_schema_extra=_TEXT)
    on_failure_trigger_workflow: str | None = Field(default=None, max_length=255, json_schema_extra=_TEXT)
    on_failure_payload_mapping: Any = None
    # Strait's authoring DSL sends it; Strait's server has no such field and ignores it.
    webhook_url: str | None = Field(default=None, max_length=2048, json_schema_extra=_TEXT)

    @field_validator(
        "description",
        "group_id",
        "timezone",
        "environment_id",
        "on_complete_trigger_workflow",
        "on_complete_trigger_job",
        "on_failure_trigger_job",
        "on_failure_trigger_workflow",
        "fallback_endpoint_url",
        "webhook_url",
    )
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return None if value is None else _check_text(value)

    @field_validator("cron", "execution_window_cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else _check_cron(value)

    @field_validator("payload_schema", "result_schema", "on_complete_payload_mapping", "on_failure_payload_mapping")
    @classmethod
    def _stored_json(cls, value: Any) -> Any:
        return _check_stored_json(value)

    @field_validator("retry_delays_secs")
    @classmethod
    def _delays(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(not 0 < d <= MAX_RETRY_DELAY_SECS for d in value):
            raise ValueError(f"every delay must be 1-{MAX_RETRY_DELAY_SECS} seconds")
        return value


# Strait's settings that are JSON values of any shape: stored as JSON text (DynamoDB caps nesting
# at 32 levels and has no floats), so any value a client sends can be kept.
JSON_SETTINGS = ("payload_schema", "result_schema", "on_complete_payload_mapping", "on_failure_payload_mapping")
# Write-only: they become the job's signing secret and are never shown again.
SECRET_SETTINGS = ("endpoint_signing_secret", "webhook_secret")


class JobFields(StraitJobSettings):
    endpoint_url: str = Field(min_length=1, max_length=2048, json_schema_extra=_URL)
    method: Literal["POST", "PUT", "PATCH", "DELETE", "GET"] = "POST"
    headers: Headers | None = None
    timeout_secs: int = Field(default=30, ge=1, le=900)
    max_attempts: int = Field(default=3, ge=1, le=10)
    retry_backoff_secs: int = Field(default=2, ge=1, le=3600)
    dedup_window_secs: int = Field(default=0, ge=0, le=86400)
    enabled: bool = True


class JobCreate(JobFields):
    name: Name = Field(description="Unique in the workspace; Batches refer to jobs by it")
    slug: Slug | None = Field(default=None, description="Unique in the workspace when given")
    project_id: str | None = Field(
        default=None, min_length=1, max_length=100, description="The caller's workspace (the default); no other"
    )


# Core fields a PATCH cannot clear: null leaves them as they are.
CORE_JOB_FIELDS = frozenset(
    {
        "name",
        "endpoint_url",
        "method",
        "timeout_secs",
        "max_attempts",
        "retry_backoff_secs",
        "dedup_window_secs",
        "enabled",
    }
)


class JobUpdate(StraitJobSettings):
    """PATCH: only the fields sent change; the same bounds apply. null clears an optional setting."""

    name: Name | None = None
    slug: Slug | None = None
    project_id: str | None = Field(default=None, min_length=1, max_length=100)
    endpoint_url: str | None = Field(default=None, min_length=1, max_length=2048, json_schema_extra=_URL)
    method: Literal["POST", "PUT", "PATCH", "DELETE", "GET"] | None = None
    headers: Headers | None = None
    timeout_secs: int | None = Field(default=None, ge=1, le=900)
    max_attempts: int | None = Field(default=None, ge=1, le=10)
    retry_backoff_secs: int | None = Field(default=None, ge=1, le=3600)
    dedup_window_secs: int | None = Field(default=None, ge=0, le=86400)
    enabled: bool | None = None
    backwards_compatible: bool | None = None


class RunOptions(Model):
    """What one run is given: Strait's `BulkTriggerItem` (and batchops' `idempotency_key`)."""

    model_config = ConfigDict(extra="forbid")

    payload: Any = Field(default_factory=dict, description="Any JSON value, at most 256 KB (262,144 bytes) as JSON")
    idempotency_key: IdempotencyKey | None = Field(
        default=None,
        description="The job's run for this key, for good: a repeat creates nothing",
    )
    priority: int = Field(
        default=0,
        ge=0,
        le=MAX_PRIORITY,
        description=f"0-10; {URGENT_RUN_PRIORITY} and above go through the urgent run queue, ahead of any backlog",
    )
    tags: Tags | None = Field(default=None, description="Merged over the job's tags (these win)")
    ttl_secs: int | None = Field(
        default=None,
        ge=0,
        le=MAX_TTL_SECS,
        description="Expire the run if no worker has started it this long after it is due (0: the job's run_ttl_secs)",
    )
    scheduled_at: datetime | None = Field(
        default=None, description="Start no earlier than this (RFC 3339, future, at most 30 days ahead)"
    )
    concurrency_key: Key | None = Field(default=None, description="Stored and returned")

    @field_validator("payload")
    @classmethod
    def _payload_size(cls, value: Any) -> Any:
        size = payload_bytes(value)
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(f"is {size:,} bytes as JSON; at most {MAX_PAYLOAD_BYTES:,} bytes (256 KB)")
        return value

    @field_validator("scheduled_at")
    @classmethod
    def _scheduled_at(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        now = datetime.now(UTC)
        # Strait refuses both (api/trigger_request.go): a past time is a client's clock or logic error.
        if moment < now:
            raise ValueError("must not be in the past")
        if moment > now + MAX_SCHEDULE_AHEAD:
            raise ValueError("must be at most 30 days ahead")
        return moment.astimezone(UTC)


class TriggerRequest(RunOptions):
    """Strait's `TriggerRequest` for one run, and the `metadata` its authoring DSL sends."""

    dry_run: bool = Field(default=False, description="Validate and answer what would run; create nothing")
    metadata: Metadata | None = Field(
        default=None, description="The run's metadata, merged over the job's default_run_metadata (these win)"
    )
    debounce_key: Key | None = Field(default=None, description="Stored only")
    batch_key: Key | None = Field(default=None, description="Stored only")


class BulkTriggerItem(RunOptions):
    """Strait's `BulkTriggerItem`. Its SDK's authoring DSL also sends `dry_run` and `metadata`
    on every item; Strait's server ignores both (its item has no such fields), and so does
    batchops: each item creates its run."""

    dry_run: bool | None = Field(default=None, description="Ignored, as Strait ignores it")
    metadata: dict[str, str] | None = Field(default=None, description="Ignored, as Strait ignores it")


class BulkTriggerRequest(Model):
    model_config = ConfigDict(extra="forbid")

    items: list[BulkTriggerItem] = Field(
        min_length=1, max_length=MAX_BULK_ITEMS, description="1-500 items; each creates at most one run"
    )


class RunStatus(StrEnum):
    """A run's status as stored. The API shows Strait's names (`RunState`)."""

    QUEUED = "queued"
    DELAYED = "delayed"  # scheduled_at is still ahead
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    EXPIRED = "expired"  # no worker started it before its ttl ran out

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.DELAYED, RunStatus.RUNNING)

    @property
    def waiting(self) -> bool:
        """Not started yet (the only statuses a run can expire from)."""
        return self in (RunStatus.QUEUED, RunStatus.DELAYED)

    @property
    def public(self) -> RunState:
        return _PUBLIC[self]


class RunState(StrEnum):
    """Run statuses as the API shows them: Strait's names (domain/types.go), every terminal one
    in the set the Strait SDK's `wait_for_run` stops on."""

    QUEUED = "queued"
    DELAYED = "delayed"
    EXECUTING = "executing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMED_OUT = "timed_out"
    EXPIRED = "expired"

    @property
    def stored(self) -> RunStatus:
        return _STORED[self]


_PUBLIC = {
    RunStatus.QUEUED: RunState.QUEUED,
    RunStatus.DELAYED: RunState.DELAYED,
    RunStatus.RUNNING: RunState.EXECUTING,
    RunStatus.COMPLETED: RunState.COMPLETED,
    RunStatus.FAILED: RunState.FAILED,
    RunStatus.CANCELLED: RunState.CANCELED,
    RunStatus.TIMED_OUT: RunState.TIMED_OUT,
    RunStatus.EXPIRED: RunState.EXPIRED,
}
_STORED = {public: stored for stored, public in _PUBLIC.items()}


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
    # No worker started the run before its ttl ran out.
    EXPIRED = "EXPIRED"


# Strait's message for an expired run (scheduler/reaper.go).
EXPIRED_MESSAGE = "run expired"


class ErrorClass(StrEnum):
    """Strait's error classes (domain/types.go), as its worker assigns them (worker/executor_errors.go)."""

    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    CLIENT = "client"
    SERVER = "server"
    TRANSIENT = "transient"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    UNKNOWN = "unknown"


# ---------------------------------------------------------------- response shapes (OpenAPI)
class Answer(Model):
    """A response shape. Its body leaves out the fields that were never given (Strait's server
    omits keys without a value) and keeps those given as None as null (a job's `slug`, a batch
    operation's `finished_at`)."""

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class RunErrorDetail(Answer):
    code: str = Field(description="HTTP_ERROR, TIMEOUT, CONNECTION_ERROR, UNSAFE_URL, ... (docs/jobs-api.md)")
    message: str
    http_status: int | None = None


class Run(Answer):
    """Strait's `JobRun`; keys without a value are left out, as Strait's server does."""

    id: str
    job_id: str
    job_slug: str | None = None
    project_id: str
    batch_id: str | None = None
    status: RunState
    attempt: int = Field(description="The attempt in progress or last made; 1 before the first")
    payload: Any = None
    result: Any = Field(default=None, description="The endpoint's JSON response (text if not JSON), at most 256 KB")
    error: str | None = Field(default=None, description="What went wrong, as text (Strait's shape)")
    error_class: ErrorClass | None = None
    error_detail: RunErrorDetail | None = Field(default=None, description="batchops: the error's code and HTTP status")
    tags: dict[str, str] | None = None
    metadata: dict[str, str] | None = None
    priority: int
    idempotency_key: str | None = None
    concurrency_key: str | None = None
    triggered_by: str = Field(description="`manual`: an API trigger")
    created_by: str | None = None
    job_version: int
    execution_mode: str
    scheduled_at: str | None = None
    expires_at: str | None = Field(default=None, description="The run expires if not started by then")
    started_at: str | None = None
    next_retry_at: str | None = None
    finished_at: str | None = None
    completed_at: str | None = Field(default=None, description="finished_at under the Strait SDK's name")
    created_at: str
    updated_at: str


class Page(Answer):
    """Strait's list shape (api/pagination.go): `next_cursor` only when there is a next page."""

    has_more: bool
    next_cursor: str | None = Field(default=None, description="Present only when has_more is true")

    @classmethod
    def of(cls, data: Sequence[BaseModel], next_cursor: str | None) -> Self:
        fields: dict[str, Any] = {"data": list(data), "has_more": next_cursor is not None}
        if next_cursor is not None:
            fields["next_cursor"] = next_cursor
        return cls(**fields)


class RunPage(Page):
    data: list[Run]


class Job(Answer):
    """A job as the API shows it: batchops' fields, Strait's always-present ones, and whichever
    of Strait's optional settings were given."""

    model_config = ConfigDict(extra="allow")

    id: str
    project_id: str
    name: str
    slug: str | None
    endpoint_url: str
    method: str
    headers: dict[str, str]
    timeout_secs: int
    max_attempts: int
    retry_backoff_secs: int
    dedup_window_secs: int
    enabled: bool
    paused: bool = Field(description="Always false: batchops has no paused jobs")
    version: int = Field(description="1 at creation, one more per change")
    created_by: str | None = None
    updated_by: str | None = None
    created_at: str
    updated_at: str
    signing_secret: str | None = Field(default=None, description="Only in the create answer")


class JobPage(Page):
    data: list[Job]


class TriggerResponse(Answer):
    """Strait's trigger answers: a new run or a payload de-duplication hit (201, with
    `payload_hash`), or a run-level idempotency hit (200, without it)."""

    id: str
    status: RunState
    payload_hash: str | None = None
    idempotency_hit: bool


class DryRunJob(Answer):
    id: str
    name: str
    slug: str | None
    execution_mode: str
    queue: str
    timeout_secs: int
    max_attempts: int
    version: int


class DryRunResponse(Answer):
    job: DryRunJob
    payload_hash: str
    payload: Any
    scheduled_at: str | None
    expires_at: str | None
    validation_warnings: list[str]


class BulkTriggerResult(Answer):
    id: str
    status: RunState
    idempotency_hit: bool = Field(description="true: an earlier run with this idempotency key")


class BulkTriggerResponse(Answer):
    """Strait's answer: one result per item, in item order; repeats name the run they repeat."""

    batch_id: str
    results: list[BulkTriggerResult]
    total: int
    created: int


class BatchOperation(Answer):
    """Exactly the seed's BatchOperation fields."""

    id: str
    project_id: str
    job_id: str
    item_count: int
    created_count: int = Field(description="Runs created; lower than item_count when items were duplicates")
    created_by: str = Field(description="apikey:<key id>")
    created_at: str
    finished_at: str | None = Field(description="Set once, when every created run has finished; null until then")


class BatchOperationPage(Page):
    data: list[BatchOperation]


# Strait's page size (api/pagination.go): 50 unless asked, and a larger ask is served 100.
DEFAULT_PAGE_LIMIT = 50
MAX_PAGE_LIMIT = 100
