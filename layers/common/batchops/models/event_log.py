"""Event log (seed 000): entries, batch requests and responses, in the seed's camelCase."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_EVENTS_PER_BATCH = 1000
MAX_PAGE_SIZE = 100
# An entry is stored as one DynamoDB item (400 KB cap); leave room for keys and indexes.
MAX_ENTRY_BYTES = 100 * 1024

EVENT_ID_FIELD = Annotated[str, Field(min_length=1, max_length=200)]


class EventStatus(StrEnum):
    STARTED = "STARTED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"


def format_timestamp(value: datetime) -> str:
    """UTC with milliseconds, as the seed shows: lexical order is time order, so it can sort keys."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class EventLogEntry(BaseModel):
    """One entry as a client sends it. Unknown fields are refused so typos surface."""

    model_config = ConfigDict(extra="forbid")

    correlationId: EVENT_ID_FIELD
    executionId: EVENT_ID_FIELD | None = None
    eventStatus: EventStatus
    eventName: str | None = Field(default=None, max_length=200)
    timestamp: datetime | None = Field(default=None, description="ISO 8601; defaults to the time of receipt")
    message: str | None = Field(default=None, max_length=10_000)
    metadata: dict[str, Any] | None = None

    @field_validator("timestamp")
    @classmethod
    def _assume_utc(cls, value: datetime | None) -> datetime | None:
        # A timestamp without an offset is taken as UTC rather than the server's zone.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class StoredEvent(BaseModel):
    """An entry as stored and returned: every field present, ids and timestamp filled in."""

    correlationId: str
    executionId: str
    eventStatus: EventStatus
    eventName: str | None = None
    timestamp: str
    message: str | None = None
    metadata: dict[str, Any] | None = None
    batchId: str | None = None


class CreateEventBatchRequest(BaseModel):
    """Each item of `events` is validated on its own (see EventLogEntry), so one bad item
    becomes a per-item error instead of failing the request."""

    events: list[Any] = Field(
        min_length=1,
        max_length=MAX_EVENTS_PER_BATCH,
        description=f"EventLogEntry objects, 1 to {MAX_EVENTS_PER_BATCH}",
    )
    batchId: EVENT_ID_FIELD | None = None


class ItemError(BaseModel):
    index: int
    error: str


class CreateEventBatchResponse(BaseModel):
    success: bool = True
    totalReceived: int
    totalInserted: int
    executionIds: list[str]
    correlationIds: list[str]
    batchId: str | None = Field(default=None, description="Only present when the request had one")
    errors: list[ItemError]


class CreateEventResponse(BaseModel):
    success: bool = True
    executionId: str
    correlationId: str


class EventBatchPage(BaseModel):
    batchId: str
    events: list[StoredEvent]
    totalCount: int
    uniqueCorrelationIds: int
    successCount: int
    failureCount: int
    page: int
    pageSize: int
    hasMore: bool


class EventBatchSummary(BaseModel):
    batchId: str
    totalProcesses: int
    completed: int
    inProgress: int
    failed: int
    correlationIds: list[str]
    startedAt: str
    lastEventAt: str
