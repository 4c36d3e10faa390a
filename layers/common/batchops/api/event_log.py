"""Event log surface (seed 000): /v1/events and /v1/events/batch."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.metrics import MetricUnit

from batchops.api.context import current_caller
from batchops.api.openapi import responses
from batchops.api.router import SurfaceRouter
from batchops.models.event_log import (
    MAX_PAGE_SIZE,
    CreateEventBatchRequest,
    CreateEventBatchResponse,
    CreateEventResponse,
    EventBatchPage,
    EventBatchSummary,
    EventLogEntry,
    EventStatus,
)
from batchops.observability import metrics
from batchops.services import event_log

router = SurfaceRouter("Event log")

BatchId = Annotated[str, Path(min_length=1, max_length=200, description="The batch's id")]


@router.post(
    "/v1/events",
    status_code=201,
    idempotent=True,
    summary="Create one event-log entry",
    responses=responses(201, CreateEventResponse, 409, 422),
)
def create_event(entry: Annotated[EventLogEntry, Body()]) -> dict[str, Any]:
    result = event_log.create_one(current_caller().workspace_id, entry)
    metrics().add_metric(name="EventsInserted", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")


@router.post(
    "/v1/events/batch",
    status_code=201,
    idempotent=True,
    summary="Batch create event-log entries with per-item errors",
    responses=responses(201, CreateEventBatchResponse, 422),
)
def create_event_batch(request: Annotated[CreateEventBatchRequest, Body()]) -> dict[str, Any]:
    result = event_log.create_batch(current_caller().workspace_id, request.events, request.batchId)
    metrics().add_metric(name="EventsInserted", unit=MetricUnit.Count, value=result.totalInserted)
    metrics().add_metric(name="EventsRejected", unit=MetricUnit.Count, value=len(result.errors))
    # batchId is left out, not null, when the request had none (the seed's contract).
    return result.model_dump(mode="json", exclude_none=True)


@router.get(
    "/v1/events/batch/{batchId}",
    summary="Events of a batch, oldest first, with status filter and pages",
    responses=responses(200, EventBatchPage, 404, 422),
)
def get_event_batch(
    batchId: BatchId,
    page: Annotated[int, Query(ge=1, description="Page number, from 1")] = 1,
    pageSize: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Results per page")] = 20,
    eventStatus: Annotated[EventStatus | None, Query(description="Only events with this status")] = None,
) -> dict[str, Any]:
    result = event_log.get_batch(
        current_caller().workspace_id, batchId, page=page, page_size=pageSize, status=eventStatus
    )
    return result.model_dump(mode="json")


@router.get(
    "/v1/events/batch/{batchId}/summary",
    summary="Aggregate statistics of a batch",
    responses=responses(200, EventBatchSummary, 404),
)
def get_event_batch_summary(batchId: BatchId) -> dict[str, Any]:
    return event_log.summarize_batch(current_caller().workspace_id, batchId).model_dump(mode="json")
