"""The rules every part of a batch's life shares: the max_parallel window, progress thresholds,
completion exactly once, lifecycle events, estimates, and how a batch and its jobs are shown.

Everything here is safe to repeat: a redelivered worker message or a sweeper pass may run any of
it again for the same job, and nothing is released, finished or emitted twice (conditional
counters and flags in `dal.batches`, deterministic event keys in `services.webhooks`).

Events are state-driven: each is an outbox item written in the transaction of the change that
causes it (`dal.batches.OutboxEvent`), then `send_events` hands it to the webhooks and deletes it.
Sending is best effort where the change happens (a failure there must not fail, or repeat, the
work that was committed); whatever is left is sent by the sweeper (`follow_up`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from batchops.dal.batches import BatchRepository, JobChange, OutboxEvent, counter
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
# A finished batch's follow-up (ending its jobs, sending its events) is looked at again this soon
# when its finisher may have stopped half-way.
FOLLOW_UP_SECONDS = 60
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


def _emit(workspace_id: str, batch: dict[str, Any], event: str, data: dict[str, Any], key: str) -> None:
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


def created_event(batch: dict[str, Any]) -> OutboxEvent:
    return OutboxEvent("created", "batch.created", {"batch": summary_event(batch)})


def started_event(batch: dict[str, Any]) -> OutboxEvent:
    return OutboxEvent("started", "batch.started", {"batch": summary_event(batch)})


def progress_event(batch: dict[str, Any], percentage: int) -> dict[str, Any]:
    counts = job_counts(batch)
    done = finished_count(batch)
    return {
        "percentage": percentage,
        "jobs_completed": done,
        "jobs_running": counts["running"],
        "jobs_remaining": counts["total"] - done,
    }


# The end's event says how the batch ended once every job has: its data is read when it is sent.
FINISHED = OutboxEvent("finished", "batch.finished")
# Ended by a client or the sweeper, not by its jobs: no progress is reported after that.
ENDED_EARLY = (BatchStatus.CANCELLED, BatchStatus.TIMED_OUT)


def _send_order(item: OutboxEvent) -> tuple[int, int]:
    """The order events happened in: created, started, each job's end (by index), progress (by
    threshold), the batch's end last. Keys sort otherwise (`finished` before `job:1`, `job:10`
    before `job:9`), and the end went out before the last job's batch.job_completed."""
    key = item.key
    if key.startswith("job:"):
        return 2, int(key.removeprefix("job:"))
    if key.startswith("progress_"):
        return 3, int(key.removeprefix("progress_"))
    return {"created": 0, "started": 1, FINISHED.key: 5}.get(key, 4), 0


def _finished_data(batch: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    status = BatchStatus(batch["status"])
    data: dict[str, Any] = {"status": str(status), "jobs": job_counts(batch), "completed_at": batch.get("finished_at")}
    if batch.get("error"):
        data["error"] = batch["error"]
    return FINISHED_EVENTS[status], data


def send_events(workspace_id: str, batch: dict[str, Any]) -> bool:
    """Hand the batch's outbox to the webhooks in the order the events happened, deleting each once its
    deliveries are stored and queued. Never raises: False when something is left for the sweeper
    (the events stay in the outbox; a repeat creates no second delivery)."""
    repo = repository()
    try:
        pending = sorted(repo.outbox(workspace_id, batch["batch_id"]), key=_send_order)
        # In order, stopping at the first failure: the end is sent only after every other event.
        for item in pending:
            if item.key == FINISHED.key:
                current = repo.get(workspace_id, batch["batch_id"]) or batch
                if not BatchStatus(current["status"]).finished:
                    continue
                event, data = _finished_data(current)
            else:
                event, data = item.event, item.data or {}
            _emit(workspace_id, batch, event, data, item.key)
            repo.delete_outbox(workspace_id, batch["batch_id"], item.key)
    except Exception:  # noqa: BLE001 - the outbox keeps them; the sweeper sends them again
        logger().warning(
            "Batch events not sent yet; the sweeper will", extra={"batch_id": batch["batch_id"]}, exc_info=True
        )
        return False
    return True


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
    """After a job ended: fill the window, mark the progress thresholds crossed, finish the batch
    when nothing is left to run, and send the events all that caused. Returns the batch as last
    read."""
    release_window(workspace_id, batch_id)
    repo = repository()
    batch = repo.get(workspace_id, batch_id)
    if batch is None:
        return None
    status = BatchStatus(batch["status"])
    # A batch ended by a client or the sweeper sends no progress any more.
    if status not in ENDED_EARLY:
        total = int(batch["total"])
        done = finished_count(batch)
        for threshold in PROGRESS_THRESHOLDS:
            flag = f"progress_{threshold}"
            if done * 100 >= threshold * total and not batch.get(flag):
                event = OutboxEvent(flag, "batch.progress", {"progress": progress_event(batch, threshold)})
                # Conditional on the status too: a cancel or timeout committed since the read above
                # has sent its end already, and may have retired the batch (its outbox unswept).
                repo.mark_once(workspace_id, batch_id, flag, iso(now_utc()), outbox=[event], unless_status=ENDED_EARLY)
        if not status.finished and unfinished_count(batch) == 0:
            failed = int(batch.get(counter(JobStatus.FAILED), 0)) + int(batch.get(counter(JobStatus.TIMED_OUT), 0))
            final = BatchStatus.FAILED if failed else BatchStatus.COMPLETED
            if finish(workspace_id, batch_id, final, {"finished_at": iso(now_utc())}, only_when_drained=True):
                logger().info("Batch finished", extra={"batch_id": batch_id, "status": str(final)})
        batch = repo.get(workspace_id, batch_id) or batch
    if BatchStatus(batch["status"]).finished:
        follow_up(workspace_id, batch)
    else:
        send_events(workspace_id, batch)
    return batch


def finish(
    workspace_id: str,
    batch_id: str,
    status: BatchStatus,
    fields: dict[str, Any],
    *,
    only_when_drained: bool,
    ending: dict[str, Any] | None = None,
) -> bool:
    """End the batch once, with its end event in the outbox. `ending` (a cancel or a timeout):
    how its unfinished jobs are to end (`include_running`, `running_to`, `error`), kept on the
    batch so the sweeper can finish ending them if the caller stops half-way."""
    check_at = iso(now_utc() + timedelta(seconds=FOLLOW_UP_SECONDS))
    if ending is not None:
        fields = {**fields, "ending": ending}
    return repository().finish(
        workspace_id,
        batch_id,
        status,
        fields,
        only_when_drained=only_when_drained,
        check_at=check_at,
        outbox=[FINISHED],
    )


def follow_up(workspace_id: str, batch: dict[str, Any]) -> bool:
    """What comes after a batch's end, safe to repeat: end its unfinished jobs as its `ending`
    says (and any running job whose worker is gone), send its events, and once nothing is left
    take it out of the sweeper's index. True when it is all done."""
    batch_id = batch["batch_id"]
    ending = batch.get("ending") or {}
    end_unfinished_jobs(
        workspace_id,
        batch_id,
        include_running=bool(ending.get("include_running")),
        running_to=JobStatus(ending.get("running_to", str(JobStatus.CANCELLED))),
        error=ending.get("error"),
        leases_ended_before=iso(now_utc()),
    )
    if not send_events(workspace_id, batch):
        return False
    repo = repository()
    # A job a cancel let run on ends by itself (and counts); the batch waits in the index for it.
    if any(not JobStatus(j["status"]).finished for j in repo.jobs(workspace_id, batch_id)):
        return False
    if repo.outbox(workspace_id, batch_id):
        return False
    return repo.retire(workspace_id, batch_id)


def end_unfinished_jobs(
    workspace_id: str,
    batch_id: str,
    *,
    include_running: bool,
    running_to: JobStatus,
    error: dict[str, Any] | None = None,
    leases_ended_before: str | None = None,
) -> int:
    """End every pending or queued job as cancelled (and running ones as `running_to`, when
    asked, or when their worker's lease ended before `leases_ended_before`: that worker is gone);
    returns how many were ended here. A job a worker moves meanwhile is read again."""
    repo = repository()
    ended = 0
    now = iso(now_utc())
    for job in repo.jobs(workspace_id, batch_id):
        current: dict[str, Any] | None = job
        for _ in range(4):
            if current is None:
                break
            status = JobStatus(current["status"])
            abandoned = leases_ended_before is not None and str(current.get("lease_until", "")) < leases_ended_before
            if status.finished or (status is JobStatus.RUNNING and not include_running and not abandoned):
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
