"""Delivering runs (seed 001): each SQS message is one attempt at calling a job's endpoint.

A delivery claims the run (queued -> running, attempt n) with a conditional write, calls the
endpoint, and records the outcome with a conditional write on (running, n). A duplicate
delivery finds the run finished, or running under another delivery's lease, and does nothing.
A retry keeps the message and hides it for the backoff delay. If a worker dies mid-call, its
message comes back after the visibility timeout (or the sweeper sends one once the lease is
long over) and the next delivery takes the run over as a new attempt.

Before its first attempt a run is checked against its ttl (it expires instead of running, as
Strait's reaper would have ended it) and its scheduled_at (its message is hidden until then).
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from batchops.dal.items import iso
from batchops.dal.messaging import delay_message
from batchops.dal.runs import RunRepository, Transition, stored_run
from batchops.errors import NotFoundError
from batchops.executors import http_call
from batchops.executors.webhook_signing import signed_headers
from batchops.models.jobs import MAX_RESULT_BYTES, RunErrorCode, RunStatus
from batchops.observability import logger, metrics
from batchops.services.jobs import find_job
from batchops.services.outcome_writes import write_outcome
from batchops.services.run_policy import MAX_DELAY_SECONDS, run_error, verdict
from batchops.services.runs import expire, finish_batch_of
from batchops.settings import get_settings

# A delivery owns a running run until its call's timeout plus this; later, another may take over.
LEASE_MARGIN_SECONDS = 60
# Time kept back from the Lambda timeout to record the outcome after the call.
SAFETY_MARGIN_MS = 5_000
# The runs of one worker invocation end side by side (api/workers.py runs its records on threads).
# A batch's finished_at is taken on the client before its conditional write: a run that took its
# own finished_at after that and committed before the write left the batch finished before its
# last run (tests/integration/test_faults_runs.py with 10 records per invocation, 2 scenarios of
# 28). Ending a run (its timestamp and its write) and closing a batch (its timestamp and its
# write) therefore take turns within the process; the endpoint calls still overlap.
_ending = threading.Lock()
# The sweeper sends a running run's message again this long after its lease ended.
RUNNING_RECHECK_SECONDS = 300


@dataclass(frozen=True)
class Delivery:
    """None: the message is done with (delete it); otherwise show it again in this many seconds."""

    retry_in_seconds: int | None = None


def _repository() -> RunRepository:
    return RunRepository(get_settings().table_name)


def _write_outcome(workspace_id: str, run: dict[str, Any], change: Transition) -> bool:
    """Record what an attempt's call did (retried in place: services/outcome_writes.py)."""
    repo = _repository()
    return write_outcome(lambda: repo.transition(workspace_id, run, change), what="a run attempt's outcome")


def _job(workspace_id: str, job_id: str) -> dict[str, Any] | None:
    try:
        return find_job(workspace_id, job_id)
    except NotFoundError:
        return None


def deliver(workspace_id: str, run_id: str, *, remaining_ms: int) -> Delivery:
    repo = _repository()
    run = repo.get(workspace_id, run_id, with_result=False)
    if run is None:
        logger().warning("Message for a run that does not exist", extra={"run_id": run_id})
        return Delivery()
    status = RunStatus(run["status"])
    now = datetime.now(UTC)
    if status.finished:
        # A duplicate, or the redelivery after a crash right after the run finished: make sure
        # its batch got its finished_at.
        with _ending:
            finish_batch_of(run, datetime.now(UTC))
        return Delivery()
    if status is RunStatus.RUNNING and str(run.get("lease_until", "")) > iso(now):
        return Delivery()  # another delivery is calling the endpoint; its own message covers the run
    with _ending:
        expired = expire(run, datetime.now(UTC))
    if expired:
        _count("RunExpired")
        return Delivery()
    retry_at = str(run.get("next_retry_at") or "")
    if status is RunStatus.QUEUED and retry_at > iso(now):
        # A duplicate message (or one shown again early) during a retry's backoff: the retry
        # waits for its time, whichever message then claims it first.
        wait = (datetime.fromisoformat(retry_at) - now).total_seconds()
        return Delivery(retry_in_seconds=min(MAX_DELAY_SECONDS, max(1, math.ceil(wait))))
    if status is RunStatus.DELAYED and str(run.get("scheduled_at", "")) > iso(now):
        # Sent early (the sweeper's lead, or a duplicate): not claimed, hidden until it is due.
        wait = (datetime.fromisoformat(run["scheduled_at"]) - now).total_seconds()
        return Delivery(retry_in_seconds=min(MAX_DELAY_SECONDS, max(1, math.ceil(wait))))
    attempts = int(run["attempts"])
    job = _job(workspace_id, run["job_id"])
    if job is None:
        _end(run, status, attempts, RunStatus.FAILED, run_error(RunErrorCode.JOB_NOT_FOUND, "The job was deleted"))
        return Delivery()
    if attempts >= int(job["max_attempts"]):
        if status is RunStatus.RUNNING:
            message = "The worker stopped during the last attempt (crash or Lambda timeout)"
            _end(run, status, attempts, RunStatus.FAILED, run_error(RunErrorCode.INTERRUPTED, message))
        else:  # max_attempts was lowered while the run waited for its retry
            _end(run, status, attempts, RunStatus.FAILED, run.get("error"))
        return Delivery()
    available = (remaining_ms - SAFETY_MARGIN_MS) / 1000
    if available < 1:
        return Delivery(retry_in_seconds=1)  # not claimed: nothing spent
    call_seconds = min(float(job["timeout_secs"]), available)
    attempt = attempts + 1
    lease_until = now + timedelta(seconds=call_seconds + LEASE_MARGIN_SECONDS)
    claimed = repo.transition(
        workspace_id,
        run,
        Transition(
            from_status=status,
            from_attempts=attempts,
            to=RunStatus.RUNNING,
            attempts=attempt,
            fields={
                "started_at": run.get("started_at") or iso(now),
                "lease_until": iso(lease_until),
                "next_retry_at": None,
            },
            check_at=iso(lease_until + timedelta(seconds=RUNNING_RECHECK_SECONDS)),
        ),
    )
    if not claimed:
        return Delivery()
    running = {**run, "status": str(RunStatus.RUNNING), "attempts": attempt}
    outcome = _call(job, running, call_seconds)
    return _record(workspace_id, job, running, outcome)


def _call(job: dict[str, Any], run: dict[str, Any], seconds: float) -> http_call.CallOutcome:
    body = json.dumps(
        {"run_id": run["id"], "job_id": job["id"], "attempt": run["attempts"], "payload": stored_run(run)["payload"]},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    # webhook-id stays the run id on every attempt, so receivers can drop repeats (Standard Webhooks).
    headers = {
        **(job.get("headers") or {}),
        "Content-Type": "application/json",
        **signed_headers(job["signing_secret"], run["id"], body),
    }
    return http_call.call(
        job["endpoint_url"],
        method=job.get("method", "POST"),
        headers=headers,
        body=body,
        timeout_seconds=seconds,
        max_body_bytes=MAX_RESULT_BYTES,
        allow_loopback=get_settings().local_mode,
    )


def _result(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace")


def _record(workspace_id: str, job: dict[str, Any], run: dict[str, Any], outcome: http_call.CallOutcome) -> Delivery:
    attempt = int(run["attempts"])
    decided = verdict(
        http_status=outcome.http_status,
        error_code=outcome.error_code,
        message=outcome.message,
        body_too_large=outcome.body_too_large,
        retry_after=outcome.retry_after,
        attempt=attempt,
        max_attempts=int(job["max_attempts"]),
        backoff_seconds=int(job["retry_backoff_secs"]),
        strategy=job.get("retry_strategy"),
        custom_delays=job.get("retry_delays_secs"),
    )
    if decided.retry_in is None:
        keep = decided.status is RunStatus.COMPLETED and not outcome.body_too_large
        _end(
            run,
            RunStatus.RUNNING,
            attempt,
            decided.status,
            decided.error,
            result=_result(outcome.body) if keep else None,
        )
        return Delivery()
    now = datetime.now(UTC)
    check_at = now + timedelta(seconds=decided.retry_in + get_settings().run_recheck_seconds)
    requeued = _write_outcome(
        workspace_id,
        run,
        Transition(
            from_status=RunStatus.RUNNING,
            from_attempts=attempt,
            to=RunStatus.QUEUED,
            attempts=attempt,
            fields={
                "error": decided.error,
                "lease_until": None,
                "next_retry_at": iso(now + timedelta(seconds=decided.retry_in)),
            },
            check_at=iso(check_at),
        ),
    )
    if not requeued:
        return Delivery()
    _count("RunRetried")
    return Delivery(retry_in_seconds=decided.retry_in)


def _end(
    run: dict[str, Any],
    from_status: RunStatus,
    attempts: int,
    to: RunStatus,
    error: dict[str, Any] | None,
    *,
    result: Any = None,
) -> None:
    workspace_id = run["project_id"]
    with _ending:
        ended = _write_outcome(
            workspace_id,
            run,
            Transition(
                from_status=from_status,
                from_attempts=attempts,
                to=to,
                attempts=attempts,
                fields={"finished_at": iso(datetime.now(UTC)), "error": error},
                result=result,
                has_result=result is not None,
            ),
        )
    if ended:
        _count(f"Run{to.value.title().replace('_', '')}")
    # Even when another delivery ended the run: this one may be the redelivery after that one
    # died before closing the batch.
    with _ending:
        finish_batch_of(run, datetime.now(UTC))


def _count(name: str) -> None:
    metrics().add_metric(name=name, unit=MetricUnit.Count, value=1)


def queue_url_of(source_arn: str | None) -> str:
    """The URL of the run queue a message came from (its record's event source ARN): RunQueue, or
    the urgent run queue, which the same worker consumes."""
    settings = get_settings()
    urgent = settings.run_urgent_queue_url
    if source_arn and urgent and source_arn.rsplit(":", 1)[-1] == urgent.rstrip("/").rsplit("/", 1)[-1]:
        return urgent
    return settings.run_queue_url


def defer(receipt_handle: str, seconds: int, source_arn: str | None = None) -> None:
    """Hide a message for the retry delay, on the queue it was received from."""
    delay_message(queue_url_of(source_arn), receipt_handle, seconds)
