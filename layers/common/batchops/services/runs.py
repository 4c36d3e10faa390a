"""Runs (seed 001): triggering one or many, reading them, and bulk-trigger batches.

A trigger creates at most one run per item. Duplicates are found in three places: earlier in the
same request (the first item wins), in claims written by earlier triggers (an idempotency key
for good, a payload hash for the job's `dedup_window_secs`), and in claims a concurrent trigger
wins between our read and our write (claims are conditional writes). Runs are stored before
they are queued; a run whose message never made it is queued again by the sweeper.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from batchops.dal import keys
from batchops.dal.items import iso
from batchops.dal.messaging import send_messages
from batchops.dal.runs import Claim, RunRepository, public_batch, public_run
from batchops.errors import ConflictError, NotFoundError, StorageError, ValidationFailedError
from batchops.models.common import Caller
from batchops.models.jobs import BulkTriggerRequest, RunStatus, TriggerRequest
from batchops.observability import logger
from batchops.services.jobs import find_job
from batchops.services.run_policy import payload_hash
from batchops.settings import get_settings

# A claim whose run does not exist this long after it was written belongs to a request that
# failed between claiming and storing (API Gateway gives a request at most 29 s).
ABANDONED_CLAIM_SECONDS = 120
# Attempts at claiming an item whose competing claim keeps disappearing.
CLAIM_ROUNDS = 3
# Runs the sweeper queues again per pass, at most.
SWEEP_LIMIT = 1_000
# How long a single trigger waits for a concurrent trigger of the same item to store its run.
CONCURRENT_TRIGGER_WAIT_SECONDS = 3.0


def _repository() -> RunRepository:
    return RunRepository(get_settings().table_name)


@dataclass
class _Item:
    index: int
    request: TriggerRequest
    run_id: str
    claims: list[Claim]
    duplicate_of: str | None = None  # the run id this item turned out to repeat


def _claims(item: TriggerRequest, run_id: str, window: int, now: int) -> list[Claim]:
    claims = []
    if item.idempotency_key is not None:
        claims.append(Claim("key", hashlib.sha256(item.idempotency_key.encode()).hexdigest(), run_id))
    if window > 0:
        claims.append(Claim("payload", payload_hash(item.payload), run_id, until=now + window))
    return claims


def _live(claim: dict[str, Any], now: int) -> bool:
    until = claim.get("until")
    return until is None or int(until) >= now


def _drop_repeats_in_request(items: list[_Item]) -> None:
    """Within one request the first item with a claim wins; later ones repeat its run."""
    first: dict[tuple[str, str], str] = {}
    for item in items:
        for claim in item.claims:
            owner = first.get((claim.kind, claim.digest))
            if owner is not None:
                item.duplicate_of = owner
                break
        if item.duplicate_of is None:
            for claim in item.claims:
                first[(claim.kind, claim.digest)] = item.run_id


def _claim(workspace_id: str, job_id: str, items: list[_Item], now: datetime) -> None:
    """Mark every item whose claims another run holds as a duplicate of that run; claim the rest."""
    repo = _repository()
    epoch = int(now.timestamp())
    wanted = [c for item in items if item.duplicate_of is None for c in item.claims]
    if not wanted:
        return
    held = {k: v for k, v in repo.read_claims(workspace_id, job_id, wanted).items() if _live(v, epoch)}
    # Only a claim old enough to be abandoned can be void; younger ones hold whatever their run's state.
    cutoff = iso(now - timedelta(seconds=ABANDONED_CLAIM_SECONDS))
    old = {k: c for k, c in held.items() if c["claimed_at"] < cutoff}
    stored = repo.existing(workspace_id, [c["run_id"] for c in old.values()]) if old else set()
    voids = {k: c["run_id"] for k, c in old.items() if c["run_id"] not in stored}
    for item in items:
        if item.duplicate_of is None:
            holders = [held[(c.kind, c.digest)]["run_id"] for c in item.claims if (c.kind, c.digest) in held]
            holders = [h for h in holders if h not in voids.values()]
            if holders:
                item.duplicate_of = holders[0]
    contenders = [item for item in items if item.duplicate_of is None and item.claims]
    for _ in range(CLAIM_ROUNDS):
        if not contenders:
            return
        refused = repo.write_claims(
            workspace_id,
            job_id,
            [item.claims for item in contenders],
            now=epoch,
            claimed_at=iso(now),
            expires_at=epoch + get_settings().job_retention_seconds,
            voids=voids,
        )
        lost = [contenders[i] for i in sorted(refused)]
        winners = repo.read_claims(workspace_id, job_id, [c for item in lost for c in item.claims]) if lost else {}
        contenders = []
        for item in lost:
            holders = [
                claim["run_id"]
                for c in item.claims
                for claim in [winners.get((c.kind, c.digest))]
                if claim is not None and _live(claim, epoch) and claim["run_id"] != item.run_id
            ]
            if holders:
                item.duplicate_of = holders[0]
            else:  # the winner's claim is gone again (its request failed, or it expired): try again
                contenders.append(item)
    if contenders:
        raise StorageError("Could not settle the runs' de-duplication claims; retry the request")


def _new_run(
    workspace_id: str, job: dict[str, Any], item: _Item, batch_id: str | None, created_at: str
) -> dict[str, Any]:
    return {
        "id": item.run_id,
        "job_id": job["id"],
        "project_id": workspace_id,
        "batch_id": batch_id,
        "status": str(RunStatus.QUEUED),
        "payload": item.request.payload,
        "attempts": 0,
        "created_at": created_at,
        "payload_hash": payload_hash(item.request.payload),
        "idempotency_key": item.request.idempotency_key,
    }


def _create(
    workspace_id: str,
    job: dict[str, Any],
    requests: list[TriggerRequest],
    batch: dict[str, Any] | None,
) -> tuple[list[_Item], dict[str, dict[str, Any]]]:
    """Store one run per item that is not a duplicate (and the batch, if any), then queue them.
    Returns every item (with what it duplicates, if anything) and the created runs by id."""
    repo = _repository()
    settings = get_settings()
    now = datetime.now(UTC)
    epoch = int(now.timestamp())
    items = [
        _Item(n, r, run_id, _claims(r, run_id, int(job["dedup_window_secs"]), epoch))
        for n, r in enumerate(requests)
        for run_id in [f"run_{uuid.uuid4().hex}"]
    ]
    _drop_repeats_in_request(items)
    try:
        _claim(workspace_id, job["id"], items, now)
    except Exception:
        # Some claims may be written: release ours (a release only deletes a claim naming our run).
        repo.release_claims(workspace_id, job["id"], [c for item in items for c in item.claims])
        raise
    created = [item for item in items if item.duplicate_of is None]
    created_at = iso(now)
    expires_at = epoch + settings.job_retention_seconds
    check_at = iso(now + timedelta(seconds=settings.run_recheck_seconds))
    batch_id = batch["id"] if batch is not None else None
    runs = [_new_run(workspace_id, job, item, batch_id, created_at) for item in created]
    records = [repo.run_item(workspace_id, run, check_at=check_at, expires_at=expires_at) for run in runs]
    if batch is not None:
        batch.update(created_at=created_at, created_count=len(runs), finished_at=None if runs else created_at)
        records.insert(0, repo.batch_item(workspace_id, batch, queued=len(runs), expires_at=expires_at))
    try:
        stored_all = not repo.put_all(records)
    except Exception:
        _undo(workspace_id, job["id"], records, created)
        raise
    if not stored_all:
        _undo(workspace_id, job["id"], records, created)
        raise StorageError("Could not store the runs; nothing was created, retry the request")
    _enqueue([(workspace_id, run["id"]) for run in runs], now)
    return items, {run["id"]: run for run in runs}


def _undo(workspace_id: str, job_id: str, records: list[dict[str, Any]], created: list[_Item]) -> None:
    """Nothing is queued yet: remove what was written and release the claims, so a retry of the
    request starts clean. A run that could not be removed keeps its claims, so the retry finds it
    as a duplicate instead of creating a second run."""
    kept = _repository().delete_all([{"pk": r["pk"], "sk": r["sk"]} for r in records])
    kept_runs = {k["pk"] for k in kept}
    _repository().release_claims(
        workspace_id,
        job_id,
        [c for item in created if keys.run(workspace_id, item.run_id)["pk"] not in kept_runs for c in item.claims],
    )


def _enqueue(targets: list[tuple[str, str]], now: datetime) -> int:
    """Queue (workspace, run id) pairs; a run SQS would not take is marked for the sweeper's next
    pass (every 5 minutes) instead of being lost. Returns how many were not sent."""
    unsent = send_messages(get_settings().run_queue_url, [message_for(ws, run_id) for ws, run_id in targets])
    if unsent:
        logger().error("Runs stored but not queued; the sweeper will queue them", extra={"runs": len(unsent)})
        repo = _repository()
        for index in unsent:
            repo.recheck_later(*targets[index], None, iso(now))
    return len(unsent)


def message_for(workspace_id: str, run_id: str) -> dict[str, str]:
    return {"workspace_id": workspace_id, "run_id": run_id}


def _triggerable(workspace_id: str, job_id: str) -> dict[str, Any]:
    job = find_job(workspace_id, job_id)
    if not job.get("enabled", True):
        raise ConflictError(f"Job {job_id} is disabled; enable it to trigger runs", code="JOB_DISABLED")
    return job


def trigger(workspace_id: str, job_id: str, request: TriggerRequest) -> tuple[dict[str, Any], bool]:
    """One run: (the run, False) when created; (the earlier run, True) for a duplicate."""
    job = _triggerable(workspace_id, job_id)
    [item], created = _create(workspace_id, job, [request], None)
    if item.duplicate_of is None:
        return public_run(created[item.run_id]), False
    return _duplicate(workspace_id, item.duplicate_of), True


def _duplicate(workspace_id: str, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + CONCURRENT_TRIGGER_WAIT_SECONDS
    while True:
        run = _repository().get(workspace_id, run_id) if run_id else None
        if run is not None:
            return public_run(run)
        if time.monotonic() > deadline:
            raise ConflictError(
                "The same run is being created by a concurrent trigger; retry shortly", code="TRIGGER_IN_PROGRESS"
            )
        time.sleep(0.1)


def trigger_bulk(caller: Caller, job_id: str, request: BulkTriggerRequest) -> dict[str, Any]:
    ceiling = get_settings().bulk_trigger_max_items
    if len(request.items) > ceiling:
        raise ValidationFailedError(
            f"At most {ceiling} items per request",
            details=[{"field": "items", "error": f"items has {len(request.items)} entries; at most {ceiling}"}],
        )
    job = _triggerable(caller.workspace_id, job_id)
    batch: dict[str, Any] = {
        "id": f"bop_{uuid.uuid4().hex}",
        "project_id": caller.workspace_id,
        "job_id": job["id"],
        "item_count": len(request.items),
        "created_count": 0,
        "created_by": f"apikey:{caller.key_id}",
        "created_at": None,  # set with the runs' creation time
        "finished_at": None,
    }
    items, _ = _create(caller.workspace_id, job, list(request.items), batch)
    return {
        "batch_operation": public_batch(batch, with_counts=False),
        "runs": [
            {"index": item.index, "id": item.run_id, "status": str(RunStatus.QUEUED)}
            for item in items
            if item.duplicate_of is None
        ],
        "deduplicated_indexes": [item.index for item in items if item.duplicate_of is not None],
    }


def get_run(workspace_id: str, run_id: str) -> dict[str, Any]:
    run = _repository().get(workspace_id, run_id)
    if run is None:
        raise NotFoundError(f"Run {run_id} not found", code="RUN_NOT_FOUND")
    return public_run(run)


def list_runs(
    workspace_id: str,
    *,
    job_id: str | None,
    batch_id: str | None,
    status: RunStatus | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first. Another workspace's job or batch id finds nothing (an empty page)."""
    repo = _repository()
    filters = {"status": str(status)} if status else {}
    if batch_id is not None:
        batch = repo.get_batch(workspace_id, batch_id)
        if batch is None or (job_id is not None and job_id != batch["job_id"]):
            return [], None
        # A batch's runs all belong to its job: read the job's runs, keep the batch's.
        job_id = batch["job_id"]
        filters["batch_id"] = batch_id
    runs, next_cursor = repo.page(workspace_id, job_id=job_id, filters=filters, limit=limit, cursor=cursor)
    return [public_run(r) for r in runs], next_cursor


def _owned_project(caller_workspace: str, project_id: str, what: str) -> None:
    # Another workspace's project is indistinguishable from one that does not exist.
    if project_id != caller_workspace:
        raise NotFoundError(f"{what} not found", code="BATCH_OPERATION_NOT_FOUND")


def get_batch_operation(workspace_id: str, project_id: str, batch_id: str) -> dict[str, Any]:
    _owned_project(workspace_id, project_id, f"Batch operation {batch_id}")
    batch = _repository().get_batch(workspace_id, batch_id)
    if batch is None:
        raise NotFoundError(f"Batch operation {batch_id} not found", code="BATCH_OPERATION_NOT_FOUND")
    return public_batch(batch, with_counts=True)


def list_batch_operations(
    workspace_id: str, project_id: str, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    _owned_project(workspace_id, project_id, f"Project {project_id}")
    batches, next_cursor = _repository().list_batches(workspace_id, limit=limit, cursor=cursor)
    return [public_batch(b, with_counts=True) for b in batches], next_cursor


def sweep_overdue_runs() -> int:
    """Send the message of every unfinished run nothing has happened to for too long again,
    and look again later. Returns how many were sent."""
    repo = _repository()
    now = datetime.now(UTC)
    overdue = repo.overdue(iso(now), SWEEP_LIMIT)
    later = iso(now + timedelta(seconds=get_settings().run_recheck_seconds))
    moved = [(ws, run_id) for ws, run_id, seen in overdue if repo.recheck_later(ws, run_id, seen, later)]
    return len(moved) - _enqueue(moved, now)
