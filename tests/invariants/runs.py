"""The promises of runs (seed 001): single triggers, bulk triggers and the batch operations that
track them, and the run worker that calls each job's endpoint."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import boto3

from batchops.models.jobs import RunStatus
from tests.invariants.table import table_items

RUN_QUEUES = ("RunQueue", "RunUrgentQueue")


def runs(items: Iterable[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Every run item by run id."""
    items = list(items if items is not None else table_items())
    return {item["id"]: item for item in items if item.get("type") == "run"}


def batch_operations(items: Iterable[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Every bulk-trigger batch operation with its runs, by batch id."""
    items = list(items if items is not None else table_items())
    by_batch: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs(items).values():
        if run.get("batch_id"):
            by_batch[run["batch_id"]].append(run)
    return {
        item["id"]: {"batch": item, "runs": by_batch.get(item["id"], [])}
        for item in items
        if item.get("type") == "batch_operation"
    }


def queued_messages() -> dict[str, int]:
    """Messages still on the run queues (visible, in flight or delayed), by queue."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    left: dict[str, int] = {}
    for name in RUN_QUEUES:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        count = sum(
            int(attributes.get(a, 0))
            for a in (
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            )
        )
        if count:
            left[name] = count
    return left


def runs_broken(*, endpoint_calls: Counter[str] | None = None, check_queues: bool = True) -> list[str]:
    """Every promise about runs that does not hold:

    - every run is in exactly one terminal state, with finished_at (not before it started), has
      left the sweeper's index and holds no lease;
    - every batch operation's per-status counters equal its runs' states, `created_count` is the
      number of its runs, and finished_at is set once all of them ended, not before the last;
    - (given the endpoint's calls, keyed by webhook-id, which is the run id) each run's endpoint
      was called at most once per attempt, and a completed run at least once;
    - nothing is left on the run queues.
    """
    items = table_items()
    broken: list[str] = []
    found = runs(items)
    for run_id, run in found.items():
        status = RunStatus(run["status"])
        if not status.finished:
            broken.append(f"run {run_id}: still {status} after {run.get('attempts')} attempts")
            continue
        finished_at = run.get("finished_at")
        if not finished_at:
            broken.append(f"run {run_id}: {status} without finished_at")
        elif run.get("started_at") and str(run["started_at"]) > str(finished_at):
            broken.append(f"run {run_id}: finished_at {finished_at} before started_at {run['started_at']}")
        if "gsi2pk" in run or "gsi2sk" in run:
            broken.append(f"run {run_id}: {status} but still in the sweeper's index")
        if "lease_until" in run:
            broken.append(f"run {run_id}: {status} but still leased")
        if status is RunStatus.EXPIRED and int(run.get("attempts", 0)):
            broken.append(f"run {run_id}: expired after {run['attempts']} attempts")
    for batch_id, operation in batch_operations(items).items():
        batch, members = operation["batch"], operation["runs"]
        counts = Counter(str(run["status"]) for run in members)
        for status in RunStatus:
            stored = int(batch.get(f"rc_{status}", 0))
            if stored != counts.get(str(status), 0):
                broken.append(f"batch {batch_id}: rc_{status} = {stored}, its runs say {counts.get(str(status), 0)}")
        if int(batch.get("created_count", -1)) != len(members):
            broken.append(f"batch {batch_id}: created_count {batch.get('created_count')}, {len(members)} runs stored")
        if not batch.get("finished_at"):
            broken.append(f"batch {batch_id}: no finished_at")
        else:
            ends = [str(r["finished_at"]) for r in members if r.get("finished_at")]
            if ends and max(ends) > str(batch["finished_at"]):
                broken.append(f"batch {batch_id}: finished_at {batch['finished_at']} before its last run {max(ends)}")
    if endpoint_calls is not None:
        for run_id, run in found.items():
            calls = endpoint_calls.get(run_id, 0)
            attempts = int(run.get("attempts", 0))
            if calls > attempts:
                broken.append(f"run {run_id}: endpoint called {calls} times in {attempts} attempts")
            if run["status"] == str(RunStatus.COMPLETED) and calls == 0:
                broken.append(f"run {run_id}: completed without a call")
        for run_id in set(endpoint_calls) - set(found):
            broken.append(f"endpoint called for {run_id}, which is not a stored run")
    if check_queues:
        broken += [f"{queue}: {count} messages left" for queue, count in queued_messages().items()]
    return broken
