"""Runs (seed 001): triggering one or many, reading them, and bulk-trigger batches.

A trigger creates at most one run per item. Duplicates are found in three places: earlier in the
same request (the first item wins), in claims written by earlier triggers (an idempotency key
for good, a payload hash for the job's `dedup_window_secs`), and in claims a concurrent trigger
wins between our read and our write (claims are conditional writes). Runs are stored before
they are queued; a run whose message never made it is queued again by the sweeper.

Answers and runs are in Strait's shapes (its server's trigger answers and `JobRun`), so that
Strait's SDK works unchanged; the idempotency key of a trigger's `Idempotency-Key` header is
Strait's run-level key, under the 24-hour replay of whole answers that the API layer keeps.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

from batchops.dal import keys
from batchops.dal.items import iso
from batchops.dal.messaging import send_messages
from batchops.dal.runs import Claim, RunFilter, RunRepository, Transition, public_batch, stored_run
from batchops.errors import ConflictError, NotFoundError, StorageError, ValidationFailedError
from batchops.models.common import Caller
from batchops.models.jobs import (
    EXPIRED_MESSAGE,
    MAX_KEY_LENGTH,
    URGENT_RUN_PRIORITY,
    BatchOperation,
    BatchOperationPage,
    BulkTriggerRequest,
    BulkTriggerResponse,
    BulkTriggerResult,
    DryRunJob,
    DryRunResponse,
    Run,
    RunErrorCode,
    RunOptions,
    RunPage,
    RunState,
    RunStatus,
    TriggerRequest,
    TriggerResponse,
)
from batchops.observability import logger
from batchops.services.jobs import check_project, find_job
from batchops.services.run_policy import error_class, payload_hash, run_error
from batchops.settings import get_settings

# A claim whose run does not exist this long after it was written belongs to a request that
# failed between claiming and storing (API Gateway gives a request at most 29 s).
ABANDONED_CLAIM_SECONDS = 120
# Rounds of reading and writing claims: the first settles almost every request; another is
# needed only for items whose claim a concurrent request took first, or whose competing claim
# vanished between our write and our read.
CLAIM_ROUNDS = 4
# Runs the sweeper looks at per pass, at most.
SWEEP_LIMIT = 1_000
# How long a single trigger waits for a concurrent trigger of the same item to store its run.
CONCURRENT_TRIGGER_WAIT_SECONDS = 3.0
# SQS delays a message by at most 15 minutes; a run scheduled further ahead is left to the
# sweeper (every 5 minutes), which sends it this long before it is due.
MAX_SEND_DELAY_SECONDS = 900
SCHEDULE_LEAD_SECONDS = 600
KEY_HIT = "key"
# Lambda answers at most 6 MB (6,291,456 bytes). A page of runs stops before its runs pass this
# many bytes as they travel (a run is up to 256 KB of payload and 256 KB of result, several times
# that once escaped), which leaves room for the page's envelope and headers.
MAX_PAGE_BYTES = 5 * 1024 * 1024


def _repository() -> RunRepository:
    return RunRepository(get_settings().table_name)


@dataclass
class _Item:
    index: int
    request: RunOptions
    run_id: str
    key: str | None
    claims: list[Claim]
    status: RunStatus = RunStatus.QUEUED
    duplicate_of: str | None = None  # the run id this item turned out to repeat
    duplicate_kind: str | None = None  # the claim it repeated: "key" or "payload"
    extra: dict[str, Any] | None = None  # more fields for its run

    def repeat(self, run_id: str, kind: str) -> None:
        self.duplicate_of, self.duplicate_kind = run_id, kind


@dataclass(frozen=True)
class _Send:
    workspace_id: str
    run_id: str
    priority: int = 0
    delay: int = 0


def _claims(key: str | None, payload: Any, run_id: str, window: int, now: int) -> list[Claim]:
    claims = []
    if key is not None:
        claims.append(Claim("key", hashlib.sha256(key.encode()).hexdigest(), run_id))
    if window > 0:
        claims.append(Claim("payload", payload_hash(payload), run_id, until=now + window))
    return claims


def _live(claim: dict[str, Any], now: int) -> bool:
    until = claim.get("until")
    return until is None or int(until) >= now


def _final(item: _Item, won: set[str], mine: set[str]) -> bool:
    """Whether an item's outcome is decided: it creates its run (its claims are written, or it
    has none), or it repeats a run that exists or that an item of this request creates."""
    if item.duplicate_of is None:
        return item.run_id in won
    return item.duplicate_of not in mine or item.duplicate_of in won


def _settle(items: list[_Item], held: dict[tuple[str, str], str], won: set[str]) -> list[_Item]:
    """Decide, in request order, what each undecided item does, as Strait's bulk route decides
    item after item: it repeats the run that holds its first taken claim (key before payload),
    held by another run (`held`, claim -> run id) or by an earlier item of this request that
    creates its run; otherwise it creates its run. A repeat always names a run that exists or is
    created, never an item that itself repeats another. Returns the items whose claims are
    still to be written (they create their run if the write succeeds)."""
    mine = {item.run_id for item in items}
    for item in items:
        if not _final(item, won, mine):
            item.duplicate_of = item.duplicate_kind = None
    taken: dict[tuple[str, str], str] = {}
    contenders = []
    for item in items:
        if item.duplicate_of is not None:
            continue
        if item.run_id not in won:
            holder = _holder(item, held, taken)
            if holder is not None:
                item.repeat(*holder)
                continue
            contenders.append(item)
        for claim in item.claims:
            taken.setdefault((claim.kind, claim.digest), item.run_id)
    return contenders


def _holder(item: _Item, held: dict[tuple[str, str], str], taken: dict[tuple[str, str], str]) -> tuple[str, str] | None:
    """(run id, claim kind) of the first of the item's claims another run holds or takes."""
    for claim in item.claims:
        key = (claim.kind, claim.digest)
        run_id = held.get(key) or taken.get(key)
        if run_id is not None and run_id != item.run_id:
            return run_id, claim.kind
    return None


def _claim(workspace_id: str, job_id: str, items: list[_Item], now: datetime, keep_until: int) -> None:
    """Decide which items repeat a run and claim the others' keys and payloads. Claims of
    idempotency keys are kept until `keep_until` (epoch seconds), as long as the runs."""
    repo = _repository()
    epoch = int(now.timestamp())
    # Only a claim old enough to be abandoned can be void; younger ones hold whatever their run's state.
    cutoff = iso(now - timedelta(seconds=ABANDONED_CLAIM_SECONDS))
    mine = {item.run_id for item in items}
    won = {item.run_id for item in items if not item.claims}
    for _ in range(CLAIM_ROUNDS):
        undecided = [item for item in items if not _final(item, won, mine)]
        if not undecided:
            return
        found = {
            k: c
            for k, c in repo.read_claims(workspace_id, job_id, [c for item in undecided for c in item.claims]).items()
            if _live(c, epoch)
        }
        old = {k: c for k, c in found.items() if c["claimed_at"] < cutoff and c["run_id"] not in mine}
        stored = repo.existing(workspace_id, [c["run_id"] for c in old.values()]) if old else set()
        voids = {k: c["run_id"] for k, c in old.items() if c["run_id"] not in stored}
        held = {k: str(c["run_id"]) for k, c in found.items() if k not in voids}
        for item in undecided:
            # Our own write went through though its answer was lost (botocore retried it and the
            # retry failed its condition): the claims are the item's.
            if item.duplicate_of is None and all(held.get((c.kind, c.digest)) == item.run_id for c in item.claims):
                won.add(item.run_id)
        contenders = _settle(items, held, won)
        if not contenders:
            continue
        refused = repo.write_claims(
            workspace_id,
            job_id,
            [item.claims for item in contenders],
            now=epoch,
            claimed_at=iso(now),
            expires_at=keep_until,
            voids=voids,
        )
        won |= {item.run_id for n, item in enumerate(contenders) if n not in refused}
    if any(not _final(item, won, mine) for item in items):
        raise StorageError("Could not settle the runs' de-duplication claims; retry the request")


def _merged(base: dict[str, str] | None, overlay: dict[str, str] | None) -> dict[str, str] | None:
    """Strait's mergedRunTags: the job's labels, then the trigger's (which win)."""
    merged = {**(base or {}), **(overlay or {})}
    return merged or None


def _ttl(job: dict[str, Any], request: RunOptions) -> int | None:
    """Strait's order (api/trigger_schedule.go): the trigger's ttl_secs, else the job's
    run_ttl_secs; 0 means "not set". Without either a run never expires (Strait would expire
    it after the job's timeout + 60 s; batchops keeps every accepted run until it runs)."""
    for ttl in (request.ttl_secs, job.get("run_ttl_secs")):
        if ttl:
            return int(ttl)
    return None


def _plan(job: dict[str, Any], request: RunOptions, now: datetime) -> tuple[datetime | None, datetime | None]:
    """(scheduled_at if still ahead, the time the run expires unless started by then)."""
    scheduled = request.scheduled_at if request.scheduled_at and request.scheduled_at > now else None
    ttl = _ttl(job, request)
    # A scheduled run's ttl counts from when it is due, for a trigger and a bulk item alike. That
    # is Strait's single trigger (api/trigger_schedule.go triggerExpiryBase); Strait's bulk route
    # counts from the request (api/bulk_trigger_run.go bulkTriggerExpiresAt), which expires an
    # item scheduled further ahead than its ttl before it is ever due. batchops does not copy that.
    start_by = (scheduled or now) + timedelta(seconds=ttl) if ttl else None
    return scheduled, start_by


def _new_run(caller: Caller, job: dict[str, Any], item: _Item, batch_id: str | None, now: datetime) -> dict[str, Any]:
    scheduled, start_by = _plan(job, item.request, now)
    request = item.request
    created_at = iso(now)
    return {
        "id": item.run_id,
        "job_id": job["id"],
        "job_slug": job.get("slug"),
        "project_id": caller.workspace_id,
        "batch_id": batch_id,
        "status": str(item.status),
        "payload": request.payload,
        "attempts": 0,
        "created_at": created_at,
        "updated_at": created_at,
        "payload_hash": payload_hash(request.payload),
        "idempotency_key": item.key,
        "priority": request.priority,
        "tags": _merged(job.get("tags"), request.tags),
        "metadata": _merged(job.get("default_run_metadata"), None),
        "concurrency_key": request.concurrency_key,
        "scheduled_at": iso(scheduled) if scheduled else None,
        "start_by": iso(start_by) if start_by else None,
        "triggered_by": "manual",
        "created_by": f"apikey:{caller.key_id}",
        "job_version": int(job.get("version", 1)),
        **(item.extra or {}),
    }


def _send_plan(run: dict[str, Any], now: datetime) -> tuple[int | None, datetime]:
    """(SQS delay to send the run's message with now, or None to leave it to the sweeper; when
    the sweeper should look at the run if nothing happens)."""
    settings = get_settings()
    check = now + timedelta(seconds=settings.run_recheck_seconds)
    delay: int | None = 0
    if run.get("scheduled_at"):
        due = datetime.fromisoformat(run["scheduled_at"])
        wait = math.ceil((due - now).total_seconds())
        if wait > MAX_SEND_DELAY_SECONDS:
            delay, check = None, due - timedelta(seconds=SCHEDULE_LEAD_SECONDS)
        else:
            delay, check = max(0, wait), due + timedelta(seconds=settings.run_recheck_seconds)
    if run.get("start_by"):
        # The sweeper expires a run nobody started in time, even if its message is still queued.
        check = min(check, datetime.fromisoformat(run["start_by"]))
    return delay, check


def _create(caller: Caller, job: dict[str, Any], items: list[_Item], batch: dict[str, Any] | None) -> None:
    """Store one run per item that does not repeat a run (and the batch, if any), then queue
    them. Afterwards every item names its own run or the run it repeats."""
    workspace_id = caller.workspace_id
    repo = _repository()
    settings = get_settings()
    now = datetime.now(UTC)
    # Runs are kept for the retention period from when they are due, so a run scheduled weeks
    # ahead is still there to run; its batch and claims are kept as long as its latest run.
    due = {item.run_id: max(now, item.request.scheduled_at or now) for item in items}
    keep_until = int(max(due.values()).timestamp()) + settings.job_retention_seconds
    try:
        _claim(workspace_id, job["id"], items, now, keep_until)
    except Exception:
        # Some claims may be written: release ours (a release only deletes a claim naming our run).
        repo.release_claims(workspace_id, job["id"], [c for item in items for c in item.claims])
        raise
    created = [item for item in items if item.duplicate_of is None]
    batch_id = batch["id"] if batch is not None else None
    runs = [_new_run(caller, job, item, batch_id, now) for item in created]
    plans = {run["id"]: _send_plan(run, now) for run in runs}
    records = [
        repo.run_item(
            workspace_id,
            run,
            check_at=iso(plans[run["id"]][1]),
            expires_at=int(due[run["id"]].timestamp()) + settings.job_retention_seconds,
        )
        for run in runs
    ]
    if batch is not None:
        batch.update(created_at=iso(now), created_count=len(runs), finished_at=None if runs else iso(now))
        counts = {status: sum(1 for item in created if item.status is status) for status in RunStatus}
        records.insert(0, repo.batch_item(workspace_id, batch, counts=counts, expires_at=keep_until))
    try:
        stored_all = not repo.put_all(records)
    except Exception:
        _undo(workspace_id, job["id"], records, created)
        raise
    if not stored_all:
        _undo(workspace_id, job["id"], records, created)
        raise StorageError("Could not store the runs; nothing was created, retry the request")
    sends = []
    for run in runs:
        delay = plans[run["id"]][0]
        if delay is not None:
            sends.append(_Send(workspace_id, run["id"], int(run["priority"]), delay))
    _enqueue(sends, now)


def _items(job: dict[str, Any], requests: list[tuple[RunOptions, str | None]], now: datetime) -> list[_Item]:
    """One item per request (with its idempotency key), and the claims that make it unique."""
    window = int(job["dedup_window_secs"])
    epoch = int(now.timestamp())
    items = []
    for n, (request, key) in enumerate(requests):
        run_id = f"run_{uuid.uuid4().hex}"
        item = _Item(n, request, run_id, key, _claims(key, request.payload, run_id, window, epoch))
        if request.scheduled_at is not None and request.scheduled_at > now:
            item.status = RunStatus.DELAYED
        items.append(item)
    return items


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


def queue_for(priority: int) -> str:
    """The run queue a run of this priority goes through: high and urgent runs have their own,
    with its own consumer, so no backlog of lower ones can hold them up (DESIGN §2)."""
    settings = get_settings()
    return settings.run_urgent_queue_url if priority >= URGENT_RUN_PRIORITY else settings.run_queue_url


def _enqueue(sends: list[_Send], now: datetime) -> int:
    """Queue runs, each on its priority's queue (`queue_for`), higher priorities first: every
    message of a priority is accepted by SQS before the next lower priority's are sent. Within
    a priority, messages go 10 to a call on a few threads at once, so their order is not kept
    (nor would a standard queue keep it). A run SQS would not take is marked for the sweeper's
    next pass (every 5 minutes) instead of being lost. Returns how many were not sent."""
    ordered = sorted(sends, key=lambda s: (-s.priority, s.delay))
    unsent: list[_Send] = []
    for (priority, delay), group in groupby(ordered, key=lambda s: (s.priority, s.delay)):
        batch = list(group)
        failed = send_messages(
            queue_for(priority), [message_for(s.workspace_id, s.run_id) for s in batch], delay_seconds=delay
        )
        unsent += [batch[i] for i in failed]
    if unsent:
        logger().error("Runs stored but not queued; the sweeper will queue them", extra={"runs": len(unsent)})
        repo = _repository()
        for send in unsent:
            try:
                repo.recheck_later(send.workspace_id, send.run_id, None, iso(now))
            except Exception:  # noqa: BLE001 - the runs are stored: their create must still answer
                # The run keeps the check time it was stored with (at most run_recheck_seconds
                # ahead, or its ttl): the sweeper queues it then. Failing here would answer 5xx
                # for runs that will run, and the client's retry would create them twice.
                logger().warning("Could not mark an unsent run for the next sweep", extra={"run_id": send.run_id})
    return len(unsent)


def message_for(workspace_id: str, run_id: str) -> dict[str, str]:
    return {"workspace_id": workspace_id, "run_id": run_id}


def _triggerable(workspace_id: str, job_id: str) -> dict[str, Any]:
    job = find_job(workspace_id, job_id)
    if not job.get("enabled", True):
        raise ConflictError(f"Job {job_id} is disabled; enable it to trigger runs", code="JOB_DISABLED")
    return job


def _run_key(body_key: str | None, header_key: str | None) -> str | None:
    """The run-level idempotency key: the request's Idempotency-Key (or X-Idempotency-Key)
    header, as in Strait, or batchops' body field; both name the same thing, so they must agree."""
    if header_key is not None:
        if not 0 < len(header_key) <= MAX_KEY_LENGTH:
            raise ValidationFailedError(
                "Invalid idempotency key",
                details=[{"field": "Idempotency-Key", "error": f"must be 1-{MAX_KEY_LENGTH} characters"}],
            )
        if body_key is not None and body_key != header_key:
            raise ValidationFailedError(
                "The idempotency key in the body and in the header differ",
                details=[
                    {"field": "idempotency_key", "error": "must equal the Idempotency-Key header, or be left out"}
                ],
            )
    return header_key or body_key


@dataclass(frozen=True)
class TriggerAnswer:
    """Strait's trigger answer and whether it is a run-level idempotency hit (HTTP 200, not 201)."""

    body: TriggerResponse | DryRunResponse
    idempotency_hit: bool = False
    dry_run: bool = False


def trigger(caller: Caller, job_id: str, request: TriggerRequest, header_key: str | None = None) -> TriggerAnswer:
    """One run. New, or a payload de-duplication hit: `{id, status, payload_hash,
    idempotency_hit: false}`; a run-level idempotency hit: `{id, status, idempotency_hit: true}`."""
    key = _run_key(request.idempotency_key, header_key)
    job = _triggerable(caller.workspace_id, job_id)
    if request.dry_run:
        return TriggerAnswer(_dry_run(job, request), dry_run=True)
    [item] = _items(job, [(request, key)], datetime.now(UTC))
    item.extra = {
        "metadata": _merged(job.get("default_run_metadata"), request.metadata),
        # Stored only: batchops has no debounce or batch windows.
        "debounce_key": request.debounce_key,
        "batch_key": request.batch_key,
    }
    _create(caller, job, [item], None)
    digest = payload_hash(request.payload)
    if item.duplicate_of is None:
        return TriggerAnswer(_trigger_body(item.run_id, item.status, digest))
    existing = _existing(caller.workspace_id, item.duplicate_of)
    status = RunStatus(existing["status"])
    if item.duplicate_kind == KEY_HIT:
        return TriggerAnswer(TriggerResponse(id=existing["id"], status=status.public, idempotency_hit=True), True)
    return TriggerAnswer(_trigger_body(existing["id"], status, digest))


def _trigger_body(run_id: str, status: RunStatus, digest: str) -> TriggerResponse:
    return TriggerResponse(id=run_id, status=status.public, payload_hash=digest, idempotency_hit=False)


def _dry_run(job: dict[str, Any], request: TriggerRequest) -> DryRunResponse:
    """Strait's dry-run answer: what the run would be, nothing created."""
    scheduled, start_by = _plan(job, request, datetime.now(UTC))
    return DryRunResponse(
        job=DryRunJob(
            id=job["id"],
            name=job["name"],
            slug=job.get("slug"),
            execution_mode="http",
            queue=job.get("queue_name") or "default",
            timeout_secs=int(job["timeout_secs"]),
            max_attempts=int(job["max_attempts"]),
            version=int(job.get("version", 1)),
        ),
        payload_hash=payload_hash(request.payload),
        payload=request.payload,
        scheduled_at=iso(scheduled) if scheduled else None,
        expires_at=iso(start_by) if start_by else None,
        validation_warnings=[],
    )


def _existing(workspace_id: str, run_id: str) -> dict[str, Any]:
    """The run a trigger repeated; a concurrent trigger may still be storing it."""
    deadline = time.monotonic() + CONCURRENT_TRIGGER_WAIT_SECONDS
    while True:
        run = _repository().get(workspace_id, run_id, with_result=False) if run_id else None
        if run is not None:
            return run
        if time.monotonic() > deadline:
            raise ConflictError(
                "The same run is being created by a concurrent trigger; retry shortly", code="TRIGGER_IN_PROGRESS"
            )
        time.sleep(0.1)


def trigger_bulk(caller: Caller, job_id: str, request: BulkTriggerRequest) -> BulkTriggerResponse:
    """Strait's bulk answer: `{batch_id, results: [{id, status, idempotency_hit}], total,
    created}`, one result per item in item order; an item that repeats a run (earlier in the
    request or before it) names that run."""
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
    # An item's dry_run and metadata are ignored, as Strait's bulk route ignores them.
    items = _items(job, [(item, item.idempotency_key) for item in request.items], datetime.now(UTC))
    _create(caller, job, items, batch)
    mine = {item.run_id: item.status for item in items if item.duplicate_of is None}
    earlier = [item.duplicate_of for item in items if item.duplicate_of and item.duplicate_of not in mine]
    found = _repository().get_many([(caller.workspace_id, run_id) for run_id in earlier]) if earlier else {}
    results = []
    for item in items:
        run_id = item.duplicate_of or item.run_id
        if run_id in mine:
            status = mine[run_id]
        else:
            # A run a concurrent request has claimed but not stored yet is about to be queued.
            status = RunStatus(found.get((caller.workspace_id, run_id), {}).get("status", RunStatus.QUEUED))
        results.append(
            BulkTriggerResult(id=run_id, status=status.public, idempotency_hit=item.duplicate_kind == KEY_HIT)
        )
    return BulkTriggerResponse(batch_id=batch["id"], results=results, total=len(request.items), created=len(mine))


def run_view(run: dict[str, Any]) -> Run:
    """A run as the API shows it: Strait's `JobRun` (status names, `attempt`, `error` as text
    with its `error_class`), plus `error_detail` with batchops' code and HTTP status. Keys
    without a value are left out, as Strait's server does."""
    status = RunStatus(run["status"])
    error = run.get("error")
    finished = run.get("finished_at")
    view: dict[str, Any] = {
        "id": run["id"],
        "job_id": run["job_id"],
        "job_slug": run.get("job_slug"),
        "project_id": run["project_id"],
        "batch_id": run.get("batch_id"),
        "status": status.public,
        "attempt": max(1, int(run.get("attempts", 0))),
        "payload": run.get("payload"),
        "result": run.get("result"),
        "error": error["message"] if error else None,
        "error_class": error_class(error) if error else None,
        "error_detail": error,
        "tags": run.get("tags") or None,
        "metadata": run.get("metadata") or None,
        "priority": int(run.get("priority", 0)),
        "idempotency_key": run.get("idempotency_key"),
        "concurrency_key": run.get("concurrency_key"),
        "triggered_by": run.get("triggered_by", "manual"),
        "created_by": run.get("created_by"),
        "job_version": int(run.get("job_version", 1)),
        "execution_mode": "http",
        "scheduled_at": run.get("scheduled_at"),
        "expires_at": run.get("start_by"),
        "started_at": run.get("started_at"),
        "next_retry_at": run.get("next_retry_at") if status.waiting else None,
        "finished_at": finished,
        "completed_at": finished,
        "created_at": run["created_at"],
        "updated_at": run.get("updated_at") or run["created_at"],
    }
    return Run.model_validate({k: v for k, v in view.items() if v is not None})


def get_run(workspace_id: str, run_id: str, *, project_id: str | None = None) -> Run:
    check_project(workspace_id, project_id)
    run = _repository().get(workspace_id, run_id)
    if run is None:
        raise NotFoundError(f"Run {run_id} not found", code="RUN_NOT_FOUND")
    return run_view(stored_run(run))


def _wire_bytes(run: Run) -> int:
    """Bytes a run takes in a list answer as Lambda returns it: JSON with non-ASCII escaped (as
    the API serializes it), inside the proxy answer's body string, which escapes its quotes and
    backslashes once more."""
    text = json.dumps(run.body(), separators=(",", ":"))
    return len(text) + text.count('"') + text.count("\\") + 1  # and the comma between runs


def _label_check(kind: str, key: str | None, value: str | None) -> None:
    if value is not None and key is None:
        raise ValidationFailedError(
            f"{kind}_key is required when {kind}_value is given",
            details=[{"field": f"{kind}_value", "error": f"needs {kind}_key"}],
        )


def list_runs(
    workspace_id: str,
    *,
    limit: int,
    cursor: str | None,
    project_id: str | None = None,
    job_id: str | None = None,
    batch_id: str | None = None,
    statuses: tuple[RunState, ...] = (),
    tag_key: str | None = None,
    tag_value: str | None = None,
    metadata_key: str | None = None,
    metadata_value: str | None = None,
) -> RunPage:
    """Newest first, at most `limit` runs, fewer when they would not fit one answer (the page
    then ends early, with a cursor for the rest). Another workspace's job or batch id finds
    nothing (an empty page)."""
    check_project(workspace_id, project_id)
    _label_check("tag", tag_key, tag_value)
    _label_check("metadata", metadata_key, metadata_value)
    if tag_key is not None and metadata_key is not None:
        # As Strait: one label filter per listing.
        raise ValidationFailedError(
            "tag_key and metadata_key filters are mutually exclusive",
            details=[{"field": "metadata_key", "error": "cannot be combined with tag_key"}],
        )
    repo = _repository()
    batch_created_at: str | None = None
    if batch_id is not None:
        batch = repo.get_batch(workspace_id, batch_id)
        if batch is None or (job_id is not None and job_id != batch["job_id"]):
            return RunPage.of([], None)
        # A batch's runs all belong to its job, and were all created with the batch: they are
        # one key range of the job's runs.
        job_id, batch_created_at = batch["job_id"], batch["created_at"]
    filters = RunFilter(
        job_id=job_id,
        batch_id=batch_id,
        batch_created_at=batch_created_at,
        statuses=tuple(state.stored for state in statuses),
        tag_key=tag_key,
        tag_value=tag_value,
        metadata_key=metadata_key,
        metadata_value=metadata_value,
    )
    runs, next_cursor = repo.page(workspace_id, filters, limit=limit, cursor=cursor)
    shown: list[Run] = []
    size = 0
    for n, run in enumerate(runs):
        view = run_view(stored_run(run))
        size += _wire_bytes(view)
        if shown and size > MAX_PAGE_BYTES:
            next_cursor = repo.cursor_after(workspace_id, runs[n - 1], job_id)
            break
        shown.append(view)
    return RunPage.of(shown, next_cursor)


def get_batch_operation(workspace_id: str, project_id: str | None, batch_id: str) -> BatchOperation:
    check_project(workspace_id, project_id)
    batch = _repository().get_batch(workspace_id, batch_id)
    if batch is None:
        raise NotFoundError(f"Batch operation {batch_id} not found", code="BATCH_OPERATION_NOT_FOUND")
    return BatchOperation.model_validate(public_batch(batch))


def list_batch_operations(
    workspace_id: str, project_id: str | None, *, limit: int, cursor: str | None
) -> BatchOperationPage:
    check_project(workspace_id, project_id)
    batches, next_cursor = _repository().list_batches(workspace_id, limit=limit, cursor=cursor)
    return BatchOperationPage.of([BatchOperation.model_validate(public_batch(b)) for b in batches], next_cursor)


# ---------------------------------------------------------------- expiry and the sweeper
def expire(run: dict[str, Any], now: datetime) -> bool:
    """End a run no worker started before its ttl ran out (Strait's reaper: `expired`, error
    "run expired"). A conditional write on the status and attempt count it was read with, so a
    worker claiming it at the same moment wins or loses cleanly. False if it is not due or no
    longer waiting, or another change got there first."""
    status = RunStatus(run["status"])
    start_by = run.get("start_by")
    if not status.waiting or int(run.get("attempts", 0)) or not start_by or start_by > iso(now):
        return False
    repo = _repository()
    ended = repo.transition(
        run["project_id"],
        run,
        Transition(
            from_status=status,
            from_attempts=0,
            to=RunStatus.EXPIRED,
            attempts=0,
            fields={"finished_at": iso(now), "error": run_error(RunErrorCode.EXPIRED, EXPIRED_MESSAGE)},
            # An expired run of a batch may have no message left to come back if what follows
            # fails (the sweeper expires runs whose message never made it): it stays in the
            # sweeper's index until its batch has been looked at.
            check_at=iso(now) if run.get("batch_id") else None,
        ),
    )
    if ended and run.get("batch_id"):
        close_batch_of(run, now)
    return ended


def close_batch_of(run: dict[str, Any], now: datetime) -> None:
    """For an ended run still in the sweeper's index: close its batch if it was the last, then
    leave the index (a failure in between leaves it there for the next sweep)."""
    finish_batch_of(run, now)
    _repository().unindex(run["project_id"], run["id"])


def finish_batch_of(run: dict[str, Any], now: datetime) -> None:
    """Close the run's batch if no run of it is waiting or running any more, its finished_at not
    earlier than any of its runs' finished_at.

    The counters reach zero only once every run's end is stored (an end and its counter move are
    one transaction), but the process whose run ended first (its finished_at taken first) may be
    the one that closes the batch, after a later end landed elsewhere: its clock would date the
    batch before its last run (seen with 10 records per invocation in test_faults_runs_ten, and
    between the sweeper's expiry and a worker). So whoever closes the batch, or finds it closed,
    reads the runs' ends once (consistently) and moves finished_at up to the latest if that is
    later. Finding it closed covers a closer that died before the check: its runs' redelivered
    messages (or the sweeper) come back here. The read is paid once per batch and on duplicate
    deliveries, not on every run's end: a run that is not the last finds the batch open."""
    batch_id = run.get("batch_id")
    if not batch_id:
        return
    repo = _repository()
    workspace_id = run["project_id"]
    close = repo.finish_batch(workspace_id, batch_id, iso(now))
    if close.closed_now:
        logger().info("Batch operation finished", extra={"batch_id": batch_id})
    if close.finished_at is None:
        return
    latest = repo.latest_run_end(workspace_id, run["job_id"], batch_id, run["created_at"])
    if latest is not None and latest > close.finished_at and repo.raise_batch_finish(workspace_id, batch_id, latest):
        logger().info("Batch operation finished_at moved to its last run's", extra={"batch_id": batch_id})


def sweep_overdue_runs() -> int:
    """Look at every unfinished run whose check time has passed: expire those nobody started
    in time, send the message of a scheduled run that is nearly due, and send again the
    message of any other run nothing has happened to for too long (each on its priority's
    queue, higher priorities first). Returns how many messages were sent."""
    repo = _repository()
    now = datetime.now(UTC)
    overdue = repo.overdue(iso(now), SWEEP_LIMIT)
    found = repo.get_many([(ws, run_id) for ws, run_id, _ in overdue])
    recheck = timedelta(seconds=get_settings().run_recheck_seconds)
    sends: list[_Send] = []
    expired = 0
    for ws, run_id, seen in overdue:
        run = found.get((ws, run_id))
        if run is None:
            continue
        if RunStatus(run["status"]).finished:
            close_batch_of(run, now)  # ended, but the batch close after it never happened
            continue
        if expire(run, now):
            expired += 1
            continue
        delay, check = 0, now + recheck
        if run["status"] == RunStatus.DELAYED and run.get("scheduled_at"):
            due = datetime.fromisoformat(run["scheduled_at"])
            wait = math.ceil((due - now).total_seconds())
            if wait > MAX_SEND_DELAY_SECONDS:
                repo.recheck_later(ws, run_id, seen, iso(due - timedelta(seconds=SCHEDULE_LEAD_SECONDS)))
                continue
            delay, check = max(0, wait), due + recheck
        if RunStatus(run["status"]).waiting and run.get("start_by") and not int(run.get("attempts", 0)):
            check = min(check, datetime.fromisoformat(run["start_by"]))
        if repo.recheck_later(ws, run_id, seen, iso(check)):
            sends.append(_Send(ws, run_id, int(run.get("priority", 0)), delay))
    if expired:
        logger().info("Expired runs nobody started in time", extra={"runs": expired})
    return len(sends) - _enqueue(sends, now)
