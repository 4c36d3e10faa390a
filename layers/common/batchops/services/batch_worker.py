"""Running a batch's jobs (seed 002): each SQS message is one attempt at one job, and the sweeper
that ends batches past their timeout and repairs stuck jobs.

An attempt claims the job (queued -> running, attempt n) in one transaction with the batch's
counters, on condition that the batch is unfinished, so no job starts after a cancel or a
timeout. The outcome is recorded with a conditional write on (running, n); a job cancelled while
it ran keeps its late result without changing the batch's outcome. A failed job of a batch with
`retry_failed` goes back to queued (still inside the window) and its message is hidden for the
backoff delay.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from batchops.dal.batches import JobChange, OutboxEvent
from batchops.dal.items import iso
from batchops.dal.jobs import JobRepository
from batchops.dal.messaging import delay_message
from batchops.errors import StorageError
from batchops.executors import http_call
from batchops.executors.operations import OperationTarget
from batchops.executors.webhook_signing import signed_headers
from batchops.models.batches import BatchStatus, HttpJobConfig, JobStatus
from batchops.models.common import Caller, Plan
from batchops.models.jobs import MAX_RESULT_BYTES
from batchops.models.operations import Operation
from batchops.observability import logger
from batchops.services import batch_engine as engine
from batchops.services.outcome_writes import write_outcome
from batchops.services.run_policy import retry_delay, run_error, verdict
from batchops.settings import get_settings

LEASE_MARGIN_SECONDS = 60
SAFETY_MARGIN_MS = 5_000
RETRY_BASE_SECONDS = 2
SWEEP_LIMIT = 500
TIMEOUT_EXCEEDED = "TIMEOUT_EXCEEDED"


@dataclass(frozen=True)
class Delivery:
    """None: the message is done with; otherwise show it again in this many seconds."""

    retry_in_seconds: int | None = None


@dataclass(frozen=True)
class Outcome:
    status: JobStatus
    error: dict[str, Any] | None
    http_status: int | None
    raw_text: str | None


def _from_call(outcome: http_call.CallOutcome) -> Outcome:
    decided = verdict(
        http_status=outcome.http_status,
        error_code=outcome.error_code,
        message=outcome.message,
        body_too_large=outcome.body_too_large,
        retry_after=outcome.retry_after,
        attempt=1,
        max_attempts=1,
        backoff_seconds=RETRY_BASE_SECONDS,
    )
    text = outcome.body.decode("utf-8", errors="replace") if outcome.body and not outcome.body_too_large else None
    return Outcome(JobStatus(str(decided.status)), decided.error, outcome.http_status, text)


def _execute(
    batch: dict[str, Any], job: dict[str, Any], attempt: int, seconds: float, target: OperationTarget
) -> Outcome:
    config = json.loads(job["config_json"])
    allow_loopback = get_settings().local_mode
    message_id = f"{batch['batch_id']}.{job['job_id']}"
    if job["kind"] == "http":
        http = HttpJobConfig.model_validate(config)
        body = "" if http.body is None else json.dumps(http.body, separators=(",", ":"), ensure_ascii=False)
        headers = {
            **(http.headers or {}),
            "Content-Type": "application/json",
            **signed_headers(batch["signing_secret"], message_id, body),
        }
        return _from_call(
            http_call.call(
                http.url,
                method=http.method,
                headers=headers,
                body=body,
                timeout_seconds=seconds,
                max_body_bytes=MAX_RESULT_BYTES,
                allow_loopback=allow_loopback,
            )
        )
    if job["kind"] == "registered":
        registered = JobRepository(get_settings().table_name).get(batch["workspace_id"], job["target_job_id"])
        if registered is None:
            return Outcome(JobStatus.FAILED, run_error("JOB_NOT_FOUND", "The registered job was deleted"), None, None)
        envelope = json.dumps(
            {"run_id": message_id, "job_id": registered["id"], "attempt": attempt, "payload": config},
            separators=(",", ":"),
            ensure_ascii=False,
        )
        headers = {
            **(registered.get("headers") or {}),
            "Content-Type": "application/json",
            **signed_headers(registered["signing_secret"], message_id, envelope),
        }
        return _from_call(
            http_call.call(
                registered["endpoint_url"],
                method=registered.get("method", "POST"),
                headers=headers,
                body=envelope,
                timeout_seconds=seconds,
                max_body_bytes=MAX_RESULT_BYTES,
                allow_loopback=allow_loopback,
            )
        )
    caller = Caller(workspace_id=batch["workspace_id"], key_id=batch["caller_key_id"], plan=Plan(batch["caller_plan"]))
    status, answer = target.call(caller, Operation.model_validate(config))
    text = json.dumps(answer, separators=(",", ":"), ensure_ascii=False)
    if 200 <= status < 300:
        return Outcome(JobStatus.COMPLETED, None, status, text)
    message = answer.get("error") if isinstance(answer, dict) else None
    error = run_error("HTTP_ERROR", str(message or f"The operation answered HTTP {status}"), status)
    return Outcome(JobStatus.FAILED, error, status, text)


def run(workspace_id: str, batch_id: str, index: int, *, remaining_ms: int, target: OperationTarget) -> Delivery:
    repo = engine.repository()
    job = repo.get_job(workspace_id, batch_id, index)
    if job is None:
        logger().warning("Message for a batch job that does not exist", extra={"batch_id": batch_id, "index": index})
        return Delivery()
    status = JobStatus(job["status"])
    now = engine.now_utc()
    if status.finished:
        engine.settle(workspace_id, batch_id)  # a duplicate, or the redelivery after a crash mid-settle
        return Delivery()
    if status is JobStatus.PENDING:
        return Delivery()  # not released: its release sends its own message
    if status is JobStatus.RUNNING and str(job.get("lease_until", "")) > iso(now):
        return Delivery()  # another delivery is running it
    batch = repo.get(workspace_id, batch_id)
    if batch is None:
        return Delivery()
    if BatchStatus(batch["status"]).finished:
        engine.end_unfinished_jobs(workspace_id, batch_id, include_running=False, running_to=JobStatus.CANCELLED)
        return Delivery()
    attempts = int(job["attempts"])
    max_attempts = int(batch["max_attempts"])
    if status is JobStatus.RUNNING and attempts >= max_attempts:
        error = run_error("INTERRUPTED", "The worker stopped during the job's last attempt (crash or Lambda timeout)")
        _end(workspace_id, batch, job, attempts, Outcome(JobStatus.FAILED, error, None, None), 0)
        return Delivery()
    available = (remaining_ms - SAFETY_MARGIN_MS) / 1000
    if available < 1:
        return Delivery(retry_in_seconds=1)
    seconds = min(float(job["timeout_secs"]), available)
    attempt = attempts + 1
    lease_until = now + timedelta(seconds=seconds + LEASE_MARGIN_SECONDS)
    claimed = repo.change_job(
        workspace_id,
        batch_id,
        job,
        JobChange(
            from_status=status,
            from_attempts=attempts,
            to=JobStatus.RUNNING,
            attempts=attempt,
            fields={
                "started_at": job.get("started_at") or iso(now),
                "lease_until": iso(lease_until),
                "check_at": iso(lease_until),
            },
            batch_adds={"invocations": 1},
            require_unfinished_batch=True,
        ),
    )
    if not claimed:
        current = repo.get(workspace_id, batch_id)
        if current is not None and BatchStatus(current["status"]).finished:
            engine.end_unfinished_jobs(workspace_id, batch_id, include_running=False, running_to=JobStatus.CANCELLED)
        return Delivery()
    started = {**batch, "status": str(BatchStatus.RUNNING), "started_at": iso(now)}
    if repo.start(workspace_id, batch_id, iso(now), outbox=[engine.started_event(started)]):
        # Best effort: the event is in the outbox; the job is not held up by its webhooks.
        engine.send_events(workspace_id, started)
    running = {**job, "status": str(JobStatus.RUNNING), "attempts": attempt}
    began = time.monotonic()
    try:
        outcome = _execute(batch, running, attempt, seconds, target)
    except Exception:  # noqa: BLE001 - any fault of one job is that job's failure, never the batch's
        # The client sees a stable code; the exception (which may name ARNs) goes to the log only.
        logger().exception("Batch job raised", extra={"batch_id": batch_id, "index": index})
        outcome = Outcome(
            JobStatus.FAILED, run_error("JOB_ERROR", "The job failed inside batchops; see the request id"), None, None
        )
    elapsed_ms = max(1, round((time.monotonic() - began) * 1000))
    if outcome.status is not JobStatus.COMPLETED and attempt < max_attempts:
        delay = retry_delay(attempt, RETRY_BASE_SECONDS)
        check_at = engine.now_utc() + timedelta(seconds=delay + engine.QUEUED_GRACE_SECONDS)
        requeued = repo.change_job(
            workspace_id,
            batch_id,
            running,
            JobChange(
                from_status=JobStatus.RUNNING,
                from_attempts=attempt,
                to=JobStatus.QUEUED,
                attempts=attempt,
                fields={
                    "error": outcome.error,
                    "lease_until": None,
                    "check_at": iso(check_at),
                    "duration_ms": int(job.get("duration_ms") or 0) + elapsed_ms,
                },
                batch_adds={"billed_ms": elapsed_ms},
            ),
        )
        return Delivery(retry_in_seconds=delay) if requeued else Delivery()
    _end(workspace_id, batch, running, attempt, outcome, elapsed_ms)
    return Delivery()


def _end(
    workspace_id: str, batch: dict[str, Any], job: dict[str, Any], attempt: int, outcome: Outcome, elapsed_ms: int
) -> None:
    repo = engine.repository()
    batch_id = batch["batch_id"]
    total_ms = int(job.get("duration_ms") or 0) + elapsed_ms
    finished_at = iso(engine.now_utc())
    result = None
    if outcome.raw_text is not None or outcome.http_status is not None:
        result = {"index": int(job["index"]), "http_status": outcome.http_status, "raw_text": outcome.raw_text}
    data = {
        "job": {
            "job_id": job["job_id"],
            "type": job["job_type"],
            "status": str(outcome.status),
            "duration_ms": total_ms,
            "error": outcome.error,
        }
    }
    change = JobChange(
        from_status=JobStatus.RUNNING,
        from_attempts=attempt,
        to=outcome.status,
        attempts=attempt,
        fields={
            "finished_at": finished_at,
            "error": outcome.error,
            "duration_ms": total_ms,
            "lease_until": None,
            "check_at": None,
        },
        batch_adds={"in_flight": -1, "billed_ms": elapsed_ms, "credits": math.ceil(total_ms / 1000)},
        result=result,
        # The job's event is committed with its end: nothing after this line can lose it.
        outbox=(OutboxEvent(f"job:{job['index']}", "batch.job_completed", data),),
    )
    # Retried in place: given up, the redelivery finds the job leased and drops it, and after the
    # lease the endpoint is called again (or the job fails INTERRUPTED after a call that worked).
    ended = write_outcome(lambda: repo.change_job(workspace_id, batch_id, job, change), what="a batch job's end")
    if not ended:
        # Cancelled while it ran: the late result is kept on the job and changes nothing else.
        late = {"late_status": str(outcome.status), "late_finished_at": finished_at}
        if outcome.raw_text is not None:
            late["late_result"] = outcome.raw_text[:MAX_RESULT_BYTES]
        repo.record_late_result(workspace_id, batch_id, job, late)
        return
    if outcome.status is JobStatus.COMPLETED:
        try:
            repo.record_duration(workspace_id, job["job_type"], total_ms)
        except StorageError:
            # Only estimates read these statistics (one hot item per workspace): a lost sample is
            # harmless, a failed job end is not.
            logger().warning("Job duration not recorded", extra={"batch_id": batch_id}, exc_info=True)
    engine.settle(workspace_id, batch_id)


def defer(queue_url: str, receipt_handle: str, seconds: int) -> None:
    delay_message(queue_url, receipt_handle, seconds)


# ---------------------------------------------------------------- the sweeper
def time_out(workspace_id: str, batch: dict[str, Any]) -> bool:
    """End a batch past its timeout_minutes: timed_out with TIMEOUT_EXCEEDED, pending jobs
    cancelled, running ones timed out (resumed by the next sweep should this one stop half-way)."""
    batch_id = batch["batch_id"]
    minutes = batch["timeout_minutes"]
    error = {"code": TIMEOUT_EXCEEDED, "message": f"The batch ran past its timeout of {minutes} minutes"}
    ending = {"include_running": True, "running_to": str(JobStatus.TIMED_OUT), "error": error}
    fields = {"finished_at": iso(engine.now_utc()), "error": error}
    if not engine.finish(workspace_id, batch_id, BatchStatus.TIMED_OUT, fields, only_when_drained=False, ending=ending):
        return False
    after = engine.repository().get(workspace_id, batch_id)
    if after is not None:
        engine.follow_up(workspace_id, after)
    return True


def repair(workspace_id: str, batch: dict[str, Any]) -> int:
    """Send again the message of every job that should have moved by now (a queued job whose
    message was lost, a running job whose worker died), refill the window and finish the batch if
    it is drained. Returns how many messages were sent; duplicates are harmless."""
    now = iso(engine.now_utc())
    stuck = [
        int(job["index"])
        for job in engine.repository().jobs(workspace_id, batch["batch_id"])
        if job["status"] in (str(JobStatus.QUEUED), str(JobStatus.RUNNING)) and str(job.get("check_at", "")) < now
    ]
    engine.enqueue(workspace_id, batch, stuck)
    engine.settle(workspace_id, batch["batch_id"])  # also sends whatever events are still in the outbox
    if batch.get("retry_of"):
        # Linked by the retry's creator; again here in case it stopped before (a no-op when done).
        engine.repository().link_retry(workspace_id, batch["retry_of"], batch["batch_id"])
    return len(stuck)


def sweep_batches() -> dict[str, int]:
    repo = engine.repository()
    now = engine.now_utc()
    timed_out = resent = 0
    for workspace_id, batch_id, seen in repo.overdue(iso(now), SWEEP_LIMIT):
        batch = repo.get(workspace_id, batch_id)
        if batch is None:
            continue
        if BatchStatus(batch["status"]).finished:
            # Its end was committed, but what follows (ending jobs, events) may not be done.
            if not engine.follow_up(workspace_id, batch):
                later = now + timedelta(seconds=engine.FOLLOW_UP_SECONDS)
                repo.recheck_later(workspace_id, batch_id, seen, iso(later))
            continue
        if iso(now) >= batch["deadline"]:
            timed_out += int(time_out(workspace_id, batch))
            continue
        resent += repair(workspace_id, batch)
        later = min(engine.parse_time(batch["deadline"]), now + timedelta(seconds=engine.RECHECK_SECONDS))
        repo.recheck_later(workspace_id, batch_id, seen, iso(later))
    return {"timed_out": timed_out, "resent": resent}
