"""Jobs, runs and batch operations (seed 001, in Strait's shapes): plain snake_case objects.

Lists are Strait's pages, `{"data", "has_more", "next_cursor"}`, `next_cursor` only while
`has_more`. Keys the API leaves out (Strait omits keys without a value) are None here.
"""

from __future__ import annotations

from typing import Any, Optional

from batchops_client.models._base import Model

# Run statuses as the API shows them (Strait's names); these change no more.
RUN_FINISHED = frozenset({"completed", "failed", "canceled", "timed_out", "expired"})
RUN_STATUSES = ("queued", "delayed", "executing", "completed", "failed", "canceled", "timed_out", "expired")


class Job(Model):
    """A registered job: the endpoint batchops calls for each run, and how.
    `signing_secret` is only in the create answer. Strait's optional settings that were given
    (`description`, `tags`, `run_ttl_secs`, ...) are kept as extra keys: `job["tags"]`."""

    id: str
    name: str
    endpoint_url: str
    project_id: Optional[str] = None
    slug: Optional[str] = None
    method: str = "POST"
    headers: dict[str, str] = {}
    timeout_secs: Optional[int] = None
    max_attempts: Optional[int] = None
    retry_backoff_secs: Optional[int] = None
    dedup_window_secs: Optional[int] = None
    enabled: bool = True
    paused: bool = False
    version: Optional[int] = None
    created_by: Optional[str] = None
    updated_by: Optional[str] = None
    created_at: Optional[str] = None
    updated_at: Optional[str] = None
    signing_secret: Optional[str] = None


class JobList(Model):
    data: list[Job] = []
    has_more: bool = False
    next_cursor: Optional[str] = None


class RunErrorDetail(Model):
    code: str
    message: str
    http_status: Optional[int] = None


class Run(Model):
    """One run of a job (Strait's `JobRun`). `status` is one of `RUN_STATUSES`."""

    id: str
    job_id: str
    status: str
    job_slug: Optional[str] = None
    project_id: Optional[str] = None
    batch_id: Optional[str] = None
    attempt: int = 1
    payload: Any = None
    result: Any = None
    error: Optional[str] = None
    error_class: Optional[str] = None
    error_detail: Optional[RunErrorDetail] = None
    tags: Optional[dict[str, str]] = None
    metadata: Optional[dict[str, str]] = None
    priority: int = 0
    idempotency_key: Optional[str] = None
    concurrency_key: Optional[str] = None
    triggered_by: Optional[str] = None
    created_by: Optional[str] = None
    job_version: Optional[int] = None
    execution_mode: Optional[str] = None
    scheduled_at: Optional[str] = None
    expires_at: Optional[str] = None
    started_at: Optional[str] = None
    next_retry_at: Optional[str] = None
    finished_at: Optional[str] = None
    completed_at: Optional[str] = None
    created_at: Optional[str] = None
    updated_at: Optional[str] = None

    @property
    def finished(self) -> bool:
        return self.status in RUN_FINISHED

    @property
    def succeeded(self) -> bool:
        return self.status == "completed"


class RunList(Model):
    """One page of runs. A filtered page can be short, even empty, with `has_more` true."""

    data: list[Run] = []
    has_more: bool = False
    next_cursor: Optional[str] = None


class TriggeredRun(Model):
    """`jobs.trigger`: the run created (201), the existing run a payload de-duplication found
    (201, `payload_hash` set) or the one an idempotency key names (200, `idempotency_hit`).
    The whole run is `runs.get(id)`; `runs.wait(id)` follows it to the end."""

    id: str
    status: str
    payload_hash: Optional[str] = None
    idempotency_hit: bool = False

    @property
    def finished(self) -> bool:
        return self.status in RUN_FINISHED

    @property
    def succeeded(self) -> bool:
        return self.status == "completed"


class DryRunJob(Model):
    id: str
    name: str
    slug: Optional[str] = None
    execution_mode: Optional[str] = None
    queue: Optional[str] = None
    timeout_secs: Optional[int] = None
    max_attempts: Optional[int] = None
    version: Optional[int] = None


class TriggerDryRun(Model):
    """`jobs.trigger_dry_run`: what a trigger would run; nothing was created."""

    job: DryRunJob
    payload_hash: str
    payload: Any = None
    scheduled_at: Optional[str] = None
    expires_at: Optional[str] = None
    validation_warnings: list[str] = []


class BulkTriggerResult(Model):
    id: str
    status: str
    idempotency_hit: bool = False


class BulkTrigger(Model):
    """`jobs.trigger_bulk`: the batch operation (`batch_id`) and one result per item, in item
    order; an item repeating an earlier one or an earlier run names that run and creates nothing."""

    batch_id: str
    results: list[BulkTriggerResult] = []
    total: int = 0
    created: int = 0

    @property
    def batch_operation_id(self) -> str:
        return self.batch_id

    @property
    def duplicates(self) -> int:
        """Items that named an existing run instead of creating one."""
        return self.total - self.created


class BatchOperation(Model):
    """A bulk trigger's record (the seed's fields): `finished_at` is set once every run it
    created has finished, null until then."""

    id: str
    job_id: str
    item_count: int = 0
    created_count: int = 0
    project_id: Optional[str] = None
    created_by: Optional[str] = None
    created_at: Optional[str] = None
    finished_at: Optional[str] = None

    @property
    def total(self) -> int:
        return self.item_count

    @property
    def duplicates(self) -> int:
        """Items that created no run (they repeated an earlier item or run)."""
        return self.item_count - self.created_count

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def succeeded(self) -> bool:
        """Processed: every run it created has finished. How each run ended is on the runs
        (`batch_operations.run_counts(id)`, or `runs.iterate(batch_id=id)`); the record does not
        say."""
        return self.finished


class BatchOperationList(Model):
    data: list[BatchOperation] = []
    has_more: bool = False
    next_cursor: Optional[str] = None


class RunCounts(Model):
    """How many of a batch operation's runs are in each status (read from its runs)."""

    total: int = 0
    queued: int = 0
    delayed: int = 0
    executing: int = 0
    completed: int = 0
    failed: int = 0
    canceled: int = 0
    timed_out: int = 0
    expired: int = 0

    @property
    def finished(self) -> int:
        return self.completed + self.failed + self.canceled + self.timed_out + self.expired

    @property
    def unsuccessful(self) -> int:
        return self.failed + self.canceled + self.timed_out + self.expired
