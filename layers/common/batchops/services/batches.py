"""Batches (seed 002): creating a batch (validation, plan quotas, the first max_parallel window),
reading, listing, cancelling and retrying it, and its results in four formats.

Running the jobs is `batch_worker`'s part; both share `batch_engine` (the window, progress,
completion and events).
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from batchops.dal import objects
from batchops.dal.batches import QuotaRefusedError
from batchops.dal.items import iso
from batchops.dal.jobs import jobs_by_name
from batchops.errors import ConflictError, NotFoundError, RateLimitedError, StorageError, ValidationFailedError
from batchops.executors import url_safety
from batchops.executors.webhook_signing import new_signing_secret
from batchops.models.batches import (
    BUILTIN_HTTP,
    BUILTIN_OPERATION,
    BatchCancel,
    BatchCreate,
    BatchOptions,
    BatchRetry,
    BatchStatus,
    HttpJobConfig,
    JobSpec,
    JobStatus,
    Priority,
)
from batchops.models.common import Caller
from batchops.models.operations import Operation
from batchops.models.plans import limits_of
from batchops.models.validation import describe, field_path
from batchops.observability import logger
from batchops.services import batch_engine as engine
from batchops.settings import get_settings

DEFAULT_MAX_PARALLEL = 5
# Lambda answers at most 6 MB, and a file goes base64-encoded (4/3 larger): bigger exports are
# served only through their presigned link.
MAX_INLINE_EXPORT_BYTES = 4 * 1024 * 1024
EXPORT_LINKS = {"full_report": "pdf", "excel_summary": "xlsx", "csv_summary": "csv", "raw_data": "json"}


def _invalid_job(index: int, message: str, code: str = "INVALID_JOB_CONFIG") -> ValidationFailedError:
    return ValidationFailedError(f"Job {index}: {message}", code=code, details=[{"index": index, "error": message}])


def _check_url(url: str, index: int | None, field: str) -> None:
    try:
        url_safety.check_url(url, allow_loopback=get_settings().local_mode)
    except ValidationFailedError as error:
        where: dict[str, Any] = {"index": index} if index is not None else {"field": field}
        raise ValidationFailedError(
            error.message, code=error.code, details=[{**where, "error": error.message}]
        ) from None


def _resolve_jobs(workspace_id: str, jobs: list[JobSpec]) -> list[dict[str, Any]]:
    """Each job's kind, target and timeout; 422 INVALID_JOB_CONFIG (or UNSAFE_URL) naming the index."""
    named = [j.type for j in jobs if j.type not in (BUILTIN_HTTP, BUILTIN_OPERATION)]
    registered = jobs_by_name(get_settings().table_name, workspace_id, named) if named else {}
    resolved = []
    seen: set[str] = set()
    for index, job in enumerate(jobs):
        if job.id in seen:
            raise _invalid_job(index, f"job id {job.id!r} is used twice; job ids are unique within a batch")
        seen.add(job.id)
        entry: dict[str, Any] = {"index": index, "job_id": job.id, "type": job.type, "config": job.config}
        try:
            if job.type == BUILTIN_HTTP:
                http = HttpJobConfig.model_validate(job.config)
                _check_url(http.url, index, "config.url")
                entry.update(kind="http", timeout_secs=http.timeout_secs)
            elif job.type == BUILTIN_OPERATION:
                config = job.config if isinstance(job.config, dict) else {}
                operation = Operation.model_validate({"id": job.id, **config})
                entry.update(kind="operation", timeout_secs=30, config=operation.model_dump(exclude_none=True))
            else:
                target = registered.get(job.type)
                if target is None:
                    raise _invalid_job(index, f"unknown job type {job.type!r}: not a registered job or a built-in")
                if not target.get("enabled", True):
                    raise _invalid_job(index, f"job {job.type!r} is disabled")
                entry.update(kind="registered", target_job_id=target["id"], timeout_secs=int(target["timeout_secs"]))
        except ValidationError as error:
            problem = error.errors()[0]
            where = field_path(["config", *problem.get("loc", ())])
            raise _invalid_job(index, describe(problem, field=where)) from None
        resolved.append(entry)
    return resolved


def _limits(caller: Caller, request: BatchCreate) -> int:
    """The batch's max_parallel, after the plan's checks (422s come before any quota)."""
    plan = limits_of(caller.plan)
    if len(request.jobs) > plan.max_jobs_per_batch:
        raise ValidationFailedError(
            f"{len(request.jobs)} jobs; the {caller.plan} plan allows {plan.max_jobs_per_batch} per batch",
            code="BATCH_SIZE_EXCEEDED",
            details=[{"field": "jobs", "error": f"at most {plan.max_jobs_per_batch} jobs"}],
        )
    wanted = request.options.max_parallel
    if wanted is not None and wanted > plan.max_jobs_per_batch:
        raise ValidationFailedError(
            f"max_parallel {wanted} is above the {caller.plan} plan's {plan.max_jobs_per_batch}",
            code="INSUFFICIENT_RESOURCES",
            details=[{"field": "options.max_parallel", "error": f"at most {plan.max_jobs_per_batch}"}],
        )
    return wanted if wanted is not None else min(DEFAULT_MAX_PARALLEL, plan.max_jobs_per_batch)


def _seconds_until_tomorrow(now: datetime) -> int:
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, math.ceil((tomorrow - now).total_seconds()))


def _seconds_until_a_slot(workspace_id: str, now: datetime) -> int:
    """The soonest an unfinished batch must end: its timeout."""
    deadlines = [
        b["deadline"]
        for b in engine.repository().of_workspace(workspace_id)
        if not BatchStatus(b["status"]).finished and b.get("deadline")
    ]
    if not deadlines:
        return 1
    soonest = datetime.fromisoformat(min(deadlines).replace("Z", "+00:00"))
    return max(1, math.ceil((soonest - now).total_seconds()))


def _reserve(caller: Caller, now: datetime) -> str:
    plan = limits_of(caller.plan)
    day = now.strftime("%Y-%m-%d")
    try:
        engine.repository().reserve_quota(
            caller.workspace_id,
            day,
            concurrent=plan.concurrent_batches,
            daily=plan.batches_per_day,
            day_expires_at=int(now.timestamp()) + 2 * 86400,
        )
    except QuotaRefusedError as refused:
        if refused.which == "concurrent":
            message = f"The {caller.plan} plan runs {plan.concurrent_batches} batch(es) at once"
            wait, field = _seconds_until_a_slot(caller.workspace_id, now), "concurrent_batches"
        else:
            message = f"The {caller.plan} plan creates {plan.batches_per_day} batches per UTC day"
            wait, field = _seconds_until_tomorrow(now), "batches_per_day"
        error = RateLimitedError(message, retry_after_seconds=wait, details=[{"field": field, "error": message}])
        error.code = "QUOTA_EXCEEDED"
        raise error from None
    return day


def create_batch(
    caller: Caller, request: BatchCreate, *, retry_of: str | None = None, delay_seconds: int = 0
) -> dict[str, Any]:
    max_parallel = _limits(caller, request)
    jobs = _resolve_jobs(caller.workspace_id, request.jobs)
    notification = request.options.notification
    if notification is not None and notification.webhook:
        _check_url(notification.webhook, None, "options.notification.webhook")
    settings = get_settings()
    now = datetime.now(UTC)
    day = _reserve(caller, now)
    options = request.options
    batch_id = f"batch_{uuid.uuid4().hex}"
    window = min(max_parallel, len(jobs))
    created_at = iso(now)
    deadline = now + timedelta(minutes=options.timeout_minutes)
    expires_at = int(now.timestamp()) + settings.job_retention_seconds
    counts = {engine.counter(s): 0 for s in JobStatus}
    counts[engine.counter(JobStatus.PENDING)] = len(jobs) - window
    counts[engine.counter(JobStatus.QUEUED)] = window
    output = options.output.model_dump() if options.output else {}
    if options.aggregate_report is not None:
        output["aggregate_report"] = options.aggregate_report
    batch: dict[str, Any] = {
        "batch_id": batch_id,
        "workspace_id": caller.workspace_id,
        "name": request.name,
        "description": request.description,
        "batch_type": request.type,
        "priority": str(request.priority),
        "status": str(BatchStatus.QUEUED),
        "created_at": created_at,
        "deadline": iso(deadline),
        "timeout_minutes": options.timeout_minutes,
        "max_parallel": max_parallel,
        "max_attempts": 1 + (options.max_retries if options.retry_failed else 0),
        "retry_failed": options.retry_failed,
        "max_retries": options.max_retries,
        "output": output,
        "total": len(jobs),
        "next_release": window,
        "in_flight": window,
        **counts,
        "invocations": 0,
        "billed_ms": 0,
        "credits": 0,
        "signing_secret": new_signing_secret(),
        "webhook_url": notification.webhook if notification else None,
        "email": notification.email if notification else None,
        "retry_of": retry_of,
        "retried_by": [],
        "caller_key_id": caller.key_id,
        "caller_plan": str(caller.plan),
        "job_types": sorted({j["type"] for j in jobs}),
        "quota_day": day,
        "expires_at": expires_at,
    }
    batch["estimated_completion"] = engine.estimated_completion(caller.workspace_id, batch, jobs, now)
    repo = engine.repository()
    check_at = iso(min(deadline, now + timedelta(seconds=engine.RECHECK_SECONDS)))
    # batch.created goes in with the batch: should anything after the write fail, the sweeper sends it.
    items = [
        repo.batch_item(caller.workspace_id, batch, check_at=check_at),
        repo.outbox_item(caller.workspace_id, batch_id, engine.created_event(batch)),
    ]
    for job in jobs:
        status = JobStatus.QUEUED if job["index"] < window else JobStatus.PENDING
        items.append(
            repo.job_item(
                caller.workspace_id,
                batch_id,
                {
                    **{k: v for k, v in job.items() if k not in ("config", "type")},
                    "job_type": job["type"],
                    "config_json": json.dumps(job["config"], separators=(",", ":"), ensure_ascii=False),
                    "status": str(status),
                    "attempts": 0,
                    "created_at": created_at,
                    "check_at": engine.queued_check_at(now, delay_seconds),
                    "expires_at": expires_at,
                },
            )
        )
    try:
        unwritten = repo.put_all(items)
    except Exception:
        _undo(caller.workspace_id, batch_id, day)
        raise
    if unwritten:
        _undo(caller.workspace_id, batch_id, day)
        raise StorageError("Could not store the batch; nothing was created, retry the request")
    # From here the batch exists and will run: nothing below may fail the request, or the client's
    # retry would create (and run) a second batch. A job SQS refuses is queued by the sweeper;
    # events left in the outbox are sent by it too.
    engine.enqueue(caller.workspace_id, batch, list(range(window)), delay_seconds=delay_seconds)
    engine.send_events(caller.workspace_id, batch)
    view = engine.public_batch(batch)
    return {
        "batch_id": batch_id,
        "name": batch["name"],
        "status": batch["status"],
        "created_at": created_at,
        "estimated_completion": batch["estimated_completion"],
        "jobs": view["jobs"],
        "priority": batch["priority"],
        "webhook_url": batch["webhook_url"],
        "signing_secret": batch["signing_secret"],
        "retry_of": retry_of,
    }


def _undo(workspace_id: str, batch_id: str, day: str) -> None:
    """Nothing was queued yet: remove what was written and give the quota back, so the request
    counts toward nothing."""
    engine.repository().delete_batch(workspace_id, batch_id)
    engine.repository().release_quota(workspace_id, day)


def _batch(workspace_id: str, batch_id: str) -> dict[str, Any]:
    batch = engine.repository().get(workspace_id, batch_id)
    if batch is None:
        raise NotFoundError(f"Batch {batch_id} not found", code="BATCH_NOT_FOUND")
    return batch


def get_batch(
    workspace_id: str, batch_id: str, *, include_jobs: bool = False, job_status: str | None = None
) -> dict[str, Any]:
    batch = _batch(workspace_id, batch_id)
    jobs = engine.repository().jobs(workspace_id, batch_id)
    view = engine.public_batch(batch, jobs, now=datetime.now(UTC))
    if include_jobs:
        listed = [engine.public_job(j) for j in jobs]
        view["individual_jobs"] = [j for j in listed if job_status is None or j["status"] == job_status]
    return view


SORTS = {
    "created_at": lambda b: b["created_at"],
    "started_at": lambda b: b.get("started_at") or "",
    "priority": lambda b: Priority(b["priority"]).rank,
    "name": lambda b: str(b["name"]).lower(),
}


def list_batches(
    workspace_id: str,
    *,
    status: str | None,
    batch_type: str | None,
    priority: str | None,
    page: int,
    per_page: int,
    sort: str,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    found = [
        b
        for b in engine.repository().of_workspace(workspace_id)
        if (status is None or b["status"] == status)
        and (batch_type is None or b.get("batch_type") == batch_type)
        and (priority is None or b["priority"] == priority)
    ]
    descending = sort.startswith("-")
    key = SORTS[sort.lstrip("-")]
    # Ties keep the newest first, whatever the sort.
    found.sort(key=lambda b: (b["created_at"], b["batch_id"]), reverse=True)
    found.sort(key=key, reverse=descending)
    total_pages = max(1, math.ceil(len(found) / per_page))
    shown = found[(page - 1) * per_page : page * per_page]
    pagination = {"page": page, "per_page": per_page, "total_pages": total_pages, "total_items": len(found)}
    return [engine.list_entry(b) for b in shown], pagination


def cancel_batch(workspace_id: str, batch_id: str, request: BatchCancel) -> dict[str, Any]:
    """Cancel an unfinished batch. Cancelling is resumable: the end and how its jobs are to end are
    committed first; a cancel interrupted after that is finished by the sweeper, and a repeated
    DELETE of a cancelled batch finishes it too and answers as the first one did."""
    batch = _batch(workspace_id, batch_id)
    status = BatchStatus(batch["status"])
    if status.finished and status is not BatchStatus.CANCELLED:
        raise ConflictError(f"Batch {batch_id} is already {batch['status']}", code="BATCH_ALREADY_FINISHED")
    if status is not BatchStatus.CANCELLED:
        now = iso(datetime.now(UTC))
        fields = {"finished_at": now, "cancelled_at": now, "cancel_reason": request.reason}
        ending = {"include_running": request.cancel_running_jobs, "running_to": str(JobStatus.CANCELLED)}
        cancelled = engine.finish(
            workspace_id,
            batch_id,
            BatchStatus.CANCELLED,
            {k: v for k, v in fields.items() if v},
            only_when_drained=False,
            ending=ending,
        )
        if not cancelled:
            current = _batch(workspace_id, batch_id)
            if current["status"] != str(BatchStatus.CANCELLED):
                raise ConflictError(f"Batch {batch_id} finished meanwhile", code="BATCH_ALREADY_FINISHED")
    engine.follow_up(workspace_id, _batch(workspace_id, batch_id))
    after = _batch(workspace_id, batch_id)
    jobs = engine.repository().jobs(workspace_id, batch_id)
    usage = engine.resource_usage(workspace_id, after, jobs)
    completed = int(after.get(engine.counter(JobStatus.COMPLETED), 0))
    return {
        "batch_id": batch_id,
        "status": str(BatchStatus.CANCELLED),
        "cancelled_at": after["cancelled_at"],
        "reason": after.get("cancel_reason"),
        "jobs_cancelled": int(after.get(engine.counter(JobStatus.CANCELLED), 0)),
        "jobs_completed": completed,
        # Credits are charged per job-second used, never in advance: nothing was taken for the
        # cancelled jobs, and this is what they were estimated to cost.
        "credits_refunded": max(0, (usage["credits_estimated"] or usage["credits_used"]) - usage["credits_used"]),
        "partial_results_available": completed + int(after.get(engine.counter(JobStatus.FAILED), 0)) > 0,
    }


def retry_batch(caller: Caller, batch_id: str, request: BatchRetry) -> dict[str, Any]:
    original = _batch(caller.workspace_id, batch_id)
    if not BatchStatus(original["status"]).finished:
        raise ConflictError(f"Batch {batch_id} is still {original['status']}", code="BATCH_NOT_FINISHED")
    jobs = engine.repository().jobs(caller.workspace_id, batch_id)
    by_id = {j["job_id"]: j for j in jobs}
    retryable = {str(JobStatus.FAILED), str(JobStatus.CANCELLED), str(JobStatus.TIMED_OUT)}
    if request.job_ids is not None:
        unknown = [j for j in request.job_ids if j not in by_id]
        if unknown:
            raise ValidationFailedError(
                "Unknown job ids", details=[{"field": "job_ids", "error": f"not in the batch: {', '.join(unknown)}"}]
            )
        done = [j for j in request.job_ids if by_id[j]["status"] == str(JobStatus.COMPLETED)]
        if done:
            raise ConflictError(f"Jobs already succeeded: {', '.join(done)}", code="JOB_SUCCEEDED")
        chosen = [by_id[j] for j in dict.fromkeys(request.job_ids)]
    else:
        chosen = [j for j in jobs if j["status"] in retryable]
        if not chosen:
            raise ConflictError(f"Batch {batch_id} has no failed, cancelled or timed-out jobs", code="NOTHING_TO_RETRY")
    max_retries = request.max_retries if request.max_retries is not None else int(original.get("max_retries", 2))
    notification = (
        {"webhook": original.get("webhook_url"), "email": original.get("email")}
        if original.get("webhook_url") or original.get("email")
        else None
    )
    output = dict(original.get("output") or {})
    retry = BatchCreate(
        name=f"{original['name']} (retry)"[:200],
        description=original.get("description"),
        type=original.get("batch_type"),
        priority=Priority(original["priority"]),
        jobs=[JobSpec(id=j["job_id"], type=j["job_type"], config=json.loads(j["config_json"])) for j in chosen],
        options=BatchOptions.model_validate(
            {
                "max_parallel": min(int(original["max_parallel"]), limits_of(caller.plan).max_jobs_per_batch),
                "timeout_minutes": original["timeout_minutes"],
                "retry_failed": max_retries > 0,
                "max_retries": max_retries,
                "notification": notification,
                "output": output or None,
            }
        ),
    )
    created = create_batch(caller, retry, retry_of=batch_id, delay_seconds=round(request.retry_delay_minutes * 60))
    try:
        engine.repository().link_retry(caller.workspace_id, batch_id, created["batch_id"])
    except Exception:  # noqa: BLE001 - the retry exists and runs: failing now would make the client create another
        logger().warning("Retry not linked yet; the sweeper will", extra={"batch_id": batch_id}, exc_info=True)
    return {
        "batch_id": batch_id,
        "jobs_retried": len(chosen),
        "new_batch_id": created["batch_id"],
        "estimated_completion": created["estimated_completion"],
        "signing_secret": created["signing_secret"],
    }


# ---------------------------------------------------------------- results
@dataclass(frozen=True)
class Export:
    """A file answer: the bytes inline, or (too big for Lambda) only the presigned link."""

    content_type: str
    filename: str
    data: bytes | None = None
    link: str | None = None


def _job_results(workspace_id: str, batch_id: str, wanted: list[str] | None, include_raw: bool) -> list[dict[str, Any]]:
    repo = engine.repository()
    jobs = repo.jobs(workspace_id, batch_id)
    if wanted is not None:
        known = {j["job_id"] for j in jobs}
        unknown = [j for j in wanted if j not in known]
        if unknown:
            raise ValidationFailedError(
                "Unknown job ids", details=[{"field": "jobs", "error": f"not in the batch: {', '.join(unknown)}"}]
            )
        jobs = [j for j in jobs if j["job_id"] in set(wanted)]
    results = repo.results(workspace_id, batch_id)
    out = []
    for job in jobs:
        stored = results.get(int(job["index"]))
        entry = engine.result_entry(job, stored)
        if include_raw and stored is not None:
            entry["raw"] = {"http_status": stored.get("http_status"), "body": stored.get("raw_text")}
        out.append(entry)
    return out


def _exports() -> Any:
    # Imported on use: only the results route renders exports.
    from batchops.services import batch_exports

    return batch_exports


def _report(batch: dict[str, Any], job_results: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    partial = not BatchStatus(batch["status"]).finished
    summary = _exports().summary_of(job_results, partial=partial, duration_seconds=engine.duration_seconds(batch))
    aggregated = _exports().aggregate(j["result"] for j in job_results if j.get("result") is not None)
    return summary, aggregated


def _export_key(workspace_id: str, batch_id: str, name: str) -> str:
    return f"exports/{workspace_id}/{batch_id}/{name}"


def _download_links(workspace_id: str, batch: dict[str, Any]) -> dict[str, str] | None:
    """Presigned links of the stored exports, written once when a finished batch's results are
    first read. A running batch has none yet (its results are partial)."""
    if not BatchStatus(batch["status"]).finished:
        return None
    settings = get_settings()
    batch_id = batch["batch_id"]
    if not batch.get("exports_at"):
        job_results = _job_results(workspace_id, batch_id, None, include_raw=True)
        summary, aggregated = _report(batch, job_results)
        for fmt in set(EXPORT_LINKS.values()):
            if fmt == "json":
                body = {**_results_body(batch, summary, aggregated, job_results), "download_links": None}
                data = json.dumps(body, ensure_ascii=False, indent=1).encode()
            else:
                data = _exports().render(fmt, engine.export_header(batch), summary, aggregated, job_results)
            objects.put_file(
                settings.exports_bucket,
                _export_key(workspace_id, batch_id, f"{batch_id}.{fmt}"),
                data,
                content_type=_exports().CONTENT_TYPES[fmt],
                filename=f"{batch_id}.{fmt}",
            )
        engine.repository().mark_once(workspace_id, batch_id, "exports_at", iso(datetime.now(UTC)))
    return {
        name: objects.presigned_get(
            settings.exports_bucket,
            _export_key(workspace_id, batch_id, f"{batch_id}.{fmt}"),
            expires_seconds=settings.export_link_seconds,
        )
        for name, fmt in EXPORT_LINKS.items()
    }


def _results_body(
    batch: dict[str, Any], summary: dict[str, Any], aggregated: dict[str, Any], job_results: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "batch_id": batch["batch_id"],
        "name": batch["name"],
        "status": batch["status"],
        "completed_at": batch.get("finished_at"),
        "partial": summary["partial"],
        "summary": summary,
        "aggregated_metrics": aggregated,
        "job_results": job_results,
    }


def results(
    workspace_id: str, batch_id: str, *, fmt: str, include_raw: bool, jobs: list[str] | None
) -> dict[str, Any] | Export:
    batch = _batch(workspace_id, batch_id)
    job_results = _job_results(workspace_id, batch_id, jobs, include_raw)
    summary, aggregated = _report(batch, job_results)
    if fmt == "json":
        return {
            **_results_body(batch, summary, aggregated, job_results),
            "download_links": _download_links(workspace_id, batch),
        }
    data = _exports().render(fmt, engine.export_header(batch), summary, aggregated, job_results)
    filename = f"{batch_id}.{fmt}"
    content_type = _exports().CONTENT_TYPES[fmt]
    if len(data) <= MAX_INLINE_EXPORT_BYTES:
        return Export(content_type, filename, data=data)
    settings = get_settings()
    key = _export_key(workspace_id, batch_id, f"{uuid.uuid4().hex}/{filename}")
    objects.put_file(settings.exports_bucket, key, data, content_type=content_type, filename=filename)
    link = objects.presigned_get(settings.exports_bucket, key, expires_seconds=settings.export_link_seconds)
    return Export(content_type, filename, link=link)
