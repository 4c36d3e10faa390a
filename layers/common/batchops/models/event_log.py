"""Event log (seed 000): the platform's EventLogEntry (srinathv31/logging-architecture), batch
requests and the answers, in the platform's camelCase and field order."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from batchops.models.base import Model

MAX_EVENTS_PER_BATCH = 1000
MAX_PAGE_SIZE = 100
MAX_BATCH_ID_LENGTH = 200
DEFAULT_PAGE_SIZE = 20
# An entry is stored as one DynamoDB item (400 KB cap); leave room for keys and attribute names.
MAX_ENTRY_BYTES = 100 * 1024
MAX_JSON_DEPTH = 32
# The platform stores these in SQL Server `int` columns: a larger value could never be stored there.
MAX_SQL_INT = 2**31 - 1

HEX32_MESSAGE = "must be 32 lowercase hex characters (W3C Trace Context)"
HEX16_MESSAGE = "must be 16 lowercase hex characters"
NO_SLASH_MESSAGE = "must not contain '/' (the batch could never be read back at GET /v1/events/batch/{batchId})"

LONE_SURROGATE_MESSAGE = "must not contain a lone UTF-16 surrogate (\\ud800-\\udfff without its pair)"

_SURROGATE = re.compile("[\ud800-\udfff]")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
# zod 3.25's `z.string().datetime({ offset: true })`, which the platform validates with: a
# Gregorian date (leap years included), `T`, hours and minutes, optional seconds with any fraction,
# then `Z` or an offset `±hh:mm` / `±hhmm`. Nothing else: no lower-case `t`/`z`, no space, no
# offset-less local time.
_DATE = (
    r"(?P<date>(?:\d\d[2468][048]|\d\d[13579][26]|\d\d0[48]|[02468][048]00|[13579][26]00)-02-29"
    r"|\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)"
    r"|02-(?:0[1-9]|1\d|2[0-8])))"
)
_TIME = r"(?P<hour>[01]\d|2[0-3]):(?P<minute>[0-5]\d)(?::(?P<second>[0-5]\d)(?:\.(?P<fraction>\d+))?)?"
_ZONE = r"(?P<zone>Z|(?P<sign>[+-])(?P<oh>\d{2}):?(?P<om>\d{2}))"
_TIMESTAMP = re.compile(f"{_DATE}T{_TIME}{_ZONE}", re.ASCII)
TIMESTAMP_MESSAGE = "must be an ISO 8601 date-time with Z or an offset, e.g. 2026-03-01T10:00:00.000Z"


class EventType(StrEnum):
    PROCESS_START = "PROCESS_START"
    STEP = "STEP"
    PROCESS_END = "PROCESS_END"
    ERROR = "ERROR"


class EventStatus(StrEnum):
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    IN_PROGRESS = "IN_PROGRESS"
    SKIPPED = "SKIPPED"
    WARNING = "WARNING"


class HttpMethod(StrEnum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    DELETE = "DELETE"
    PATCH = "PATCH"
    HEAD = "HEAD"
    OPTIONS = "OPTIONS"


def js_length(value: str) -> int:
    """Length as JavaScript counts it (UTF-16 code units), which is how the platform bounds strings:
    a character outside the BMP, such as an emoji, counts twice (and a lone surrogate once)."""
    return len(value.encode("utf-16-le", "surrogatepass")) // 2


def has_lone_surrogate(value: str) -> bool:
    """Whether the text holds half of a UTF-16 surrogate pair on its own. JSON's `\\ud800` escape
    can name one and Python's parser keeps it, but it is not Unicode text: it has no UTF-8 form, so
    it could be neither answered (pydantic refuses to serialize it) nor stored (DynamoDB takes
    UTF-8 only). A pair sent as two escapes is joined into one character by the parser first."""
    return not value.isascii() and _SURROGATE.search(value) is not None


def _whole_characters(value: Any) -> Any:
    # Runs before pydantic's own str check, which refuses a surrogate only in length-bounded
    # fields, and then with a message that names no cause.
    if isinstance(value, str) and has_lone_surrogate(value):
        raise ValueError(LONE_SURROGATE_MESSAGE)
    return value


Unicode = BeforeValidator(_whole_characters)


def _at_most(limit: int) -> Any:
    def check(value: str) -> str:
        # pydantic counts code points; this catches what only the UTF-16 count puts over the limit.
        if js_length(value) > limit:
            raise ValueError(f"must be at most {limit} characters")
        return value

    return check


def _hex(pattern: re.Pattern[str], message: str) -> Any:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(message)
        return value

    return check


def _addressable(value: str) -> str:
    # API Gateway decodes %2F before it matches routes, so no URL can name a batch with a "/".
    if "/" in value:
        raise ValueError(NO_SLASH_MESSAGE)
    return value


def _whole_number(low: int, high: int) -> Any:
    def check(value: Any) -> int:
        # JSON has one number type: 2.0 is the integer 2 (as in JavaScript); true and "2" are not.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be an integer")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError("must be an integer")
            value = int(value)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return int(value)

    return check


def format_timestamp(value: datetime) -> str:
    """UTC with milliseconds, as the platform answers (`Date#toISOString()`); four-digit years keep
    it fixed-width, so lexical order is time order and it can sort keys."""
    utc = value.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}."
        f"{utc.microsecond // 1000:03d}Z"
    )


def parse_timestamp(value: str) -> datetime:
    """The instant a platform timestamp names, truncated to milliseconds as the platform stores it
    (`datetime2(3)`); ValueError when the platform would refuse it or could not store it."""
    match = _TIMESTAMP.fullmatch(value)
    if not match:
        raise ValueError(TIMESTAMP_MESSAGE)
    year, month, day = (int(part) for part in match["date"].split("-"))
    millis = int((match["fraction"] or "0")[:3].ljust(3, "0"))
    if match["zone"] == "Z":
        zone = UTC
    else:
        hours, minutes = int(match["oh"]), int(match["om"])
        if hours > 23 or minutes > 59:
            raise ValueError(TIMESTAMP_MESSAGE)
        offset = timedelta(hours=hours, minutes=minutes)
        zone = timezone(offset if match["sign"] == "+" else -offset)
    try:
        local = datetime(
            year,
            month,
            day,
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"] or 0),
            millis * 1000,
            tzinfo=zone,
        )
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        # Year 0000, or an offset that moves the instant out of 0001-9999: SQL Server's datetime2
        # (and Python) cannot hold it, so the platform could not have stored it either.
        raise ValueError("must be between 0001-01-01 and 9999-12-31 in UTC") from None


def _normalized_timestamp(value: str) -> str:
    return format_timestamp(parse_timestamp(value))


def _path_part(key: str) -> str:
    # Keys are the client's and may be long; the path only has to point at the place.
    return key if len(key) <= 64 else key[:61] + "..."


def json_problem(value: Any, name: str) -> str | None:
    """Why an open JSON value (`identifiers`, `metadata`) could not be stored and answered back, or
    None. One walk, without recursion, finds all three problems: nesting deeper than MAX_JSON_DEPTH;
    NaN or Infinity (Python's JSON parser takes them, but they are not JSON); and a lone surrogate in
    a key or a string, reported with the path to the first one. pydantic checks neither keys nor
    strings inside `dict[str, Any]`."""
    deepest = 0
    non_finite = False
    surrogate: str | None = None
    stack: list[tuple[Any, int, str]] = [(value, 1, name)]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            children: list[tuple[Any, int, str]] = []
            if isinstance(node, dict):
                for key, child in node.items():
                    if has_lone_surrogate(key):
                        surrogate = surrogate or f"in a key of {path}"
                    else:
                        children.append((child, depth + 1, f"{path}.{_path_part(key)}"))
            else:
                children = [(child, depth + 1, f"{path}.{n}") for n, child in enumerate(node)]
            # Reversed onto the stack, so the surrogate reported is the first in the document.
            stack.extend(reversed(children))
        elif isinstance(node, float) and not math.isfinite(node):
            non_finite = True
        elif isinstance(node, str) and surrogate is None and has_lone_surrogate(node):
            surrogate = f"at {path}"
    if deepest > MAX_JSON_DEPTH:
        return f"must not nest deeper than {MAX_JSON_DEPTH} levels"
    if non_finite:
        return "must not contain NaN or Infinity"
    if surrogate:
        return f"{LONE_SURROGATE_MESSAGE}, found {surrogate}"
    return None


def _text(low: int, high: int | None = None) -> Any:
    """A string field's bounds for the schema and a first check (pydantic counts code points);
    `_at_most` then applies the platform's UTF-16 count."""
    if high is None:
        return Field(min_length=low)
    return Field(min_length=low, max_length=high)


Hex32 = Annotated[
    str, Field(json_schema_extra={"pattern": "^[0-9a-f]{32}$"}), AfterValidator(_hex(_HEX32, HEX32_MESSAGE))
]
Hex16 = Annotated[
    str, Field(json_schema_extra={"pattern": "^[0-9a-f]{16}$"}), AfterValidator(_hex(_HEX16, HEX16_MESSAGE))
]
# Every free-form string refuses lone surrogates (`Unicode`); hex ids, enums and timestamps are
# refused by their own formats.
Text200 = Annotated[str, _text(1, 200), Unicode, AfterValidator(_at_most(200))]
Text510 = Annotated[str, _text(1, 510), Unicode, AfterValidator(_at_most(510))]
BatchIdText = Annotated[
    str,
    _text(0, MAX_BATCH_ID_LENGTH),
    Unicode,
    AfterValidator(_at_most(MAX_BATCH_ID_LENGTH)),
    AfterValidator(_addressable),
]
RequestBatchId = Annotated[
    str,
    _text(1, MAX_BATCH_ID_LENGTH),
    Unicode,
    AfterValidator(_at_most(MAX_BATCH_ID_LENGTH)),
    AfterValidator(_addressable),
]
Count = Annotated[int, BeforeValidator(_whole_number(0, MAX_SQL_INT)), Field(ge=0, le=MAX_SQL_INT)]
StatusCode = Annotated[int, BeforeValidator(_whole_number(100, 599)), Field(ge=100, le=599)]
Timestamp = Annotated[
    str,
    Field(json_schema_extra={"format": "date-time"}, description="ISO 8601 with Z or an offset; stored in UTC ms"),
    AfterValidator(_normalized_timestamp),
]

# Optional fields the platform declares `.optional()`: absent is fine, an explicit null is refused
# (only accountId is `.nullish()`).
NOT_NULLABLE = (
    "spanId",
    "parentSpanId",
    "spanLinks",
    "batchId",
    "stepSequence",
    "stepName",
    "metadata",
    "executionTimeMs",
    "endpoint",
    "httpMethod",
    "httpStatusCode",
    "errorCode",
    "errorMessage",
    "requestPayload",
    "responsePayload",
    "idempotencyKey",
)


def _absent_not_null_schema(schema: dict[str, Any]) -> None:
    """The document shows NOT_NULLABLE fields as the validator takes them: optional, never null
    (pydantic writes `X | None` as `anyOf: [X, null]`)."""
    for name in NOT_NULLABLE:
        field = schema.get("properties", {}).get(name)
        if not field or "anyOf" not in field:
            continue
        options = [option for option in field["anyOf"] if option.get("type") != "null"]
        del field["anyOf"]
        field.pop("default", None)
        if len(options) == 1:
            field.update(options[0])
        else:
            field["anyOf"] = options


class EventLogEntry(Model):
    """One entry, as the platform's `eventLogEntrySchema` defines it and its Java SDK sends it.
    Unknown fields are ignored, as the platform ignores them (a newer SDK may send more)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_absent_not_null_schema)

    correlationId: Hex32
    accountId: Annotated[str, _text(0, 64), Unicode, AfterValidator(_at_most(64))] | None = None
    traceId: Text200
    spanId: Hex16 | None = None
    parentSpanId: Hex16 | None = None
    spanLinks: list[Hex16] | None = None
    batchId: BatchIdText | None = Field(default=None, description="Overridden by the request's batchId")
    applicationId: Text200
    targetSystem: Text200
    originatingSystem: Text200
    processName: Text510
    stepSequence: Count | None = None
    stepName: Annotated[str, _text(0, 510), Unicode, AfterValidator(_at_most(510))] | None = None
    eventType: EventType
    eventStatus: EventStatus
    identifiers: dict[str, Any] = Field(description="Any JSON object ({} allowed)")
    summary: Annotated[str, _text(1), Unicode]
    result: Annotated[str, _text(1, 2048), Unicode, AfterValidator(_at_most(2048))]
    metadata: dict[str, Any] | None = None
    eventTimestamp: Timestamp
    executionTimeMs: Count | None = None
    endpoint: Annotated[str, _text(0, 510), Unicode, AfterValidator(_at_most(510))] | None = None
    httpMethod: HttpMethod | None = None
    httpStatusCode: StatusCode | None = None
    errorCode: Annotated[str, _text(0, 100), Unicode, AfterValidator(_at_most(100))] | None = None
    errorMessage: Annotated[str, _text(0, 2048), Unicode, AfterValidator(_at_most(2048))] | None = None
    requestPayload: Annotated[str, Unicode] | None = None
    responsePayload: Annotated[str, Unicode] | None = None
    idempotencyKey: Annotated[str, _text(1, 128), Unicode, AfterValidator(_at_most(128))] | None = Field(
        default=None, description="Unique per workspace: a repeat answers the first entry's executionId"
    )

    @field_validator(*NOT_NULLABLE, mode="before")
    @classmethod
    def _absent_not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null (leave it out instead)")
        return value

    @field_validator("identifiers", "metadata")
    @classmethod
    def _storable_json(cls, value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        problem = None if value is None else json_problem(value, str(info.field_name))
        if problem:
            raise ValueError(problem)
        return value


class EventLogRecord(Model):
    """A stored entry as the platform answers it: every key, in the platform's order (note
    httpStatusCode before httpMethod), null where nothing was sent."""

    eventLogId: int
    executionId: str
    correlationId: str
    accountId: str | None = None
    traceId: str
    spanId: str | None = None
    parentSpanId: str | None = None
    spanLinks: list[str] | None = None
    batchId: str | None = None
    applicationId: str
    targetSystem: str
    originatingSystem: str
    processName: str
    stepSequence: int | None = None
    stepName: str | None = None
    eventType: str
    eventStatus: str
    identifiers: Any = None
    summary: str
    result: str
    metadata: Any = None
    eventTimestamp: str
    createdAt: str
    executionTimeMs: int | None = None
    endpoint: str | None = None
    httpStatusCode: int | None = None
    httpMethod: str | None = None
    errorCode: str | None = None
    errorMessage: str | None = None
    requestPayload: str | None = None
    responsePayload: str | None = None
    idempotencyKey: str | None = None
    isDeleted: bool = False


@dataclass(frozen=True)
class EventDigest:
    """What counting and paging need of a stored entry; `ref` finds the whole entry again."""

    ref: str
    correlationId: str
    eventType: str
    eventStatus: str
    eventTimestamp: str


class CreateEventBatchRequest(Model):
    """Each item of `events` is validated on its own (see EventLogEntry), so one bad item
    becomes a per-item error instead of failing the request."""

    events: list[Any] = Field(
        min_length=1,
        max_length=MAX_EVENTS_PER_BATCH,
        description=f"EventLogEntry objects, 1 to {MAX_EVENTS_PER_BATCH}; each is validated on its own",
        # Typed as Any so one bad item is a per-item error, yet documented as entries.
        json_schema_extra={"items": {"$ref": "#/components/schemas/EventLogEntry"}},
    )
    batchId: RequestBatchId | None = Field(
        default=None, description="1-200 characters, no '/'; overrides every entry's batchId"
    )


class ItemError(Model):
    index: int
    error: str


class CreateEventBatchResponse(Model):
    success: bool = True
    totalReceived: int
    totalInserted: int = Field(description="Entries stored, and entries whose idempotencyKey was already stored")
    executionIds: list[str]
    correlationIds: list[str] = Field(description="Distinct, in order of first appearance")
    batchId: str | None = Field(default=None, description="Only present when the request had one")
    errors: list[ItemError] | None = Field(default=None, description="Only present when an item failed")


class CreateEventResponse(Model):
    success: bool = True
    executionIds: list[str]
    correlationId: str


class EventBatchPage(Model):
    batchId: str
    events: list[EventLogRecord]
    totalCount: int
    uniqueCorrelationIds: int
    successCount: int
    failureCount: int
    page: int
    pageSize: int
    hasMore: bool


class EventBatchSummary(Model):
    batchId: str
    totalProcesses: int
    completed: int
    inProgress: int
    failed: int
    correlationIds: list[str]
    startedAt: str | None
    lastEventAt: str | None
