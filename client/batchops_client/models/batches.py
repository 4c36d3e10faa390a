"""Batches (the Batches document, `/v1/batches`): what its calls answer."""

from __future__ import annotations

from typing import Any, Optional

from batchops_client.models._base import Model

# A batch in one of these states changes no more.
FINISHED = frozenset({"completed", "failed", "cancelled", "timed_out"})
# ...and of these, the ones a caller should treat as not done (the CLI exits 1 on them).
UNSUCCESSFUL = frozenset({"failed", "cancelled", "timed_out"})


class JobCounts(Model):
    total: int = 0
    queued: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    timed_out: int = 0


class Progress(Model):
    percentage: int = 0
    current_jobs: list[str] = []
    completed_jobs: list[str] = []
    failed_jobs: list[str] = []
    estimated_remaining: Optional[str] = None


class ResourceUsage(Model):
    invocations: int = 0
    billed_duration_ms: int = 0
    credits_used: int = 0
    credits_estimated: Optional[int] = None


class CreatedBatch(Model):
    """`batches.create`: the new batch, with the secret its job calls and webhook are signed with
    (shown only here)."""

    batch_id: str
    name: str
    status: str
    created_at: Optional[str] = None
    estimated_completion: Optional[str] = None
    jobs: JobCounts = JobCounts()
    priority: Optional[str] = None
    webhook_url: Optional[str] = None
    signing_secret: Optional[str] = None


class Batch(Model):
    """`batches.get_status`: a batch's state, progress and counts."""

    batch_id: str
    name: str
    status: str
    description: Optional[str] = None
    type: Optional[str] = None
    priority: Optional[str] = None
    created_at: Optional[str] = None
    started_at: Optional[str] = None
    completed_at: Optional[str] = None
    progress: Progress = Progress()
    jobs: JobCounts = JobCounts()
    resource_usage: Optional[ResourceUsage] = None
    webhook_url: Optional[str] = None
    error: Optional[dict[str, Any]] = None
    retry_of: Optional[str] = None
    retried_by: list[str] = []
    individual_jobs: Optional[list[dict[str, Any]]] = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def succeeded(self) -> bool:
        return self.status == "completed"


class Pagination(Model):
    page: int
    per_page: int
    total_pages: int
    total_items: int


class BatchList(Model):
    """`batches.list`: one page of batches, newest first, and where it is in the whole."""

    success: bool = True
    data: list[Batch] = []
    pagination: Pagination


class BatchResults(Model):
    """`batches.get_results` in JSON: per-job results, the summary and aggregated metrics."""

    batch_id: str
    name: Optional[str] = None
    status: str
    completed_at: Optional[str] = None
    partial: bool = False
    summary: dict[str, Any] = {}
    aggregated_metrics: dict[str, Any] = {}
    job_results: list[dict[str, Any]] = []
    download_links: Optional[dict[str, str]] = None


class CancelledBatch(Model):
    batch_id: str
    status: str
    cancelled_at: Optional[str] = None
    reason: Optional[str] = None
    jobs_cancelled: int = 0
    jobs_completed: int = 0
    credits_refunded: int = 0
    partial_results_available: bool = False


class RetriedBatch(Model):
    batch_id: str
    jobs_retried: int
    new_batch_id: str
    estimated_completion: Optional[str] = None
    signing_secret: Optional[str] = None
