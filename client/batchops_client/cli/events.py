"""`batchops events ...`: the event log (`/v1/events`)."""

from __future__ import annotations

from typing import IO, Optional

import click

from batchops_client.cli._base import BatchopsGroup
from batchops_client.cli._input import JSON_FILE, read_json, read_object
from batchops_client.cli.options import make_client
from batchops_client.cli.output import InputError, examples, finish, show_record, show_table

EVENT_STATUSES = ("SUCCESS", "FAILURE", "IN_PROGRESS", "SKIPPED", "WARNING")
ENTRY_COLUMNS = [
    ("EXECUTION ID", "executionId"),
    ("CORRELATION ID", "correlationId"),
    ("STEP", "stepName"),
    ("TYPE", "eventType"),
    ("STATUS", "eventStatus"),
    ("TIMESTAMP", "eventTimestamp"),
]


@click.group(
    cls=BatchopsGroup,
    epilog=examples(
        "batchops events create-batch events.json --batch-id onboarding-2026-12",
        "batchops events get-batch onboarding-2026-12 --status FAILURE --all",
        "batchops events summary onboarding-2026-12",
    ),
)
def events() -> None:
    """The event log: record entries one by one or in batches, read a batch, summarise it."""


@events.command(
    epilog="""\b
Example:
  batchops events create entry.json
entry.json: one EventLogEntry, e.g. {"correlationId": "...", "traceId": "...", "applicationId": "app",
  "targetSystem": "crm", "originatingSystem": "web", "processName": "signup", "eventType": "PROCESS",
  "eventStatus": "SUCCESS", "identifiers": {...}, "summary": "...", "result": "...",
  "eventTimestamp": "2026-12-07T10:00:00Z"}"""
)
@click.argument("file", type=JSON_FILE)
@click.option("--idempotency-key", help="Idempotency-Key header (the entry's idempotencyKey also works)")
def create(file: IO[str], idempotency_key: Optional[str]) -> None:
    """Record one event-log entry (POST /v1/events)."""
    entry = read_object(file)
    created = make_client(click.get_current_context()).events.create(entry, idempotency_key=idempotency_key)
    show_record(created, title="event recorded")


@events.command(
    "create-batch",
    epilog="""\b
Example:
  batchops events create-batch entries.json --batch-id import-2026-12-07
entries.json: [entry, ...] or {"events": [entry, ...], "batchId": "..."}""",
)
@click.argument("file", type=JSON_FILE)
@click.option("--batch-id", help="the batch every entry joins (overrides the file's batchId)")
@click.option("--idempotency-key", help="Idempotency-Key header (default: a new one)")
def create_batch(file: IO[str], batch_id: Optional[str], idempotency_key: Optional[str]) -> None:
    """Record many entries at once (POST /v1/events/batch); the refused ones are listed by index.
    Exits 1 when some were refused."""
    payload = read_json(file)
    if isinstance(payload, dict) and isinstance(payload.get("events"), list):
        entries, batch_id = payload["events"], batch_id or payload.get("batchId")
    elif isinstance(payload, list):
        entries = payload
    else:
        raise InputError(f"{file.name}: expected a JSON array of entries or an object with `events`")
    client = make_client(click.get_current_context())
    created = client.events.create_batch(entries, batch_id=batch_id, idempotency_key=idempotency_key)
    show_record(created, title=f"{created.total_inserted} of {created.total_received} entries recorded")
    finish(not created.errors, f"{len(created.errors)} entries refused")


@events.command(
    "get-batch",
    epilog="""\b
Example:
  batchops events get-batch import-2026-12-07 --status FAILURE
  batchops events get-batch import-2026-12-07 --all --json""",
)
@click.argument("batch_id")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--page-size", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--status", "event_status", type=click.Choice(EVENT_STATUSES), help="only entries with this eventStatus")
@click.option("--all", "all_pages", is_flag=True, help="every entry, page after page (--json: one array)")
def get_batch(batch_id: str, page: int, page_size: int, event_status: Optional[str], all_pages: bool) -> None:
    """A batch's entries, newest first (GET /v1/events/batch/{id})."""
    client = make_client(click.get_current_context())
    if all_pages:
        entries = list(client.events.iterate_batch(batch_id, event_status=event_status, page_size=100))
        show_table(entries, ENTRY_COLUMNS, title=f"event batch {batch_id}", caption=f"{len(entries)} entries")
        return
    listed = client.events.get_batch(batch_id, page=page, page_size=page_size, event_status=event_status)
    caption = (
        f"page {listed.page}: {listed.total_count} entries, {listed.success_count} succeeded, "
        f"{listed.failure_count} failed" + (f" (more: --page {listed.page + 1})" if listed.has_more else "")
    )
    show_table(listed.events, ENTRY_COLUMNS, title=f"event batch {batch_id}", caption=caption, raw=listed)


@events.command(
    epilog="""\b
Example:
  batchops events summary import-2026-12-07"""
)
@click.argument("batch_id")
def summary(batch_id: str) -> None:
    """How a batch's processes went: completed, in progress, failed (GET /v1/events/batch/{id}/summary)."""
    show_record(make_client(click.get_current_context()).events.get_summary(batch_id), title=f"event batch {batch_id}")
