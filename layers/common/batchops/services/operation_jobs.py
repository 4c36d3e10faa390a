"""Operations jobs: async batches (SQS worker) and fail-fast transactions (Step Functions).

Both store the job and its operations first, then hand the job id to the machinery that runs
it. Every operation is claimed with a conditional write before it runs, so a redelivered
message or a retried task never runs an operation twice: an operation that was claimed but
has no result is reported INTERRUPTED instead of being run again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from batchops.dal import messaging
from batchops.dal.errors import AWS_ERRORS
from batchops.dal.items import iso
from batchops.dal.operation_jobs import JobRecord, OperationJobRepository, is_transient
from batchops.errors import NotFoundError, OperationInProgressError, StorageError, client_message
from batchops.executors.operations import OperationTarget
from batchops.models.common import Caller
from batchops.models.operations import (
    AsyncJob,
    AsyncJobCreated,
    BatchRequest,
    BatchResponse,
    JobStatus,
    OperationResult,
    Summary,
)
from batchops.observability import logger
from batchops.services import batch_engine, operations, references
from batchops.services.operations import (
    Deadline,
    interrupted,
    skipped,
    skipped_id,
    still_running,
    timed_out,
)
from batchops.settings import get_settings

ASYNC = "async"
TRANSACTION = "transaction"
TERMINAL_EXECUTION = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
JOB_FAILED = "INTERNAL_ERROR: the job stopped on an internal error; submit it again"
OPEN = (JobStatus.QUEUED, JobStatus.PROCESSING)
# WorkQueue's MessageRetentionPeriod (template.yaml): after this a job's message can no longer be
# delivered, whatever happened to it (a backlog, deliveries that never reached the job).
WORK_QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
# Runs of one transaction step in one task when AWS fails it transiently (about 1.4 s of backoff).
STEP_ATTEMPTS = 4


class JobClosedError(Exception):
    """The job ended (FAILED by the endpoint's deadline or the sweeper) after this run read it:
    the operation it just claimed is not started."""


def _clock() -> datetime:
    # The platform's one clock (batch_engine.now_utc): tests move it to let time pass (a claim
    # going stale, a lease running out) without waiting, for this path and Batches alike.
    return batch_engine.now_utc()


def _now() -> str:
    return iso(_clock())


def _seed_time(value: str | None) -> str | None:
    # The seed shows milliseconds: 2026-04-09T12:00:00.000Z.
    return None if value is None else value[:23] + "Z"


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _claim_is_stale(claimed_at: str | None) -> bool:
    if claimed_at is None:
        return False  # claimed after this run loaded the job: certainly still in flight
    age = _clock() - _parse(claimed_at)
    return age.total_seconds() > get_settings().claim_stale_seconds


def _repository() -> OperationJobRepository:
    return OperationJobRepository(get_settings().table_name)


def new_job_id() -> str:
    return f"job_{uuid.uuid4().hex}"


class StoredJournal:
    """Claims each operation in DynamoDB before it runs and records its result."""

    def __init__(self, repository: OperationJobRepository, job: JobRecord):
        self.repository = repository
        self.job = job
        self.records = {r.index: r for r in job.operations}

    def begin(self, index: int) -> OperationResult | None:
        record = self.records[index]
        if record.result is not None:
            return record.result
        if self.repository.claim_operation(self.job.workspace_id, self.job.id, index, _now()):
            # Whoever closes a job (the transaction endpoint at its deadline, the sweeper) reads
            # the operations after closing it. So either this read sees the close and the
            # operation is not started, or the closer sees this claim and reports the operation
            # INTERRUPTED (effect unknown), never as "did not run".
            if not self.repository.is_open(self.job.workspace_id, self.job.id):
                self.finish(index, timed_out(record.operation))
                raise JobClosedError(f"{self.job.id} ended before operation {record.operation.id} could start")
            return None
        if not _claim_is_stale(record.claimed_at):
            # Another delivery is running it right now: come back when it has recorded its result.
            raise OperationInProgressError(f"Operation {record.operation.id} of {self.job.id} is running elsewhere")
        # Claimed by a run that died before recording a result: it may have had its effect.
        outcome = interrupted(record.operation)
        self.finish(index, outcome)
        return outcome

    def finish(self, index: int, result: OperationResult) -> None:
        self.repository.record_result(self.job.workspace_id, self.job.id, index, result)
        if index in self.records:
            self.records[index].result = result


def _first_check(mode: str, created: datetime) -> datetime:
    """When the sweeper first looks at a job nothing has happened to: an async job's message may
    be delivered until WorkQueue's retention ends (plus one worker run); a transaction's
    execution ends within the state machine's TimeoutSeconds (300 s), long before this."""
    settings = get_settings()
    if mode == ASYNC:
        return created + timedelta(seconds=WORK_QUEUE_RETENTION_SECONDS + settings.claim_stale_seconds)
    return created + timedelta(seconds=settings.job_stale_after_seconds)


def _create(caller: Caller, request: BatchRequest, mode: str) -> tuple[str, str]:
    job_id, created = new_job_id(), _clock()
    created_at = iso(created)
    _repository().create(
        caller.workspace_id,
        job_id,
        mode=mode,
        caller=caller,
        operations=request.operations,
        continue_on_error=request.continueOnError,
        parallel=request.parallel,
        created_at=created_at,
        expires_at=int(time.time()) + get_settings().job_retention_seconds,
        check_at=iso(_first_check(mode, created)),
    )
    return job_id, created_at


def _complete(repository: OperationJobRepository, workspace_id: str, job_id: str, summary: Summary) -> None:
    """PROCESSING -> COMPLETED once, with the summary the job is answered with from then on."""
    repository.transition(
        workspace_id,
        job_id,
        (JobStatus.PROCESSING,),
        JobStatus.COMPLETED,
        completed_at=_now(),
        summary=summary.model_dump(),
    )


def _request_of(job: JobRecord) -> BatchRequest:
    return BatchRequest(
        operations=[r.operation for r in job.operations],
        continueOnError=job.continue_on_error,
        parallel=job.parallel,
    )


# --------------------------------------------------------------------------- async


def submit_async(caller: Caller, request: BatchRequest, body_bytes: int) -> AsyncJobCreated:
    operations.validate(request, body_bytes)
    settings = get_settings()
    if not settings.work_queue_url:
        raise StorageError("No work queue is configured")
    job_id, created_at = _create(caller, request, ASYNC)
    try:
        messaging.send_message(settings.work_queue_url, {"workspaceId": caller.workspace_id, "jobId": job_id})
    except Exception:
        _close_unsent(caller.workspace_id, job_id)
        raise
    return AsyncJobCreated(jobId=job_id, status=JobStatus.QUEUED, createdAt=_seed_time(created_at) or created_at)


def run_async_job(
    workspace_id: str, job_id: str, target: OperationTarget, deadline: Deadline, *, last_attempt: bool
) -> BatchResponse | None:
    """Run a queued job (the worker's one step). Safe to call again for the same job; None when
    there was nothing to run (unknown or finished job) or the job failed for good."""
    repository = _repository()
    job = repository.get(workspace_id, job_id)
    if job is None or job.mode != ASYNC:
        return None  # nothing to run: a message for a job that was never stored
    if job.status not in OPEN:
        return None
    # Held from now until this invocation has certainly ended (the worker's 90 s Lambda timeout,
    # with room): the sweeper fails no job a delivery may still be running.
    held = _clock()
    lease_end = held + timedelta(seconds=get_settings().claim_stale_seconds)
    if not repository.take(workspace_id, job_id, at=iso(held), check_at=iso(lease_end), last_delivery=last_attempt):
        return None  # it ended since it was read: another delivery finished it, or the sweeper failed it
    # From here on the last delivery never hands its message back (it would only reach the DLQ,
    # which is for poison messages): it has marked the job as its last delivery, so once its lease
    # ends the sweeper ends whatever it leaves (completed if every result is recorded).
    try:
        result = operations.run(job.caller, _request_of(job), target, deadline, StoredJournal(repository, job))
    except OperationInProgressError:
        if last_attempt:
            return None  # the delivery holding the operation finishes it, or the sweeper does
        raise  # another delivery is at work: this one simply comes back later
    except JobClosedError:
        return None  # the sweeper failed it: nothing more is started
    except Exception as error:
        if not last_attempt:
            raise  # the message comes back; claimed operations are not run again
        # The client sees a stable message; the exception's own text is for the log only.
        logger().exception("Async job failed on its last attempt", extra={"job_id": job_id})
        message = client_message(error, JOB_FAILED)
        try:
            repository.transition(
                workspace_id, job_id, (JobStatus.PROCESSING,), JobStatus.FAILED, completed_at=_now(), error=message
            )
        except AWS_ERRORS:
            logger().exception("The job's failure could not be written; the sweeper ends it", extra={"job_id": job_id})
        return None
    try:
        _complete(repository, workspace_id, job_id, result.summary)
    except Exception:
        if not last_attempt:
            raise  # the next delivery reuses every recorded result and writes the end
        logger().exception("The job's end could not be written; the sweeper ends it", extra={"job_id": job_id})
        return None
    return result


def _close_unsent(workspace_id: str, job_id: str) -> None:
    """QUEUED -> FAILED for a job whose hand-off failed: the client is answered an error, so the
    job must not wait, listed QUEUED, for a delivery (or an execution) that may never come; one
    that comes after all finds it FAILED and runs nothing."""
    try:
        _repository().transition(
            workspace_id, job_id, (JobStatus.QUEUED,), JobStatus.FAILED, completed_at=_now(), error=NOT_STARTED_ERROR
        )
    except AWS_ERRORS:
        # The sweeper fails it later (when its message could no longer be delivered).
        logger().exception("A job that could not be started stays QUEUED", extra={"job_id": job_id})


def _as_async_job(job: JobRecord, with_results: bool) -> AsyncJob:
    done = job.status == JobStatus.COMPLETED
    results = None
    if done and with_results:
        results = operations.respond([r.result or timed_out(r.operation) for r in job.operations]).results
    return AsyncJob(
        id=job.id,
        status=job.status,
        results=results,
        summary=Summary.model_validate(job.summary) if done and job.summary else None,
        error=job.error,
        createdAt=_seed_time(job.created_at) or job.created_at,
        startedAt=_seed_time(job.started_at),
        completedAt=_seed_time(job.completed_at),
    )


def get_async(workspace_id: str, job_id: str) -> AsyncJob:
    job = _repository().get(workspace_id, job_id)
    if job is None or job.mode != ASYNC:
        raise NotFoundError(f"Batch job {job_id} not found", code="JOB_NOT_FOUND")
    return _as_async_job(job, with_results=True)


def list_async(
    workspace_id: str, *, limit: int, status: JobStatus | None, cursor: str | None
) -> tuple[list[AsyncJob], str | None]:
    jobs, next_cursor = _repository().list_async(workspace_id, limit=limit, status=status, cursor=cursor)
    return [_as_async_job(j, with_results=False) for j in jobs], next_cursor


# --------------------------------------------------------------------------- transaction


def start_transaction(caller: Caller, request: BatchRequest, body_bytes: int) -> str:
    """Store a fail-fast batch; return its job id (also the execution's name)."""
    fail_fast = request.model_copy(update={"continueOnError": False, "parallel": False})
    operations.validate(fail_fast, body_bytes)
    job_id, _ = _create(caller, fail_fast, TRANSACTION)
    return job_id


def run_transaction(caller: Caller, request: BatchRequest, body_bytes: int, deadline: Deadline) -> BatchResponse:
    """Run a transaction on the state machine and wait for it, at most until `deadline`."""
    arn = get_settings().transaction_state_machine_arn
    if not arn:
        raise StorageError("No transaction state machine is configured")
    job_id = start_transaction(caller, request, body_bytes)
    # The step function logs the same job id: logs of the endpoint and of every step correlate.
    logger().info("Transaction started", extra={"job_id": job_id})
    try:
        execution = messaging.start_execution(
            arn, job_id, {"workspaceId": caller.workspace_id, "jobId": job_id, "index": 0, "done": False}
        )
    except Exception:
        _close_unsent(caller.workspace_id, job_id)
        raise
    status, pause = _execution_status(execution), 0.05
    while status not in TERMINAL_EXECUTION and not deadline.passed():
        time.sleep(min(pause, deadline.remaining()))
        pause = min(pause * 2, 0.5)
        status = _execution_status(execution)
    if status not in TERMINAL_EXECUTION:
        # Close the job before reading its results: a step that claims an operation after this
        # write finds the job closed and does not start it (StoredJournal.begin), so every
        # operation without a claim below is truly not run.
        _repository().transition(
            caller.workspace_id, job_id, OPEN, JobStatus.FAILED, completed_at=_now(), error=STOPPED_ERROR
        )
        messaging.stop_execution(execution, "batch timeout")
        logger().info("Transaction stopped at the deadline", extra={"job_id": job_id})
    elif status != "SUCCEEDED":
        repository = _repository()
        error = f"The transaction's execution ended {status}"
        repository.transition(
            caller.workspace_id,
            job_id,
            (JobStatus.QUEUED, JobStatus.PROCESSING),
            JobStatus.FAILED,
            completed_at=_now(),
            error=error,
        )
    return transaction_results(caller.workspace_id, job_id, execution_status=status)


def _execution_status(execution: str) -> str:
    """The execution's status; RUNNING when a transient error hides it. The execution goes on
    either way: answering 5xx here would tell the client a transaction failed that may apply in
    full (and its retry would apply it twice). Looking again, until the deadline, is safe."""
    try:
        return messaging.execution_status(execution)
    except AWS_ERRORS as error:
        if not is_transient(error):
            raise
        logger().warning("The transaction's execution status could not be read; looking again", exc_info=True)
        return "RUNNING"


def transaction_results(workspace_id: str, job_id: str, *, execution_status: str) -> BatchResponse:
    job = _repository().get(workspace_id, job_id)
    if job is None:
        raise NotFoundError(f"Transaction {job_id} not found")
    results: list[OperationResult] = []
    broken = False
    for record in job.operations:
        if record.result is not None:
            results.append(record.result)
        elif execution_status not in TERMINAL_EXECUTION:
            # Stopped at the deadline. Claimed: its step may still be running it (effect
            # unknown). Unclaimed: it never starts (the job was closed first).
            results.append(still_running(record.operation) if record.claimed_at else timed_out(record.operation))
        elif broken:
            results.append(skipped(record.operation))
        else:
            # The execution ended without this operation's result: it may or may not have run.
            results.append(interrupted(record.operation))
            broken = True
    return operations.respond(results)


def run_transaction_step(
    workspace_id: str,
    job_id: str,
    index: int,
    target: OperationTarget,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, object]:
    """One state-machine task: run operation `index`, say what comes next.

    A step is safe to run again (its operation is claimed once and keeps its first result), so a
    transient AWS error is retried here, a few times with backoff, rather than failing the task:
    the state machine retries only Lambda's own errors, and a failed task ends the transaction
    with this operation reported INTERRUPTED though it may never have started."""
    for attempt in range(STEP_ATTEMPTS):
        try:
            return _transaction_step(workspace_id, job_id, index, target)
        except AWS_ERRORS as error:
            if attempt == STEP_ATTEMPTS - 1 or not is_transient(error):
                raise
            logger().warning("A transaction step met a transient AWS error; running it again", exc_info=True)
        sleep(min(2.0, 0.2 * 2**attempt))
    raise AssertionError("unreachable: the last attempt returns or raises")


def _transaction_step(workspace_id: str, job_id: str, index: int, target: OperationTarget) -> dict[str, object]:
    # It reads the job's operation ids, its own operation and only the earlier results it
    # references, so a step costs the same at operation 1 and at operation 100.
    repository = _repository()
    ids = repository.operation_ids(workspace_id, job_id)
    job = repository.get(workspace_id, job_id, only=[index]) if index < len(ids) else None
    if job is None or job.mode != TRANSACTION or not job.operations:
        raise NotFoundError(f"Transaction {job_id} has no operation {index}")
    if index == 0:
        repository.transition(workspace_id, job_id, (JobStatus.QUEUED,), JobStatus.PROCESSING, started_at=_now())
    operation = job.operations[0].operation
    referenced = {references.target_id(r) for r in references.references_in([operation.path, operation.body])}
    earlier_indexes = [n for n, op_id in enumerate(ids[:index]) if op_id in referenced]
    earlier_job = repository.get(workspace_id, job_id, only=earlier_indexes) if earlier_indexes else None
    earlier = {r.operation.id: r.result for r in (earlier_job.operations if earlier_job else []) if r.result}
    journal = StoredJournal(repository, job)
    try:
        result = journal.begin(index)
    except JobClosedError:
        # Stopped at the endpoint's deadline, which answered this operation and the rest as not run.
        return {"workspaceId": workspace_id, "jobId": job_id, "index": index + 1, "done": True}
    if result is None:
        result = operations.run_one(job.caller, operation, earlier, target)
        journal.finish(index, result)
    following = range(index + 1, len(ids))
    done = not result.succeeded or not following
    if not result.succeeded:
        for n in following:
            journal.finish(n, skipped_id(ids[n]))
    if done:
        finished = repository.get(workspace_id, job_id)
        results = [r.result for r in (finished.operations if finished else []) if r.result is not None]
        _complete(repository, workspace_id, job_id, Summary.of(results))
    return {"workspaceId": workspace_id, "jobId": job_id, "index": index + 1, "done": done}


# --------------------------------------------------------------------------- sweeper

STALE_ERROR = "The job did not finish: its deliveries ran out or its run was stopped"
STOPPED_ERROR = "The transaction was stopped at the HTTP deadline"
NOT_STARTED_ERROR = "The job could not be started; submit it again"


def sweep_overdue_jobs(now: datetime | None = None) -> int:
    """Mark every job that can no longer finish as FAILED; return how many were marked.

    A job is failed only when no worker can hold it any more: never started and its message
    expired; or last taken longer ago than a worker's run can last, by the queue's last delivery
    (or its message expired); or, for a transaction, long after its execution's timeout. Every
    failure is conditional on what it was decided on, so a delivery taking the job at the same
    moment either wins (the job runs) or finds it FAILED (nothing starts). Jobs not failable yet
    are looked at again when they could be."""
    moment = now or _clock()
    repository = _repository()
    due = repository.due(iso(moment))
    jobs = repository.jobs([(workspace_id, job_id) for workspace_id, job_id, _ in due])
    marked = 0
    for workspace_id, job_id, seen in due:
        job = jobs.get((workspace_id, job_id))
        if job is None or job.status not in OPEN:
            continue  # it ended meanwhile, and left the index with that write
        check_again = _next_look(job, moment)
        if check_again is not None:
            repository.recheck_later(workspace_id, job_id, seen, iso(check_again))
        else:
            marked += _fail_for_good(repository, job, moment)
    return marked


def _next_look(job: JobRecord, moment: datetime) -> datetime | None:
    """None when the job can no longer finish; else when it could next be found so."""
    created = _parse(job.created_at)
    if job.mode != ASYNC:
        give_up = _first_check(job.mode, created)
        return give_up if give_up > moment else None
    undeliverable = _first_check(ASYNC, created)
    if job.status == JobStatus.QUEUED:
        return undeliverable if undeliverable > moment else None
    held = job.held_at or job.started_at
    lease_end = _parse(held) + timedelta(seconds=get_settings().claim_stale_seconds) if held else moment
    if lease_end > moment:
        return lease_end  # a worker may still be running it
    if job.last_delivery or undeliverable <= moment:
        return None
    return undeliverable  # its message comes back, and the next delivery takes it over


def _fail_for_good(repository: OperationJobRepository, job: JobRecord, moment: datetime) -> bool:
    at = iso(moment)
    if job.mode != ASYNC:
        return repository.transition(
            job.workspace_id, job.id, OPEN, JobStatus.FAILED, completed_at=at, error=STALE_ERROR
        )
    if job.status == JobStatus.QUEUED:
        return repository.fail_unstarted(job.workspace_id, job.id, at=at, error=STALE_ERROR)
    settings = get_settings()
    held_before = iso(moment - timedelta(seconds=settings.claim_stale_seconds))
    created_before = iso(moment - timedelta(seconds=WORK_QUEUE_RETENTION_SECONDS + settings.claim_stale_seconds))
    full = repository.get(job.workspace_id, job.id)
    results = [r.result for r in full.operations] if full is not None else []
    if full is not None and results and all(r is not None for r in results):
        # Its last delivery ran every operation and recorded every result, then could not write
        # the end: it succeeded, and is answered with those results, not as a failure.
        summary = Summary.of([r for r in results if r is not None])
        return repository.end_abandoned(
            job.workspace_id,
            job.id,
            JobStatus.COMPLETED,
            held_before=held_before,
            created_before=created_before,
            completed_at=at,
            summary=summary.model_dump(),
        )
    return repository.fail_abandoned(
        job.workspace_id, job.id, at=at, error=STALE_ERROR, held_before=held_before, created_before=created_before
    )
