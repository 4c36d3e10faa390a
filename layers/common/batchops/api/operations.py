"""Operations surface (seed 003): /v1/batch, /v1/batch/transaction, /v1/batch/dry-run,
/v1/batch/limits and the async job routes."""

from __future__ import annotations

import time
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from batchops.api.context import current_body_size, current_caller, current_lambda_context
from batchops.api.dispatch import InProcessTarget
from batchops.api.openapi import GENERATED_ID, responses
from batchops.api.router import SurfaceRouter
from batchops.models.operations import (
    ALLOWED_METHODS,
    MAX_BATCH_BODY_BYTES,
    MAX_OPERATION_BODY_BYTES,
    MAX_OPERATIONS,
    TIMEOUT_MS,
    AsyncJobCreatedData,
    AsyncJobData,
    AsyncJobPage,
    BatchRequest,
    BatchResponse,
    JobStatus,
    Limits,
    RateLimits,
)
from batchops.models.plans import limits_of
from batchops.observability import logger, record_batch
from batchops.services import operation_jobs, operations
from batchops.services.operations import Deadline
from batchops.settings import get_settings

router = SurfaceRouter("Operations")
# Leave the handler time to write its answer after the last operation.
SAFETY_MARGIN_MS = 1_000


def sync_deadline() -> Deadline:
    """The seed's 60 s, cut to what API Gateway and this invocation can wait for."""
    budget = min(TIMEOUT_MS, get_settings().http_deadline_ms)
    context = current_lambda_context()
    if context is not None:
        budget = min(budget, context.get_remaining_time_in_millis() - SAFETY_MARGIN_MS)
    return Deadline.after(max(budget, 0) / 1000)


def _record(mode: str, result: BatchResponse, started: float) -> None:
    record_batch(mode, result, (time.monotonic() - started) * 1000)


@router.post(
    "/v1/batch",
    summary="Execute operations sequentially or in parallel",
    responses=responses(200, BatchResponse, 413, 422),
)
def execute_batch(request: Annotated[BatchRequest, Body()]) -> dict[str, Any]:
    started = time.monotonic()
    operations.validate(request, current_body_size())
    result = operations.run(current_caller(), request, InProcessTarget(), sync_deadline())
    _record("Sync", result, started)
    return result.model_dump(mode="json")


@router.post(
    "/v1/batch/transaction",
    summary="Execute operations as a fail-fast sequence (no rollback)",
    responses=responses(200, BatchResponse, 413, 422),
)
def execute_transaction(request: Annotated[BatchRequest, Body()]) -> dict[str, Any]:
    started = time.monotonic()
    result = operation_jobs.run_transaction(current_caller(), request, current_body_size(), sync_deadline())
    _record("Transaction", result, started)
    return result.model_dump(mode="json")


@router.post(
    "/v1/batch/dry-run",
    idempotent=False,  # it creates nothing: running it twice is already harmless
    summary="Validate a batch without executing it",
    responses=responses(200, BatchResponse, 413, 422),
)
def dry_run(request: Annotated[BatchRequest, Body()]) -> dict[str, Any]:
    operations.validate(request, current_body_size())
    return operations.dry_run(current_caller(), request, InProcessTarget()).model_dump(mode="json")


@router.get(
    "/v1/batch/limits", summary="Batch limits and rate limits for this workspace", responses=responses(200, Limits)
)
def limits() -> dict[str, Any]:
    plan = current_caller().plan
    budgets = limits_of(plan)
    return Limits(
        maxOperations=MAX_OPERATIONS,
        timeoutMs=TIMEOUT_MS,
        allowedMethods=list(ALLOWED_METHODS),
        allowedPaths=InProcessTarget().allowed_paths(),
        maxBodyBytes=MAX_BATCH_BODY_BYTES,
        maxOperationBodyBytes=MAX_OPERATION_BODY_BYTES,
        plan=plan.value,
        rateLimits=RateLimits(
            requestsPerSecond=budgets.requests_per_second,
            requestBurst=budgets.request_burst,
            trackedEventsPerSecond=budgets.tracked_events_per_second,
        ),
    ).model_dump()


@router.post(
    "/v1/batch/async",
    status_code=202,
    summary="Submit a batch job for asynchronous processing",
    responses=responses(202, AsyncJobCreatedData, 413, 422),
)
def submit_async(request: Annotated[BatchRequest, Body()]) -> dict[str, Any]:
    created = operation_jobs.submit_async(current_caller(), request, current_body_size())
    logger().info("Async batch queued", extra={"job_id": created.jobId})
    return {"data": created.model_dump(mode="json")}


@router.get(
    "/v1/batch/async/{jobId}",
    summary="Status and results of an async batch job",
    responses=responses(200, AsyncJobData, 404),
)
def get_async(jobId: Annotated[str, Path(min_length=1, max_length=100, pattern=GENERATED_ID)]) -> dict[str, Any]:
    return {"data": operation_jobs.get_async(current_caller().workspace_id, jobId).model_dump(mode="json")}


@router.get(
    "/v1/batch/async",
    summary="Async batch jobs of this workspace, newest first",
    responses=responses(200, AsyncJobPage, 422),
)
def list_async(
    limit: Annotated[int, Query(ge=1, le=100, description="Results per page")] = 20,
    status: Annotated[JobStatus | None, Query(description="Only jobs with this status")] = None,
    cursor: Annotated[str | None, Query(description="nextCursor of the previous page")] = None,
) -> dict[str, Any]:
    jobs, next_cursor = operation_jobs.list_async(
        current_caller().workspace_id, limit=limit, status=status, cursor=cursor
    )
    return {
        "data": [j.model_dump(mode="json", exclude={"results"}) for j in jobs],
        "nextCursor": next_cursor,
    }
