"""Event log (seed 000): store entries with per-item errors, page through a batch, summarise it, all
counted as the platform (srinathv31/logging-architecture) counts."""

from __future__ import annotations

import json
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
    EventDigest,
    EventLogEntry,
    EventLogRecord,
    EventStatus,
    EventType,
    ItemError,
    format_timestamp,
)
from batchops.models.validation import describe_all
from batchops.settings import get_settings

VALIDATION_PREFIX = "Validation failed: "
NOT_STORED = "Could not be stored after retries; send this event again"
# Lambda answers at most 6 MB (the proxy result, whose body is JSON inside JSON); keep a page well
# under it.
PAGE_BUDGET_BYTES = 5 * 1024 * 1024


def _repository() -> EventLogRepository:
    settings = get_settings()
    return EventLogRepository(settings.table_name, max_write_attempts=settings.batch_write_max_attempts)


def new_execution_id() -> str:
    """Lowercase hyphenated UUID, as the platform's `LOWER(CONVERT(VARCHAR(36), NEWID()))`."""
    return str(uuid.uuid4())


def validate_entry(raw: Any) -> EventLogEntry | str:
    """The entry, or its per-item error message."""
    if not isinstance(raw, dict):
        return f"{VALIDATION_PREFIX}event must be an object"
    try:
        entry = EventLogEntry.model_validate(raw)
    except ValidationError as error:
        return VALIDATION_PREFIX + describe_all(error.errors(include_url=False))
    return _size_problem(entry) or entry


def _size_problem(entry: EventLogEntry) -> str | None:
    # DynamoDB counts UTF-8 bytes, so the bound is on bytes, not characters.
    if len(entry.model_dump_json(exclude_unset=True).encode()) > MAX_ENTRY_BYTES:
        return f"{VALIDATION_PREFIX}event exceeds {MAX_ENTRY_BYTES} bytes"
    return None


def _record(entry: EventLogEntry, event_log_id: int, batch_id: str | None, created_at: str) -> EventLogRecord:
    return EventLogRecord.model_validate(
        {
            **entry.model_dump(mode="json"),
            "eventLogId": event_log_id,
            "executionId": new_execution_id(),
            "batchId": batch_id,
            "createdAt": created_at,
        }
    )


@dataclass(frozen=True)
class _Write:
    """An entry to store: the request index of its first occurrence and every index it answers."""

    entry: EventLogEntry
    indexes: list[int]


def _writes(valid: Sequence[tuple[int, EventLogEntry]]) -> list[_Write]:
    """One write per entry, except that entries repeating an idempotencyKey of this request are
    answered by the first one's write (the key then exists, so they get its executionId)."""
    writes: list[_Write] = []
    by_key: dict[str, _Write] = {}
    for index, entry in valid:
        key = entry.idempotencyKey
        if key is not None and key in by_key:
            by_key[key].indexes.append(index)
            continue
        write = _Write(entry, [index])
        writes.append(write)
        if key is not None:
            by_key[key] = write
    return writes


def create_batch(workspace_id: str, events: Sequence[Any], batch_id: str | None) -> CreateEventBatchResponse:
    """Validate each entry on its own, store the valid ones, report the rest by index."""
    errors: dict[int, str] = {}
    valid: list[tuple[int, EventLogEntry]] = []
    for index, raw in enumerate(events):
        entry = validate_entry(raw)
        if isinstance(entry, str):
            errors[index] = entry
        else:
            valid.append((index, entry))
    if not valid:
        raise ValidationFailedError("No valid events in the batch", details=_details(errors))

    writes = _writes(valid)
    repository = _repository()
    first_id = repository.allocate_ids(workspace_id, len(writes))
    created_at = format_timestamp(datetime.now(UTC))
    # The request's batchId overrides each entry's own, as on the platform.
    records = [_record(w.entry, first_id + n, batch_id or w.entry.batchId, created_at) for n, w in enumerate(writes)]
    outcome = repository.put_many(workspace_id, records)

    unwritten = set(outcome.unwritten)
    answered: dict[int, str] = {}
    for n, (write, record) in enumerate(zip(writes, records, strict=True)):
        for index in write.indexes:
            if n in unwritten:
                errors[index] = NOT_STORED
            else:
                answered[index] = outcome.existing.get(n, record.executionId)
    if not answered:
        raise StorageError("No event could be stored; send the batch again", details=_details(errors))

    entries = dict(valid)
    order = sorted(answered)
    return CreateEventBatchResponse(
        totalReceived=len(events),
        totalInserted=len(order),
        executionIds=[answered[i] for i in order],
        correlationIds=list(dict.fromkeys(entries[i].correlationId for i in order)),
        batchId=batch_id,
        errors=[ItemError(index=i, error=errors[i]) for i in sorted(errors)] or None,
    )


def _details(errors: dict[int, str]) -> list[dict[str, Any]]:
    return [{"index": i, "error": errors[i]} for i in sorted(errors)]


def create_one(workspace_id: str, entry: EventLogEntry) -> CreateEventResponse:
    """One entry; an idempotencyKey already stored answers the stored entry's executionId."""
    too_large = _size_problem(entry)
    if too_large:
        raise ValidationFailedError(too_large, details=[{"field": "body", "error": too_large}])
    repository = _repository()
    record = _record(
        entry, repository.allocate_ids(workspace_id, 1), entry.batchId, format_timestamp(datetime.now(UTC))
    )
    execution_id = repository.put_one(workspace_id, record)
    return CreateEventResponse(executionIds=[execution_id], correlationId=entry.correlationId)


def _digests(workspace_id: str, batch_id: str) -> list[EventDigest]:
    digests = _repository().batch_digests(workspace_id, batch_id)
    if not digests:
        raise NotFoundError(f"Batch {batch_id} not found", code="BATCH_NOT_FOUND")
    return digests


def _processes_with(digests: Sequence[EventDigest], status: EventStatus, event_type: EventType | None = None) -> int:
    """Distinct correlationIds with at least one event of this status (and type): the platform's
    `count(distinct case when ... then correlation_id end)`."""
    return len(
        {
            d.correlationId
            for d in digests
            if d.eventStatus == status and (event_type is None or d.eventType == event_type)
        }
    )


def get_batch(
    workspace_id: str, batch_id: str, *, page: int, page_size: int, status: EventStatus | None
) -> EventBatchPage:
    """One page of a batch, newest first. totalCount follows the eventStatus filter; the three
    process counts are over the whole batch, filter or not."""
    repository = _repository()
    digests = _digests(workspace_id, batch_id)
    matching = [d for d in digests if status is None or d.eventStatus == status]
    start = (page - 1) * page_size
    result = EventBatchPage(
        batchId=batch_id,
        events=repository.records([d.ref for d in matching[start : start + page_size]]),
        totalCount=len(matching),
        uniqueCorrelationIds=len({d.correlationId for d in digests}),
        successCount=_processes_with(digests, EventStatus.SUCCESS),
        failureCount=_processes_with(digests, EventStatus.FAILURE),
        page=page,
        pageSize=page_size,
        hasMore=start + page_size < len(matching),
    )
    _check_page_size(result)
    return result


def _check_page_size(page: EventBatchPage) -> None:
    """A page of large entries could pass what Lambda can answer: refuse it with the way out,
    rather than fail in the runtime (a 502 with no body of ours)."""
    sizes = [_answer_bytes(e.model_dump(mode="json")) for e in page.events]
    if sum(sizes) + 1024 <= PAGE_BUDGET_BYTES:
        return
    fitting, used = 0, 1024
    while fitting < len(sizes) and used + sizes[fitting] <= PAGE_BUDGET_BYTES:
        used += sizes[fitting]
        fitting += 1
    message = f"This page is too large for one response (its first {fitting} events fit); ask for a smaller pageSize"
    raise ValidationFailedError(message, code="PAGE_TOO_LARGE", details=[{"field": "pageSize", "error": message}])


def _answer_bytes(value: Any) -> int:
    # As sent: JSON with non-ASCII escaped, then escaped again as the proxy result's body string.
    return len(json.dumps(json.dumps(value, separators=(",", ":"))))


def summarize_batch(workspace_id: str, batch_id: str) -> EventBatchSummary:
    """The platform's summary: a process is a correlationId; `completed` has a PROCESS_END with
    SUCCESS, `failed` has any FAILURE event, and `inProgress` is what is left (at least 0)."""
    digests = _digests(workspace_id, batch_id)
    processes = sorted({d.correlationId for d in digests})
    completed = _processes_with(digests, EventStatus.SUCCESS, EventType.PROCESS_END)
    failed = _processes_with(digests, EventStatus.FAILURE)
    timestamps = [d.eventTimestamp for d in digests]
    return EventBatchSummary(
        batchId=batch_id,
        totalProcesses=len(processes),
        completed=completed,
        inProgress=max(0, len(processes) - completed - failed),
        failed=failed,
        correlationIds=processes,
        startedAt=min(timestamps),
        lastEventAt=max(timestamps),
    )
