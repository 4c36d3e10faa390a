"""The Batches engine's promises (seed 002): batches with max_parallel, retry and cancel, and their
lifecycle events."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from batchops.models.batches import BatchStatus, JobStatus
from tests.invariants.table import table_items


def batches(items: Iterable[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Every Batches batch with its jobs, outbox and deliveries, by batch id."""
    items = list(items if items is not None else table_items())
    found: dict[str, dict[str, Any]] = {}
    by_pk: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        by_pk[item["pk"]].append(item)
    for item in items:
        if item.get("type") == "batch":
            partition = by_pk[item["pk"]]
            found[item["batch_id"]] = {
                "batch": item,
                "jobs": sorted((i for i in partition if i.get("type") == "batch_job"), key=lambda j: int(j["index"])),
                "outbox": [i for i in partition if i.get("type") == "batch_outbox"],
                "deliveries": [
                    i for i in items if i.get("type") == "webhook_delivery" and i.get("batch_id") == item["batch_id"]
                ],
            }
    return found


def batches_broken(*, endpoint_calls: Counter[str] | None = None) -> list[str]:
    """Every promise of the Batches engine that does not hold:

    - every batch and every job is in exactly one terminal state, with finished_at;
    - the batch's counters equal its jobs' states, and nothing is left in flight;
    - its outbox is empty and it has left the sweeper's index;
    - each lifecycle event went to each target once: created; started if a job ran; one
      job_completed per job a worker ended; each progress threshold crossed once; the end once;
    - (given the receiver's calls, keyed by webhook-id) each job's endpoint was called at most as
      many times as it had attempts, a completed job at least once.
    """
    broken: list[str] = []
    for batch_id, found in batches().items():
        batch, jobs = found["batch"], found["jobs"]
        status = BatchStatus(batch["status"])
        if not status.finished:
            broken.append(f"{batch_id}: still {status}")
        if not batch.get("finished_at"):
            broken.append(f"{batch_id}: no finished_at")
        for job in jobs:
            if not JobStatus(job["status"]).finished:
                broken.append(f"{batch_id} job {job['index']}: still {job['status']}")
        counts = Counter(job["status"] for job in jobs)
        for job_status in JobStatus:
            stored = int(batch.get(f"jc_{job_status}", 0))
            if stored != counts.get(str(job_status), 0):
                broken.append(
                    f"{batch_id}: counter jc_{job_status} = {stored}, jobs say {counts.get(str(job_status), 0)}"
                )
        if int(batch.get("in_flight", 0)) != 0:
            broken.append(f"{batch_id}: in_flight = {batch.get('in_flight')}")
        if found["outbox"]:
            broken.append(f"{batch_id}: outbox not empty: {[o['sk'] for o in found['outbox']]}")
        if "gsi2pk" in batch:
            broken.append(f"{batch_id}: still in the sweeper's index")
        broken += _events_broken(batch_id, batch, jobs, found["deliveries"])
        if endpoint_calls is not None:
            for job in jobs:
                calls = endpoint_calls.get(f"{batch_id}.{job['job_id']}", 0)
                if calls > int(job["attempts"]):
                    broken.append(
                        f"{batch_id} job {job['job_id']}: endpoint called {calls} times in {job['attempts']} attempts"
                    )
                if job["status"] == str(JobStatus.COMPLETED) and calls == 0 and job.get("kind") == "http":
                    broken.append(f"{batch_id} job {job['job_id']}: completed without a call")
    return broken


def _events_broken(
    batch_id: str, batch: dict[str, Any], jobs: list[dict[str, Any]], deliveries: list[dict[str, Any]]
) -> list[str]:
    broken: list[str] = []
    by_target: dict[str, Counter[str]] = defaultdict(Counter)
    for delivery in deliveries:
        key = str(delivery["event_key"]).removeprefix(f"{batch_id}:")
        by_target[f"{delivery['target_kind']}:{delivery['target_id']}"][key] += 1
    for target, keys in by_target.items():
        for key, count in keys.items():
            if count != 1:
                broken.append(f"{batch_id} {target}: {key} delivered {count} times")
        expected = {"created", "finished"}
        if batch.get("started_at"):
            expected.add("started")
        expected |= {f"job:{j['index']}" for j in jobs if _ended_by_a_worker(j)}
        expected |= {k for k in batch if k.startswith("progress_")}
        if target.startswith("email:"):
            continue  # only the end is emailed
        missing = expected - set(keys)
        if missing:
            states = {f"job:{j['index']}": (j["status"], (j.get("error") or {}).get("code")) for j in jobs}
            broken.append(f"{batch_id} {target}: never sent {[(key, states.get(key)) for key in sorted(missing)]}")
    return broken


def _ended_by_a_worker(job: dict[str, Any]) -> bool:
    """Whether a worker ended the job (it then sends batch.job_completed): completed or failed. A
    job the batch's end took with it (cancelled, or timed_out with TIMEOUT_EXCEEDED when the batch
    ran out of time) is reported in the batch's own final event instead."""
    if job["status"] in (str(JobStatus.COMPLETED), str(JobStatus.FAILED)):
        return True
    return job["status"] == str(JobStatus.TIMED_OUT) and (job.get("error") or {}).get("code") != "TIMEOUT_EXCEEDED"


def webhook_bodies(calls: Iterable[Any]) -> list[dict[str, Any]]:
    return [json.loads(call.body) for call in calls]
