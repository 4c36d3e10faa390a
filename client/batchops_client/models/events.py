"""The event log (seed 000, `/v1/events`): what its calls answer, in snake_case attributes over
the platform's camelCase keys (`created.execution_ids`, or `created["executionIds"]`)."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import ConfigDict
from pydantic.alias_generators import to_camel

from batchops_client.models._base import Model


class CamelModel(Model):
    """A model whose wire keys are the camelCase of its attributes (`total_received` is sent as
    `totalReceived`), as the event-log and tracking surfaces name them."""

    model_config = ConfigDict(alias_generator=to_camel)


class EventLogEntry(CamelModel):
    """A stored entry as the API answers it: every field the platform keeps, null where nothing
    was sent."""

    event_log_id: Optional[int] = None
    execution_id: str
    correlation_id: str
    account_id: Optional[str] = None
    trace_id: str
    span_id: Optional[str] = None
    parent_span_id: Optional[str] = None
    span_links: Optional[list[str]] = None
    batch_id: Optional[str] = None
    application_id: Optional[str] = None
    target_system: Optional[str] = None
    originating_system: Optional[str] = None
    process_name: Optional[str] = None
    step_sequence: Optional[int] = None
    step_name: Optional[str] = None
    event_type: str
    event_status: str
    identifiers: Any = None
    summary: Optional[str] = None
    result: Optional[str] = None
    metadata: Any = None
    event_timestamp: str
    created_at: Optional[str] = None
    execution_time_ms: Optional[int] = None
    endpoint: Optional[str] = None
    http_status_code: Optional[int] = None
    http_method: Optional[str] = None
    error_code: Optional[str] = None
    error_message: Optional[str] = None
    request_payload: Optional[str] = None
    response_payload: Optional[str] = None
    idempotency_key: Optional[str] = None
    is_deleted: bool = False


class EventCreated(CamelModel):
    """`events.create`: the stored entry's id (or, for an idempotencyKey already stored, the id
    of the entry stored first)."""

    success: bool = True
    execution_ids: list[str]
    correlation_id: str

    @property
    def execution_id(self) -> str:
        return self.execution_ids[0]


class ItemError(CamelModel):
    """One refused entry of a batch, by its position in the request."""

    index: int
    error: str


class EventBatchCreated(CamelModel):
    """`events.create_batch`: counts, the stored entries' ids in request order, and the entries
    refused (`errors`, by index; empty when none was)."""

    success: bool = True
    total_received: int
    total_inserted: int
    execution_ids: list[str] = []
    correlation_ids: list[str] = []
    batch_id: Optional[str] = None
    errors: list[ItemError] = []


class EventBatchPage(CamelModel):
    """`events.get_batch`: one page of a batch's entries, newest first, with the batch's counts."""

    batch_id: str
    events: list[EventLogEntry] = []
    total_count: int = 0
    unique_correlation_ids: int = 0
    success_count: int = 0
    failure_count: int = 0
    page: int = 1
    page_size: int = 20
    has_more: bool = False


class EventBatchSummary(CamelModel):
    """`events.get_summary`: a batch's processes (by correlationId) and their outcome."""

    batch_id: str
    total_processes: int = 0
    completed: int = 0
    in_progress: int = 0
    failed: int = 0
    correlation_ids: list[str] = []
    started_at: Optional[str] = None
    last_event_at: Optional[str] = None
