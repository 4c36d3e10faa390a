"""The rules every part of a batch's life shares: the max_parallel window, progress thresholds,
completion exactly once, lifecycle events, estimates, and how a batch and its jobs are shown.

Everything here is safe to repeat: a redelivered worker message or a sweeper pass may run any of
it again for the same job, and nothing is released, finished or emitted twice (conditional
counters and flags in `dal.batches`, deterministic event keys in `services.webhooks`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from batchops.dal.batches import BatchRepository, JobChange, counter
from batchops.dal.items import iso
from batchops.dal.messaging import send_messages
from batchops.models.batches import BatchStatus, JobStatus, Priority
from batchops.observability import logger
from batchops.services import webhooks
from batchops.settings import get_settings

__all__ = ["counter"]

PROGRESS_THRESHOLDS = (25, 50, 75)
# An unfinished batch is looked at by the sweeper at least this often (and at its deadline).
RECHECK_SECONDS = 300
# A queued job whose message seems lost is sent again this long after it was queued (or due).
QUEUED_GRACE_SECONDS = 300
MAX_RELEASE_ROUNDS = 50
FINISHED_EVENTS = {
    BatchStatus.COMPLETED: "batch.completed",
    BatchStatus.FAILED: "batch.failed",
    BatchStatus.TIMED_OUT: "batch.failed",
    BatchStatus.CANCELLED: "batch.cancelled",
}


def repository() -> BatchRepository:
    return BatchRepository(get_settings().table_name)


def now_utc() -> datetime:
    return datetime.now(UTC)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def queued_check_at(now: datetime, delay_seconds: int = 0) -> str:
    return iso(now + timedelta(seconds=delay_seconds + QUEUED_GRACE_SECONDS))


# ---------------------------------------------------------------- queues and events
def queue_url(batch: dict[str, Any]) -> str:
    settings = get_settings()
    if Priority(batch["priority"]).expedited:
        return settings.batch_urgent_job_queue_url
    return settings.batch_job_queue_url


def job_message(workspace_id: str, batch_id: str, index: int) -> dict[str, Any]:
    return {"workspace_id": workspace_id, "batch_id": batch_id, "index": index}


def enqueue(workspace_id: str, batch: dict[str, Any], indexes: Sequence[int], *, delay_seconds: int = 0) -> None:
    """Send the jobs' messages; one SQS would not take is sent again by the sweeper (the job's
    check_at passes while it is still queued)."""
    if not indexes:
        return
    messages = [job_message(workspace_id, batch["batch_id"], i) for i in indexes]
    unsent = send_messages(queue_url(batch), messages, delay_seconds=delay_seconds)
    if unsent:
        logger().error("Batch jobs stored but not queued; the sweeper will queue them", extra={"jobs": len(unsent)})


def emit(workspace_id: str, batch: dict[str, Any], event: str, data: dict[str, Any], key: str) -> None:
    webhook = (batch["webhook_url"], batch["signing_secret"]) if batch.get("webhook_url") else None
    webhooks.emit(
        workspace_id,
        event,
        batch["batch_id"],
        {"name": batch["name"], **data},
        event_key=f"{batch['batch_id']}:{key}",
        batch_webhook=webhook,
        email=batch.get("email"),
    )


def summary_event(batch: dict[str, Any]) -> dict[str, Any]:
    return {
        "batch_id": batch["batch_id"],
        "status": batch["status"],
        "priority": batch["priority"],
        "jobs": job_counts(batch),
    }


def progress_event(batch: dict[str, Any], percentage: int) -> dict[str, Any]:
    counts = job_counts(batch)
    done = finished_count(batch)
    return {
        "percentage": percentage,
        "jobs_completed": done,
        "jobs_running": counts["running"],
        "jobs_remaining": counts["total"] - done,
    }


def emit_finished(workspace_id: str, batch: dict[str, Any]) -> None:
    status = BatchStatus(batch["status"])
    if not status.finished:
        return
    data: dict[str, Any] = {"status": str(status), "jobs": job_counts(batch), "completed_at": batch.get("finished_at")}
    if batch.get("error"):
        data["error"] = batch["error"]
    emit(workspace_id, batch, FINISHED_EVENTS[status], data, "finished")


# ---------------------------------------------------------------- counts
def job_counts(batch: dict[str, Any]) -> dict[str, int]:
    def n(status: JobStatus) -> int:
        return int(batch.get(counter(status), 0))

    return {
        "total": int(batch["total"]),
        "queued": n(JobStatus.PENDING) + n(JobStatus.QUEUED),
        "running": n(JobStatus.RUNNING),
        "completed": n(JobStatus.COMPLETED),
        "failed": n(JobStatus.FAILED),
        "cancelled": n(JobStatus.CANCELLED),
        "timed_out": n(JobStatus.TIMED_OUT),
    }


def finished_count(batch: dict[str, Any]) -> int:
    counts = job_counts(batch)
    return counts["completed"] + counts["failed"] + counts["cancelled"] + counts["timed_out"]


def unfinished_count(batch: dict[str, Any]) -> int:
    return sum(int(batch.get(counter(s), 0)) for s in (JobStatus.PENDING, JobStatus.QUEUED, JobStatus.RUNNING))


def percentage(batch: dict[str, Any]) -> int:
    total = int(batch["total"])
    return 100 if total == 0 else math.floor(finished_count(batch) * 100 / total)


# ---------------------------------------------------------------- the window and the end
def release_window(workspace_id: str, batch_id: str) -> list[int]:
    """Fill the batch's window with its next pending jobs and queue them; each release is a
    conditional move of the batch's counters, so two finishers never release the same job."""
    repo = repository()
    released: list[int] = []
    batch: dict[str, Any] | None = None
    for _ in range(MAX_RELEASE_ROUNDS):
        batch = repo.get(workspace_id, batch_id)
        if batch is None or BatchStatus(batch["status"]).finished:
            break
        index = int(batch["next_release"])
        if index >= int(batch["total"]) or int(batch["in_flight"]) >= int(batch["max_parallel"]):
            break
        fields = {"check_at": queued_check_at(now_utc())}
        if repo.release(workspace_id, batch_id, index=index, max_parallel=int(batch["max_parallel"]), fields=fields):
            released.append(index)
    if released and batch is not None:
        enqueue(workspace_id, batch, released)
    return released


def settle(workspace_id: str, batch_id: str) -> dict[str, Any] | None:
    """After a job ended: fill the window, emit the progress thresholds crossed, and finish the
    batch when nothing is left to run. Returns the batch as last read."""
    release_window(workspace_id, batch_id)
    repo = repository()
    batch = repo.get(workspace_id, batch_id)
    if batch is None:
        return None
    status = BatchStatus(batch["status"])
    if status in (BatchStatus.CANCELLED, BatchStatus.TIMED_OUT):
        return batch  # ended by a client or the sweeper: no progress events any more
    total = int(batch["total"])
    done = finished_count(batch)
    for threshold in PROGRESS_THRESHOLDS:
        flag = f"progress_{threshold}"
        if done * 100 >= threshold * total and (
            batch.get(flag) or repo.mark_once(workspace_id, batch_id, flag, iso(now_utc()))
        ):
            emit(workspace_id, batch, "batch.progress", {"progress": progress_event(batch, threshold)}, flag)
    if not status.finished and unfinished_count(batch) == 0:
        failed = int(batch.get(counter(JobStatus.FAILED), 0)) + int(batch.get(counter(JobStatus.TIMED_OUT), 0))
        final = BatchStatus.FAILED if failed else BatchStatus.COMPLETED
        fields = {"finished_at": iso(now_utc())}
        if repo.finish(workspace_id, batch_id, final, fields, only_when_drained=True):
            logger().info("Batch finished", extra={"batch_id": batch_id, "status": str(final)})
        batch = repo.get(workspace_id, batch_id) or batch
    if BatchStatus(batch["status"]).finished:
        emit_finished(workspace_id, batch)
    return batch


def end_unfinished_jobs(
    workspace_id: str,
    batch_id: str,
    *,
    include_running: bool,
    running_to: JobStatus,
    error: dict[str, Any] | None = None,
) -> int:
    """End every pending or queued job as cancelled (and running ones as `running_to`, when
    asked); returns how many were ended here. A job a worker moves meanwhile is read again."""
    repo = repository()
    ended = 0
    now = iso(now_utc())
    for job in repo.jobs(workspace_id, batch_id):
        current: dict[str, Any] | None = job
        for _ in range(4):
            if current is None:
                break
            status = JobStatus(current["status"])
            if status.finished or (status is JobStatus.RUNNING and not include_running):
                break
            to = running_to if status is JobStatus.RUNNING else JobStatus.CANCELLED
            fields: dict[str, Any] = {"finished_at": now, "lease_until": None, "check_at": None}
            if error is not None:
                fields["error"] = error
            change = JobChange(
                from_status=status,
                from_attempts=int(current["attempts"]),
                to=to,
                attempts=int(current["attempts"]),
                fields=fields,
                batch_adds={"in_flight": -1} if status in (JobStatus.QUEUED, JobStatus.RUNNING) else {},
            )
            if repo.change_job(workspace_id, batch_id, current, change):
                ended += 1
                break
            current = repo.get_job(workspace_id, batch_id, int(current["index"]))
    return ended


# ---------------------------------------------------------------- estimates and usage
def _averages(workspace_id: str) -> dict[str, float]:
    stats = repository().job_stats(workspace_id)
    averages = {}
    for name, count in stats.items():
        if name.startswith("n#") and int(count) > 0:
            job_type = name[2:]
            averages[job_type] = float(stats.get(f"ms#{job_type}", 0)) / int(count)
    return averages


def _expected_ms(averages: dict[str, float], types: Sequence[str]) -> float | None:
    """Milliseconds of work the jobs should take, from the workspace's recorded durations (a type
    without history counts as the mean of the others); None without any history."""
    if not averages:
        return None
    overall = sum(averages.values()) / len(averages)
    return sum(averages.get(t, overall) for t in types)


def estimated_completion(
    workspace_id: str, batch: dict[str, Any], jobs: Sequence[dict[str, Any]], now: datetime
) -> str | None:
    work = _expected_ms(_averages(workspace_id), [j["type"] for j in jobs])
    if work is None or not jobs:
        return None
    lanes = min(int(batch["max_parallel"]), len(jobs))
    return iso(now + timedelta(milliseconds=work / lanes))


def _remaining_ms(workspace_id: str, batch: dict[str, Any], jobs: Sequence[dict[str, Any]]) -> float | None:
    left = [j["job_type"] for j in jobs if not JobStatus(j["status"]).finished]
    if not left:
        return 0.0
    return _expected_ms(_averages(workspace_id), left)


def hms(seconds: float) -> str:
    whole = max(0, math.ceil(seconds))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def resource_usage(workspace_id: str, batch: dict[str, Any], jobs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    used = int(batch.get("credits", 0))
    remaining = _remaining_ms(workspace_id, batch, jobs)
    if BatchStatus(batch["status"]).finished:
        estimated: int | None = used
    elif remaining is None:
        estimated = None
    else:
        estimated = used + math.ceil(remaining / 1000)
    return {
        "invocations": int(batch.get("invocations", 0)),
        "billed_duration_ms": int(batch.get("billed_ms", 0)),
        "credits_used": used,
        "credits_estimated": estimated,
    }


def duration_seconds(batch: dict[str, Any]) -> float | None:
    if not batch.get("started_at"):
        return None
    end = parse_time(batch["finished_at"]) if batch.get("finished_at") else now_utc()
    return round((end - parse_time(batch["started_at"])).total_seconds(), 3)


# ---------------------------------------------------------------- views
def public_job(job: dict[str, Any]) -> dict[str, Any]:
    status = JobStatus(job["status"])
    return {
        "id": job["job_id"],
        "type": job["job_type"],
        "status": status.public,
        "progress": 100 if status.finished else 0,
        "attempts": int(job.get("attempts", 0)),
        "started_at": job.get("started_at"),
        "completed_at": job.get("finished_at"),
        "duration_ms": job.get("duration_ms"),
        "error": job.get("error"),
    }


def public_batch(
    batch: dict[str, Any], jobs: Sequence[dict[str, Any]] | None = None, *, now: datetime | None = None
) -> dict[str, Any]:
    jobs = list(jobs or [])
    workspace_id = batch["workspace_id"]
    remaining = _remaining_ms(workspace_id, batch, jobs) if jobs else None
    lanes = max(1, min(int(batch["max_parallel"]), max(1, unfinished_count(batch))))
    return {
        "batch_id": batch["batch_id"],
        "name": batch["name"],
        "description": batch.get("description"),
        "type": batch.get("batch_type"),
        "status": batch["status"],
        "priority": batch["priority"],
        "created_at": batch["created_at"],
        "started_at": batch.get("started_at"),
        "completed_at": batch.get("finished_at"),
        "progress": {
            "percentage": percentage(batch),
            "current_jobs": [j["job_id"] for j in jobs if j["status"] == str(JobStatus.RUNNING)],
            "completed_jobs": [j["job_id"] for j in jobs if j["status"] == str(JobStatus.COMPLETED)],
            "failed_jobs": [
                j["job_id"] for j in jobs if j["status"] in (str(JobStatus.FAILED), str(JobStatus.TIMED_OUT))
            ],
            "estimated_remaining": None if remaining is None else hms(remaining / 1000 / lanes),
        },
        "jobs": job_counts(batch),
        "resource_usage": resource_usage(workspace_id, batch, jobs) if jobs else None,
        "options": {
            "max_parallel": int(batch["max_parallel"]),
            "timeout_minutes": batch["timeout_minutes"],
            "retry_failed": bool(batch.get("retry_failed")),
            "max_retries": int(batch.get("max_retries", 0)),
            "output": batch.get("output") or {},
        },
        "estimated_completion": batch.get("estimated_completion"),
        "webhook_url": batch.get("webhook_url"),
        "error": batch.get("error"),
        "cancel_reason": batch.get("cancel_reason"),
        "retry_of": batch.get("retry_of"),
        "retried_by": list(batch.get("retried_by") or []),
    }


def list_entry(batch: dict[str, Any]) -> dict[str, Any]:
    counts = job_counts(batch)
    duration = duration_seconds(batch)
    return {
        "batch_id": batch["batch_id"],
        "name": batch["name"],
        "type": batch.get("batch_type"),
        "status": batch["status"],
        "priority": batch["priority"],
        "created_at": batch["created_at"],
        "started_at": batch.get("started_at"),
        "completed_at": batch.get("finished_at"),
        "duration_minutes": None if duration is None else round(duration / 60, 2),
        "jobs_summary": counts,
        "results_available": counts["completed"] + counts["failed"] > 0,
        "retry_of": batch.get("retry_of"),
    }


def result_entry(job: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
    status = JobStatus(job["status"])
    result: Any = None
    if stored is not None and status is JobStatus.COMPLETED:
        text = stored.get("raw_text") or ""
        try:
            result = json.loads(text) if text.strip() else None
        except ValueError:
            result = text
    return {
        "id": job["job_id"],
        "type": job["job_type"],
        "status": status.public,
        "duration_ms": job.get("duration_ms"),
        "result": result,
        "error": job.get("error"),
    }


def export_header(batch: dict[str, Any]) -> dict[str, Any]:
    return {
        "batch_id": batch["batch_id"],
        "name": batch["name"],
        "status": batch["status"],
        "created_at": batch["created_at"],
        "finished_at": batch.get("finished_at"),
    }
