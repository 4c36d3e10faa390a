"""Event log surface (seed 000): /v1/events and /v1/events/batch."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.metrics import MetricUnit

from batchops.api.context import current_caller
from batchops.api.openapi import responses
from batchops.api.router import SurfaceRouter
from batchops.errors import ValidationFailedError
from batchops.models.event_log import (
    DEFAULT_PAGE_SIZE,
    MAX_BATCH_ID_LENGTH,
    MAX_PAGE_SIZE,
    CreateEventBatchRequest,
    CreateEventBatchResponse,
    CreateEventResponse,
    EventBatchPage,
    EventBatchSummary,
    EventLogEntry,
    EventStatus,
    js_length,
)
from batchops.observability import metrics
from batchops.services import event_log

router = SurfaceRouter("Event log")

BatchId = Annotated[str, Path(min_length=1, description="The batch's id (1-200 characters), percent-encoded")]


def _batch_id(segment: str) -> str:
    """The batch id a path segment names. API Gateway (REST) hands the path on percent-encoded and
    the route captures the segment from it, so an id with a space, `%`, `#`, `?` or any non-ASCII
    character arrives encoded; decoding it once gives what the client sent. `+` is a space: the
    platform's Java SDK encodes the id with URLEncoder (form encoding, a literal `+` as `%2B`)."""
    batch_id = unquote_plus(segment)
    if js_length(batch_id) > MAX_BATCH_ID_LENGTH:
        message = f"batchId must be at most {MAX_BATCH_ID_LENGTH} characters"
        raise ValidationFailedError("Request validation failed", details=[{"field": "batchId", "error": message}])
    return batch_id


@router.post(
    "/v1/events",
    status_code=201,
    summary="Create one event-log entry",
    responses=responses(201, CreateEventResponse, 422, 503),
)
def create_event(entry: Annotated[EventLogEntry, Body()]) -> dict[str, Any]:
    """An entry whose idempotencyKey is already stored is not stored again: the answer carries the
    stored entry's executionId."""
    result = event_log.create_one(current_caller().workspace_id, entry)
    metrics().add_metric(name="EventsInserted", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")


@router.post(
    "/v1/events/batch",
    status_code=201,
    summary="Batch create event-log entries with per-item errors",
    responses=responses(201, CreateEventBatchResponse, 422, 503),
)
def create_event_batch(request: Annotated[CreateEventBatchRequest, Body()]) -> dict[str, Any]:
    result = event_log.create_batch(current_caller().workspace_id, request.events, request.batchId)
    metrics().add_metric(name="EventsInserted", unit=MetricUnit.Count, value=result.totalInserted)
    metrics().add_metric(name="EventsRejected", unit=MetricUnit.Count, value=len(result.errors or []))
    # batchId is left out, not null, when the request had none (the seed's contract); errors when
    # there are none (the platform's).
    return result.model_dump(mode="json", exclude_none=True)


@router.get(
    "/v1/events/batch/{batchId}",
    summary="Events of a batch, newest first, with status filter and pages",
    responses=responses(200, EventBatchPage, 404, 422, 503),
)
def get_event_batch(
    batchId: BatchId,
    page: Annotated[int, Query(ge=1, description="Page number, from 1")] = 1,
    pageSize: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Results per page")] = DEFAULT_PAGE_SIZE,
    eventStatus: Annotated[EventStatus | None, Query(description="Only events with this status")] = None,
) -> dict[str, Any]:
    result = event_log.get_batch(
        current_caller().workspace_id, _batch_id(batchId), page=page, page_size=pageSize, status=eventStatus
    )
    return result.model_dump(mode="json")


@router.get(
    "/v1/events/batch/{batchId}/summary",
    summary="Aggregate statistics of a batch",
    responses=responses(200, EventBatchSummary, 404, 422, 503),
)
def get_event_batch_summary(batchId: BatchId) -> dict[str, Any]:
    return event_log.summarize_batch(current_caller().workspace_id, _batch_id(batchId)).model_dump(mode="json")
