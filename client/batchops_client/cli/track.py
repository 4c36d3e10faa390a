"""`batchops track FILE`: tracking events in bulk (`/v1/bulk-track`) from a JSON array or an
NDJSON file, an NDJSON file streamed in bounded chunks."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import IO, Any, Optional

import click

from batchops_client._client import BatchopsClient
from batchops_client.cli._base import BatchopsCommand
from batchops_client.cli.options import make_client, state
from batchops_client.cli.output import InputError, finish, is_json, print_json, show_record, show_table
from batchops_client.cli.progress import LiveProgress
from batchops_client.errors import ValidationError

# A chunk is sent once it holds this many events or this many bytes of JSON, and the CLI never
# holds more than one chunk. 4 MiB stays under the SDK's 5 MiB bound for a direct request (Lambda
# takes 6 MB), so a chunk is one gzipped POST, not an S3 upload and its polling.
CHUNK_EVENTS = 10_000
CHUNK_BYTES = 4 * 1024 * 1024
SHOWN_ERRORS = 20


def _events_of(source: IO[str]) -> Iterator[tuple[int, Any, int]]:
    """(line number, event, bytes read so far) for each event of a JSON array or NDJSON stream:
    an array (a first character `[`) is read whole, NDJSON a line at a time."""
    read = 0
    lines = iter(source)
    for number, line in enumerate(lines, 1):
        read += len(line.encode())
        if not line.strip():
            continue
        if line.lstrip().startswith("["):
            rest = line + "".join(lines)
            try:
                array = json.loads(rest)
            except json.JSONDecodeError as error:
                raise InputError(f"{source.name}: not a JSON array: {error}") from error
            if not isinstance(array, list):
                raise InputError(f"{source.name}: expected a JSON array of events")
            total = read + len(rest.encode()) - len(line.encode())
            for event in array:
                yield number, event, total
            return
        try:
            yield number, json.loads(line), read
        except json.JSONDecodeError as error:
            raise InputError(f"{source.name}, line {number}: not JSON: {error}") from error


def _chunks(source: IO[str], max_events: int, max_bytes: int) -> Iterator[tuple[list[Any], int]]:
    """(events, bytes read so far), chunk by chunk, each of at most `max_events` events and
    about `max_bytes` bytes."""
    chunk: list[Any] = []
    size, read = 0, 0
    for _, event, read in _events_of(source):
        chunk.append(event)
        size += len(json.dumps(event, separators=(",", ":")))
        if len(chunk) >= max_events or size >= max_bytes:
            yield chunk, read
            chunk, size = [], 0
    if chunk:
        yield chunk, read


def _file_size(source: IO[str]) -> Optional[int]:
    try:
        return os.fstat(source.fileno()).st_size or None
    except (OSError, ValueError, AttributeError):  # stdin from a pipe, a test's StringIO
        return None


def _send(client: BatchopsClient, chunk: list[Any], start: int) -> tuple[list[str], list[dict[str, Any]]]:
    """One chunk's messageIds and errors (indexes into the whole file's events)."""
    try:
        result = client.track.bulk(chunk)
    except ValidationError as refused:
        # No valid event in this chunk: its events are errors of the whole, and the rest goes on.
        details = refused.details if isinstance(refused.details, list) else None
        if refused.code != "INVALID_EVENT" or details is None:
            raise
        return [], [{"index": start + int(item.get("index", 0)), "error": str(item.get("error"))} for item in details]
    errors = [{"index": start + error.index, "error": error.error} for error in result.errors]
    return list(result.message_ids), errors


@click.command(
    cls=BatchopsCommand,
    epilog="""\b
Example:
  batchops track events.ndjson            # one event a line, streamed in chunks
  batchops track events.json              # a JSON array
  zcat events.ndjson.gz | batchops track - --chunk-events 5000
an event: {"event": "signup", "properties": {...}, "timestamp": "2026-12-07T10:00:00Z", "messageId"?: "..."}""",
)
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option(
    "--chunk-events",
    type=click.IntRange(min=1),
    default=CHUNK_EVENTS,
    show_default=True,
    help="events per chunk at most",
)
@click.option(
    "--chunk-bytes",
    type=click.IntRange(min=1024),
    default=CHUNK_BYTES,
    show_default=True,
    help="bytes of JSON per chunk, about",
)
def track(file: IO[str], chunk_events: int, chunk_bytes: int) -> None:
    """Track events in bulk (POST /v1/bulk-track) from a JSON array or NDJSON (- for stdin).
    NDJSON is read and sent a chunk at a time, never whole; progress on stderr. Exits 1 when some
    events were rejected (listed by their index in the file)."""
    ctx = click.get_current_context()
    client = make_client(ctx)
    size = _file_size(file)
    message_ids: list[str] = []
    errors: list[dict[str, Any]] = []
    sent = 0
    with LiveProgress(state(ctx).stderr, "events") as bar:
        bar.update(done=0, total=None, status="sending")
        try:
            for chunk, read in _chunks(file, chunk_events, chunk_bytes):
                accepted, refused = _send(client, chunk, sent)
                sent += len(chunk)
                message_ids += accepted
                errors += refused
                # The total, estimated from the bytes read so far: the ETA follows as the file is read.
                total = max(sent, round(sent * size / read)) if size and read else None
                bar.update(done=sent, total=total if read < (size or 0) else sent, failed=len(errors), status="sent")
        except InputError as bad:
            if not sent:
                raise
            raise InputError(
                f"{bad.format_message()} ({sent} events before it were sent: {len(message_ids)} accepted)"
            ) from bad
    if is_json():
        print_json({"status": "ok", "messageIds": message_ids, **({"errors": errors} if errors else {})})
    else:
        show_record(
            {"events": sent, "accepted": len(message_ids), "rejected": len(errors)}, title=f"tracked {file.name}"
        )
        if errors:
            more = len(errors) - SHOWN_ERRORS
            show_table(
                errors[:SHOWN_ERRORS],
                [("INDEX", "index"), ("ERROR", "error")],
                title="rejected",
                caption=f"and {more} more (--json lists all)" if more > 0 else None,
            )
    finish(not errors, f"{len(errors)} of {sent} events rejected")
