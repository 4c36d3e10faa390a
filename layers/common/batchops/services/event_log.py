"""Event log (seed 000): store entries with per-item errors, page through a batch, summarise it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from batchops.dal.event_log import EventLogRepository
from batchops.errors import NotFoundError, StorageError, ValidationFailedError
from batchops.models.event_log import (
    MAX_ENTRY_BYTES,
    CreateEventBatchResponse,
    CreateEventResponse,
    EventBatchPage,
    EventBatchSummary,
    EventLogEntry,
    EventStatus,
    ItemError,
    StoredEvent,
    format_timestamp,
)
from batchops.models.validation import describe_all
from batchops.settings import get_settings

VALIDATION_PREFIX = "Validation failed: "
NOT_STORED = "Could not be stored after retries; send this event again"


def _repository() -> EventLogRepository:
    settings = get_settings()
    return EventLogRepository(settings.table_name, max_write_attempts=settings.batch_write_max_attempts)


def new_execution_id() -> str:
    return f"exec-{uuid.uuid4()}"


@dataclass(frozen=True)
class _Checked:
    index: int
    event: StoredEvent
    explicit_id: bool


def _validate(raw: Any) -> EventLogEntry | str:
    """The entry, or the per-item error message."""
    if not isinstance(raw, dict):
        return f"{VALIDATION_PREFIX}event must be an object"
    try:
        entry = EventLogEntry.model_validate(raw)
    except ValidationError as error:
        return VALIDATION_PREFIX + describe_all(error.errors(include_url=False))
    return _check_size(entry) or entry


def _check_size(entry: EventLogEntry) -> str | None:
    # DynamoDB counts UTF-8 bytes, so the bound is on bytes, not characters.
    if len(entry.model_dump_json(exclude_none=True).encode()) > MAX_ENTRY_BYTES:
        return f"{VALIDATION_PREFIX}event exceeds {MAX_ENTRY_BYTES} bytes"
    return None


def _to_stored(entry: EventLogEntry, batch_id: str | None, now: datetime) -> StoredEvent:
    return StoredEvent(
        correlationId=entry.correlationId,
        executionId=entry.executionId or new_execution_id(),
        eventStatus=entry.eventStatus,
        eventName=entry.eventName,
        timestamp=format_timestamp(entry.timestamp or now),
        message=entry.message,
        metadata=entry.metadata,
        batchId=batch_id,
    )


def create_batch(workspace_id: str, events: Sequence[Any], batch_id: str | None) -> CreateEventBatchResponse:
    """Validate each entry on its own, store the valid ones, report the rest by index."""
    now = datetime.now(UTC)
    errors: dict[int, str] = {}
    checked: list[_Checked] = []
    seen: set[str] = set()
    for index, raw in enumerate(events):
        entry = _validate(raw)
        if isinstance(entry, str):
            errors[index] = entry
            continue
        explicit = entry.executionId is not None
        result = _to_stored(entry, batch_id, now)
        if result.executionId in seen:
            errors[index] = f"Duplicate executionId {result.executionId} in this request"
            continue
        seen.add(result.executionId)
        checked.append(_Checked(index, result, explicit))

    repository = _repository()
    explicit_ids = [c.event.executionId for c in checked if c.explicit_id]
    existing = repository.existing_execution_ids(workspace_id, explicit_ids) if explicit_ids else set()
    to_store: list[_Checked] = []
    for item in checked:
        if item.event.executionId in existing:
            errors[item.index] = f"executionId {item.event.executionId} already exists"
        else:
            to_store.append(item)

    if not to_store:
        raise ValidationFailedError("No valid events in the batch", details=_details(errors))

    failed = set(repository.put_many(workspace_id, [c.event for c in to_store]))
    for position in failed:
        errors[to_store[position].index] = NOT_STORED
    stored = [c.event for n, c in enumerate(to_store) if n not in failed]
    if not stored:
        raise StorageError("No event could be stored; send the batch again", details=_details(errors))

    return CreateEventBatchResponse(
        totalReceived=len(events),
        totalInserted=len(stored),
        executionIds=[e.executionId for e in stored],
        correlationIds=[e.correlationId for e in stored],
        batchId=batch_id,
        errors=[ItemError(index=i, error=errors[i]) for i in sorted(errors)],
    )


def _details(errors: dict[int, str]) -> list[dict[str, Any]]:
    return [{"index": i, "error": errors[i]} for i in sorted(errors)]


def create_one(workspace_id: str, entry: EventLogEntry) -> CreateEventResponse:
    """One entry, written conditionally: a duplicate executionId is a 409, never a second entry."""
    too_large = _check_size(entry)
    if too_large:
        raise ValidationFailedError(too_large, details=[{"field": "body", "error": too_large}])
    result = _to_stored(entry, None, datetime.now(UTC))
    _repository().put_one(workspace_id, result)
    return CreateEventResponse(executionId=result.executionId, correlationId=result.correlationId)


def _batch(workspace_id: str, batch_id: str) -> list[StoredEvent]:
    events = _repository().batch_events(workspace_id, batch_id)
    if not events:
        raise NotFoundError(f"Batch {batch_id} not found", code="BATCH_NOT_FOUND")
    return events


def get_batch(
    workspace_id: str, batch_id: str, *, page: int, page_size: int, status: EventStatus | None
) -> EventBatchPage:
    events = _batch(workspace_id, batch_id)
    matching = [e for e in events if status is None or e.eventStatus == status]
    start = (page - 1) * page_size
    return EventBatchPage(
        batchId=batch_id,
        events=matching[start : start + page_size],
        totalCount=len(matching),
        uniqueCorrelationIds=len({e.correlationId for e in events}),
        successCount=sum(e.eventStatus == EventStatus.SUCCESS for e in events),
        failureCount=sum(e.eventStatus == EventStatus.FAILURE for e in events),
        page=page,
        pageSize=page_size,
        hasMore=start + page_size < len(matching),
    )


def summarize_batch(workspace_id: str, batch_id: str) -> EventBatchSummary:
    events = _batch(workspace_id, batch_id)
    # Events arrive oldest first, so the last one seen per process is its latest state.
    latest: dict[str, EventStatus] = {}
    for event in events:
        latest[event.correlationId] = event.eventStatus
    states = list(latest.values())
    return EventBatchSummary(
        batchId=batch_id,
        totalProcesses=len(latest),
        completed=states.count(EventStatus.SUCCESS),
        failed=states.count(EventStatus.FAILURE),
        inProgress=len(states) - states.count(EventStatus.SUCCESS) - states.count(EventStatus.FAILURE),
        correlationIds=list(latest),
        startedAt=events[0].timestamp,
        lastEventAt=events[-1].timestamp,
    )
