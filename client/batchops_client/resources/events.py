"""`client.events`: the event log (seed 000, `/v1/events`), and the entry builder the platform's
Java SDK offers (`event_log_entry`, `new_correlation_id`, `new_trace_id`, `new_span_id`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Optional

from batchops_client._core import Page, Plan, pages
from batchops_client._resource import D, Resource, endpoint, paginated, path, without_none
from batchops_client.models.events import (
    EventBatchCreated,
    EventBatchPage,
    EventBatchSummary,
    EventCreated,
    EventLogEntry,
)

# The keys of an event-log entry in the order the platform's Java SDK sends them (snake_case here).
_ENTRY_FIELDS = (
    "correlation_id",
    "account_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "span_links",
    "batch_id",
    "application_id",
    "target_system",
    "originating_system",
    "process_name",
    "step_sequence",
    "step_name",
    "event_type",
    "event_status",
    "identifiers",
    "summary",
    "result",
    "metadata",
    "event_timestamp",
    "execution_time_ms",
    "endpoint",
    "http_method",
    "http_status_code",
    "error_code",
    "error_message",
    "request_payload",
    "response_payload",
    "idempotency_key",
)


def new_correlation_id() -> str:
    """32 lowercase hex characters (W3C Trace Context), as the event log requires."""
    return uuid.uuid4().hex


def new_trace_id() -> str:
    """32 lowercase hex characters (W3C Trace Context)."""
    return uuid.uuid4().hex


def new_span_id() -> str:
    """16 lowercase hex characters."""
    return uuid.uuid4().hex[:16]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def event_log_entry(
    *,
    correlation_id: str,
    trace_id: str,
    application_id: str,
    target_system: str,
    originating_system: str,
    process_name: str,
    event_type: str,
    event_status: str,
    summary: str,
    result: str,
    **optional: Any,
) -> dict[str, Any]:
    """An event-log entry as the platform's Java SDK builds it: camelCase keys in its order, unset
    fields left out, `identifiers` and `metadata` sent as `{}` when not given, and `spanId` and
    `eventTimestamp` (UTC, milliseconds) filled in when not given. `optional` takes the other fields
    in snake_case (`account_id`, `step_sequence`, `idempotency_key`, ...); TypeError names any other."""
    unknown = set(optional) - set(_ENTRY_FIELDS)
    if unknown:
        raise TypeError(f"not event-log entry fields: {', '.join(sorted(unknown))}")
    given: dict[str, Any] = {
        "correlation_id": correlation_id,
        "trace_id": trace_id,
        "application_id": application_id,
        "target_system": target_system,
        "originating_system": originating_system,
        "process_name": process_name,
        "event_type": event_type,
        "event_status": event_status,
        "summary": summary,
        "result": result,
        **optional,
    }
    given.setdefault("span_id", new_span_id())
    given.setdefault("identifiers", {})
    given.setdefault("metadata", {})
    if given.get("event_timestamp") is None:
        given["event_timestamp"] = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {_camel(name): given[name] for name in _ENTRY_FIELDS if given.get(name) is not None}


class Events(Resource[D]):
    @endpoint
    def create(self, entry: Mapping[str, Any], *, idempotency_key: Optional[str] = None) -> Plan[EventCreated]:
        """Store one entry (`POST /v1/events`; build it with `event_log_entry`). An entry whose
        `idempotencyKey` is already stored is not stored again: the answer names the first one."""
        answer = yield from self._request("POST", "/v1/events", json=dict(entry), idempotency_key=idempotency_key)
        return EventCreated.model_validate(answer)

    @endpoint
    def create_batch(
        self,
        events: Sequence[Mapping[str, Any]],
        *,
        batch_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> Plan[EventBatchCreated]:
        """Store 1 to 1000 entries (`POST /v1/events/batch`); each is checked on its own, so the
        refused ones come back in `errors` (by index) next to the stored ones' `execution_ids`.
        `batch_id` overrides every entry's own `batchId`."""
        body = without_none(events=[dict(event) for event in events], batchId=batch_id)
        answer = yield from self._request("POST", "/v1/events/batch", json=body, idempotency_key=idempotency_key)
        return EventBatchCreated.model_validate(answer)

    @endpoint
    def get_batch(
        self, batch_id: str, *, page: int = 1, page_size: int = 20, event_status: Optional[str] = None
    ) -> Plan[EventBatchPage]:
        """One page of a batch's entries, newest first, with its counts
        (`GET /v1/events/batch/{batch_id}`; `page_size` at most 100); `iterate_batch` walks them all."""
        params = {"page": page, "pageSize": page_size, "eventStatus": event_status}
        answer = yield from self._request("GET", path("/v1/events/batch/{}", batch_id), params=params)
        return EventBatchPage.model_validate(answer)

    @paginated
    def iterate_batch(
        self, batch_id: str, *, event_status: Optional[str] = None, page_size: int = 100
    ) -> Plan[Page[EventLogEntry]]:
        """Every entry of a batch (with `event_status`, only those), page after page, newest first."""
        return pages(
            lambda page: Events.get_batch.plan(
                self, batch_id, page=page, page_size=page_size, event_status=event_status
            ),
            lambda listed: listed.events,
            # An empty page ends the walk too, whatever hasMore says: a page number past the end
            # could otherwise be asked for for ever.
            lambda listed: listed.page + 1 if listed.has_more and listed.events else None,
            at=1,
        )

    @endpoint
    def get_summary(self, batch_id: str) -> Plan[EventBatchSummary]:
        """A batch's processes and their outcome (`GET /v1/events/batch/{batch_id}/summary`)."""
        answer = yield from self._request("GET", path("/v1/events/batch/{}/summary", batch_id))
        return EventBatchSummary.model_validate(answer)
