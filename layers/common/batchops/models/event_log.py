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
MAX_METADATA_DEPTH = 32
# Batch ids travel in URL paths: no "/", "?", "#", "%" or spaces, which could not be addressed back.
BATCH_ID_PATTERN = r"^[A-Za-z0-9._:~@+=,-]{1,200}$"

EVENT_ID_FIELD = Annotated[str, Field(min_length=1, max_length=200)]


class EventStatus(StrEnum):
    STARTED = "STARTED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"


def json_depth(value: Any) -> int:
    """Nesting depth of a JSON value, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


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
    timestamp: datetime | None = Field(
        default=None,
        description="ISO 8601, years 1000-9999, UTC when no offset is given; defaults to the time of receipt",
    )
    message: str | None = Field(default=None, max_length=10_000)
    metadata: dict[str, Any] | None = Field(
        default=None, description=f"Any JSON object, nested at most {MAX_METADATA_DEPTH} levels"
    )

    @field_validator("timestamp", mode="before")
    @classmethod
    def _iso_text_only(cls, value: Any) -> Any:
        # pydantic would also take epoch numbers; the contract is ISO 8601 text.
        if value is not None and not isinstance(value, str):
            raise ValueError("must be an ISO 8601 date-time string")
        return value

    @field_validator("timestamp")
    @classmethod
    def _to_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        # A timestamp without an offset is taken as UTC rather than the server's zone.
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        try:
            utc = aware.astimezone(UTC)
        except OverflowError:
            raise ValueError("must be an ISO 8601 date-time between years 1000 and 9999") from None
        # Four-digit years keep the stored form fixed-width, so it sorts as time.
        if not 1000 <= utc.year <= 9999:
            raise ValueError("must be an ISO 8601 date-time between years 1000 and 9999")
        return utc

    @field_validator("metadata")
    @classmethod
    def _shallow_enough(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and json_depth(value) > MAX_METADATA_DEPTH:
            raise ValueError(f"must not nest deeper than {MAX_METADATA_DEPTH} levels")
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
        description=f"EventLogEntry objects, 1 to {MAX_EVENTS_PER_BATCH}; each is validated on its own",
        # Typed as Any so one bad item is a per-item error, yet documented as entries.
        json_schema_extra={"items": {"$ref": "#/components/schemas/EventLogEntry"}},
    )
    batchId: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=BATCH_ID_PATTERN,
        description="1-200 characters: letters, digits and . _ : ~ @ + = , -",
    )


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
