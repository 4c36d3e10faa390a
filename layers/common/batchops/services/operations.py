"""Operations surface (seed 003): run many operations in one request.

Modes share one engine: sequential (optionally stopping at the first failure), parallel on a
bounded pool, fail-fast transactions (one operation per Step Functions task, through
`run_one`), async jobs (a journal makes every operation run at most once across redeliveries),
and dry runs (validation only).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol

from batchops.errors import PayloadTooLargeError, ValidationFailedError
from batchops.executors.operations import OperationTarget
from batchops.models.common import Caller, error_body
from batchops.models.operations import (
    MAX_BATCH_BODY_BYTES,
    MAX_OPERATION_BODY_BYTES,
    OPERATION_BODY_TOO_LARGE,
    SKIPPED_MESSAGE,
    BatchRequest,
    BatchResponse,
    Operation,
    OperationResult,
    Summary,
)
from batchops.services import references
from batchops.services.references import UnresolvedReferenceError

PARALLEL_WORKERS = 8
INTERRUPTED = "INTERRUPTED"
# Result bodies in one response: Lambda's 6 MB response limit, less room for the envelope.
RESULTS_BUDGET_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class Deadline:
    """A point in monotonic time; operations not finished by then are reported as timed out."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() >= self.at


class Journal(Protocol):
    """Where an async job records each operation, so a redelivered job never runs one twice."""

    def begin(self, index: int) -> OperationResult | None:
        """Claim operation `index`; return its recorded result if it was claimed before."""
        ...

    def finish(self, index: int, result: OperationResult) -> None: ...


class NoJournal:
    def begin(self, index: int) -> OperationResult | None:
        return None

    def finish(self, index: int, result: OperationResult) -> None:
        return None


def skipped(operation: Operation) -> OperationResult:
    return skipped_id(operation.id)


def skipped_id(operation_id: str) -> OperationResult:
    return OperationResult(id=operation_id, status=424, body=error_body(SKIPPED_MESSAGE, "SKIPPED"))


def timed_out(operation: Operation) -> OperationResult:
    return OperationResult(
        id=operation.id,
        status=504,
        body=error_body("Operation did not finish within the batch timeout", "TIMEOUT"),
    )


def interrupted(operation: Operation) -> OperationResult:
    return OperationResult(
        id=operation.id,
        status=500,
        body=error_body("Operation was interrupted and is not run again; check its effect", INTERRUPTED),
    )


def still_running(operation: Operation) -> OperationResult:
    """Started but not finished at the batch deadline: its effect is unknown (it may still land),
    so it is INTERRUPTED like an operation whose run died, never a TIMEOUT ("did not run")."""
    message = "Operation was still running at the batch timeout and may yet take effect; it is not run again"
    return OperationResult(id=operation.id, status=500, body=error_body(message, INTERRUPTED))


def is_interrupted(result: OperationResult) -> bool:
    return isinstance(result.body, dict) and result.body.get("code") == INTERRUPTED


def body_bytes(body: Any) -> int:
    return 0 if body is None else len(json.dumps(body, separators=(",", ":")).encode())


def validate(request: BatchRequest, request_bytes: int) -> None:
    """Whole-request rules beyond the schema: sizes and references (each a 4xx for the whole batch)."""
    if request_bytes > MAX_BATCH_BODY_BYTES:
        raise PayloadTooLargeError("Batch request body must not exceed 5MB")
    too_large = [
        {"index": n, "field": f"operations.{n}.body", "error": OPERATION_BODY_TOO_LARGE}
        for n, op in enumerate(request.operations)
        if body_bytes(op.body) > MAX_OPERATION_BODY_BYTES
    ]
    if too_large:
        raise ValidationFailedError(OPERATION_BODY_TOO_LARGE, details=too_large)
    if request.parallel:
        using = [
            {"index": n, "field": f"operations.{n}", "error": "references need sequential mode"}
            for n, op in enumerate(request.operations)
            if any(True for _ in references.references_in([op.path, op.body]))
        ]
        if using:
            raise ValidationFailedError(
                "References between operations are not allowed with parallel: true", details=using
            )


def run_one(
    caller: Caller, operation: Operation, earlier: Mapping[str, OperationResult], target: OperationTarget
) -> OperationResult:
    """Resolve references against earlier results, then run the operation."""
    try:
        resolved = operation.model_copy(
            update={
                "path": references.resolve_path(operation.path, earlier),
                "body": references.resolve(operation.body, earlier),
            }
        )
    except UnresolvedReferenceError as error:
        return OperationResult(id=operation.id, status=424, body=error_body(str(error), "UNRESOLVED_REFERENCE"))
    if body_bytes(resolved.body) > MAX_OPERATION_BODY_BYTES:
        # References can grow a body past the limit that was checked before the run.
        return OperationResult(
            id=operation.id, status=422, body=error_body(OPERATION_BODY_TOO_LARGE, "VALIDATION_FAILED")
        )
    status, body = target.call(caller, resolved)
    return OperationResult(id=operation.id, status=status, body=body)


def run(
    caller: Caller,
    request: BatchRequest,
    target: OperationTarget,
    deadline: Deadline,
    journal: Journal | None = None,
) -> BatchResponse:
    log = journal or NoJournal()
    if request.parallel:
        results = _run_parallel(caller, request, target, deadline, log)
    else:
        results = _run_sequential(caller, request, target, deadline, log)
    for n, outcome in enumerate(results):
        if outcome.timed_out or outcome.skipped or is_interrupted(outcome):
            # Recorded too (and kept: a result is never overwritten), so the stored job always
            # matches the summary it was answered with.
            log.finish(n, outcome)
    return respond(results)


def respond(results: list[OperationResult]) -> BatchResponse:
    """The response, with result bodies cut once the whole would pass RESULTS_BUDGET_BYTES
    (Lambda answers at most 6 MB; results can be far larger than the request)."""
    kept: list[OperationResult] = []
    used = 0
    for outcome in results:
        size = body_bytes(outcome.body)
        if used + size > RESULTS_BUDGET_BYTES:
            message = "Response body omitted: the batch response would exceed its size limit"
            outcome = outcome.model_copy(update={"body": error_body(message, "RESULT_TOO_LARGE")})
            size = body_bytes(outcome.body)
        used += size
        kept.append(outcome)
    return BatchResponse(results=kept, summary=Summary.of(results))


def _claim_and_run(
    n: int,
    caller: Caller,
    operation: Operation,
    earlier: Mapping[str, OperationResult],
    target: OperationTarget,
    log: Journal,
) -> OperationResult:
    recorded = log.begin(n)
    if recorded is not None:
        return recorded
    result = run_one(caller, operation, earlier, target)
    log.finish(n, result)
    return result


def _run_sequential(
    caller: Caller, request: BatchRequest, target: OperationTarget, deadline: Deadline, log: Journal
) -> list[OperationResult]:
    results: list[OperationResult] = []
    by_id: dict[str, OperationResult] = {}
    stop = False
    for n, operation in enumerate(request.operations):
        if stop:
            result = skipped(operation)
        elif deadline.passed():
            result = timed_out(operation)
        else:
            result = _claim_and_run(n, caller, operation, by_id, target, log)
            stop = not result.succeeded and not request.continueOnError
        results.append(result)
        by_id[operation.id] = result
    return results


class _Gate:
    """Decides, under one lock, which operations of a parallel batch start and whose outcome
    counts. The collector closes it at the deadline: an operation not started by then never
    starts (not even on a pool thread freed a moment later), and one still running is answered
    INTERRUPTED; its result, if it comes, is neither answered nor recorded, so what the client
    was told stays what is stored."""

    def __init__(self, deadline: Deadline):
        self._lock = threading.Lock()
        self._deadline = deadline
        self._closed = False
        self._started: set[int] = set()
        self._outcomes: dict[int, OperationResult] = {}
        self._errors: list[Exception] = []

    def enter(self, n: int) -> bool:
        """True when operation n may start now."""
        with self._lock:
            if self._closed or self._deadline.passed():
                return False
            self._started.add(n)
            return True

    def settle(self, n: int, outcome: OperationResult, record: Callable[[], None] | None = None) -> None:
        """Keep an outcome (and record it) unless the answer was already made without it."""
        with self._lock:
            if self._closed:
                return
            if record is not None:
                record()
            self._outcomes[n] = outcome

    def fail(self, error: Exception) -> None:
        with self._lock:
            if not self._closed:
                self._errors.append(error)

    def close(self) -> tuple[dict[int, OperationResult], set[int], list[Exception]]:
        with self._lock:
            self._closed = True
            return dict(self._outcomes), set(self._started), list(self._errors)


def _run_parallel(
    caller: Caller, request: BatchRequest, target: OperationTarget, deadline: Deadline, log: Journal
) -> list[OperationResult]:
    failed = threading.Event()
    gate = _Gate(deadline)

    def task(n: int, operation: Operation) -> None:
        try:
            # With continueOnError false, operations that have not started when one fails are skipped.
            if failed.is_set() and not request.continueOnError:
                gate.settle(n, skipped(operation))
                return
            if not gate.enter(n):
                return  # the deadline passed before it started: answered TIMEOUT, never run
            recorded = log.begin(n)
            result = recorded if recorded is not None else run_one(caller, operation, {}, target)
            if not result.succeeded:
                failed.set()
            gate.settle(n, result, None if recorded is not None else lambda: log.finish(n, result))
        except Exception as error:
            gate.fail(error)
            raise

    operations = request.operations
    pool = ThreadPoolExecutor(max_workers=min(PARALLEL_WORKERS, len(operations)))
    try:
        futures: list[Future[None]] = [pool.submit(task, n, op) for n, op in enumerate(operations)]
        pending = set(futures)
        while pending and not deadline.passed():
            _, pending = wait(pending, timeout=deadline.remaining(), return_when=FIRST_COMPLETED)
    finally:
        outcomes, started, errors = gate.close()
        # Never wait for stragglers past the deadline: they are answered INTERRUPTED.
        pool.shutdown(wait=False, cancel_futures=True)
    if errors:
        raise errors[0]  # e.g. another delivery holds an operation: the whole run comes back later
    return [
        outcomes.get(n) or (still_running(operation) if n in started else timed_out(operation))
        for n, operation in enumerate(operations)
    ]


def dry_run(caller: Caller, request: BatchRequest, target: OperationTarget) -> BatchResponse:
    """Each operation's verdict without running anything: route, method, body and references."""
    results: list[OperationResult] = []
    earlier: set[str] = set()
    for operation in request.operations:
        unknown = [
            ref
            for ref in references.references_in([operation.path, operation.body])
            if references.target_id(ref) not in earlier
        ]
        if unknown:
            message = f"Unresolved reference ${{{unknown[0]}}}: it must name an earlier operation"
            results.append(
                OperationResult(id=operation.id, status=424, body=error_body(message, "UNRESOLVED_REFERENCE"))
            )
        else:
            status, body = target.check(caller, operation)
            # A field that is wholly a reference gets its value (and type) only at run time:
            # its validation errors are not a verdict, everything around it is.
            placeholders = references.whole_reference_fields(operation.body)
            problems = body.get("details") if status == 422 and isinstance(body, dict) else None
            if problems and placeholders and all(p.get("field") in placeholders for p in problems):
                status, body = 200, {"valid": True, "unchecked": sorted(placeholders)}
            results.append(OperationResult(id=operation.id, status=status, body=body))
        earlier.add(operation.id)
    return respond(results)
