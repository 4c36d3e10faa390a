"""The Operations surface's promises (seed 003) for its stored jobs: async batches (WorkQueue and
its worker) and fail-fast transactions (the state machine and its step function).

Both keep one job item and one item per operation; each operation is claimed before it runs and
keeps the first result recorded for it, so an operation runs at most once. The one window is
between an operation's claim and its result write: a run that dies there leaves an operation that
may have taken effect, reported INTERRUPTED (500) and never run again. So there is no
at-least-once window on this path, only an "effect unknown" one, and it is never a double run.

Side effects are observed through the event log: operations of these scenarios are
`POST /v1/events/batch` with a `batchId` of their own, whose stored entries count how many times
the operation took effect.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from batchops.models.operations import JobStatus, OperationResult, Summary
from tests.invariants.table import table_items

TERMINAL = {JobStatus.COMPLETED.value, JobStatus.FAILED.value}
INTERRUPTED = "INTERRUPTED"


def operation_jobs(items: Iterable[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Every operations job (async and transaction) with its operation items, by job id."""
    items = list(items if items is not None else table_items())
    by_pk: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        by_pk[item["pk"]].append(item)
    found: dict[str, dict[str, Any]] = {}
    for item in items:
        if item.get("type") == "operation_job":
            found[item["job_id"]] = {
                "job": item,
                "operations": sorted(
                    (i for i in by_pk[item["pk"]] if i.get("type") == "operation"), key=lambda i: int(i["index"])
                ),
            }
    return found


def result_of(operation: dict[str, Any]) -> OperationResult | None:
    raw = operation.get("result")
    if raw is None:
        return None
    data = raw.value if hasattr(raw, "value") else raw  # boto3's Binary wraps the bytes
    return OperationResult.model_validate_json(gzip.decompress(bytes(data)).decode())


def effect_key(operation: dict[str, Any]) -> str | None:
    """The event-log batch an operation writes to (its observable effect), if it has one."""
    body = json.loads(operation["operation"]).get("body")
    return body.get("batchId") if isinstance(body, dict) and isinstance(body.get("batchId"), str) else None


def effects(items: Iterable[dict[str, Any]]) -> Counter[str]:
    """Event-log entries stored per batchId."""
    return Counter(str(i["batchId"]) for i in items if i.get("type") == "event" and i.get("batchId"))


def _ran(result: OperationResult | None) -> bool:
    """The result is a run's answer (not SKIPPED, TIMEOUT or INTERRUPTED, which no run gave)."""
    return result is not None and not (result.skipped or result.timed_out or _code(result) == INTERRUPTED)


def _code(result: OperationResult) -> str | None:
    return result.body.get("code") if isinstance(result.body, dict) else None


def operations_broken(*, settled: bool = True, entries_per_operation: int = 1) -> list[str]:
    """Every promise of the operations jobs that does not hold:

    - (`settled`) every job is COMPLETED or FAILED, has completed_at and has left the sweeper's
      in-flight index; a job still open has no completed_at;
    - a COMPLETED job has a result for every operation, its summary equals those results, and it
      has no error; a FAILED one has an error and no summary;
    - fail-fast (a transaction, or an async job without continueOnError run in sequence): after the
      first operation that did not succeed, every later one is SKIPPED, and none before it failed;
    - an operation ran only if it was claimed; its effect happened at most once: once if it
      succeeded, never if it was skipped, timed out or never claimed, at most once if INTERRUPTED;
    - a job with an operation that ran has started_at.
    """
    items = table_items()
    applied = effects(items)
    broken: list[str] = []
    for job_id, found in operation_jobs(items).items():
        job, operations = found["job"], found["operations"]
        status = job["status"]
        terminal = status in TERMINAL
        if settled and not terminal:
            broken.append(f"{job_id}: still {status}")
        if terminal and not job.get("completed_at"):
            broken.append(f"{job_id}: {status} without completed_at")
        if not terminal and job.get("completed_at"):
            broken.append(f"{job_id}: {status} with completed_at")
        if terminal and "gsi2pk" in job:
            broken.append(f"{job_id}: {status} but still in the sweeper's in-flight index")
        if int(job["total"]) != len(operations):
            broken.append(f"{job_id}: total {job['total']} but {len(operations)} operation items")
        results = [result_of(o) for o in operations]
        if any(_ran(r) for r in results) and not job.get("started_at"):
            broken.append(f"{job_id}: an operation ran but the job has no started_at")
        if status == JobStatus.COMPLETED.value:
            missing = [o["op_id"] for o, r in zip(operations, results, strict=True) if r is None]
            if missing:
                broken.append(f"{job_id}: COMPLETED without results for {missing}")
            else:
                expected = Summary.of([r for r in results if r is not None]).model_dump()
                if {k: int(v) for k, v in (job.get("summary") or {}).items()} != expected:
                    broken.append(f"{job_id}: summary {job.get('summary')} but results say {expected}")
            if job.get("error"):
                broken.append(f"{job_id}: COMPLETED with an error {job['error']!r}")
            fail_fast = job["mode"] == "transaction" or not (job["continue_on_error"] or job["parallel"])
            if fail_fast and not missing:
                broken += _fail_fast_broken(job_id, [r for r in results if r is not None])
        if status == JobStatus.FAILED.value:
            if not job.get("error"):
                broken.append(f"{job_id}: FAILED without an error")
            if job.get("summary"):
                broken.append(f"{job_id}: FAILED with a summary")
        for operation, result in zip(operations, results, strict=True):
            broken += _operation_broken(job_id, operation, result, applied, entries_per_operation)
    return broken


def _fail_fast_broken(job_id: str, results: list[OperationResult]) -> list[str]:
    first = next((n for n, r in enumerate(results) if not r.succeeded), None)
    if first is None:
        return []
    return [
        f"{job_id}: {r.id} after the first failure ({results[first].id}) is {r.status}, not SKIPPED"
        for r in results[first + 1 :]
        if not r.skipped
    ]


def _operation_broken(
    job_id: str, operation: dict[str, Any], result: OperationResult | None, applied: Counter[str], per_op: int
) -> list[str]:
    broken: list[str] = []
    name = f"{job_id} {operation['op_id']}"
    claimed = bool(operation.get("claimed_at"))
    ran = _ran(result)
    if ran and not claimed:
        broken.append(f"{name}: has a result of a run ({result.status if result else None}) but was never claimed")
    key = effect_key(operation)
    if key is None:
        return broken
    times = applied.get(key, 0) / per_op
    if times > 1:
        broken.append(f"{name}: took effect {times:g} times")
    if result is not None and result.succeeded and times != 1:
        broken.append(f"{name}: answered {result.status} but took effect {times:g} times")
    if (not claimed or (result is not None and (result.skipped or result.timed_out))) and times:
        what = "never claimed" if not claimed else _code(result) if result else "?"
        broken.append(f"{name}: {what} but took effect {times:g} times")
    return broken
