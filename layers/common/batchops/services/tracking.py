"""Tracking (seed 004): validating, packing, queueing and storing tracked events.

Each event is checked on its own, so valid events are accepted next to per-index errors; events
keep the fields they were sent with, plus `messageId` (generated when absent) and `receivedAt`.
Accepted events travel many to an SQS message (up to 1 MiB, SQS's limit) and a worker stores
them, one item per messageId: the first copy of a messageId is the one kept, whether the copies
came in one request, in several, or through a redelivered message."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import TypeAdapter, ValidationError

from batchops.dal.items import iso
from batchops.dal.messaging import send_messages
from batchops.dal.tracking import TrackedEventRepository
from batchops.encoding import parse_json, refuse_lone_surrogates
from batchops.errors import BadRequestError, NotFoundError, StorageError
from batchops.models.common import Caller
from batchops.models.tracking import MAX_EVENT_BYTES, BulkTrackResponse, TrackedEvent, TrackResponse
from batchops.models.validation import describe_all
from batchops.observability import logger
from batchops.services import rate_limits
from batchops.settings import get_settings

INVALID = "Invalid event format."

# SQS takes 1 MiB per message and per SendMessageBatch call; leave room for the envelope.
MESSAGE_BYTES = 1024 * 1024 - 1024

_EVENT = TypeAdapter(TrackedEvent)


class Accepted(NamedTuple):
    position: int  # in the request
    message_id: str
    text: str  # the event as stored, JSON
    generated: bool = False  # batchops made the id up: no other copy can exist


@dataclass
class Checked:
    """Accepted events (as JSON text, ready to pack) in request order, and per-index errors."""

    accepted: list[Accepted] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def message_ids(self) -> list[str]:
        return [a.message_id for a in self.accepted]


def random_id(position: int) -> str:
    return str(uuid.uuid4())


def check_events(events: list[Any], received_at: str, new_id: Callable[[int], str] = random_id) -> Checked:
    """`new_id(position)` names an event sent without a messageId (a random UUID; uploads derive
    it from the upload, so that ingesting the same object twice gives the same ids)."""
    checked = Checked()
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            checked.errors.append({"index": index, "error": "an event must be a JSON object"})
            continue
        try:
            _EVENT.validate_python(event)
        except ValidationError as error:
            checked.errors.append({"index": index, "error": describe_all(error.errors())})
            continue
        generated = not event.get("messageId")
        message_id = new_id(index) if generated else str(event["messageId"])
        text = json.dumps({**event, "messageId": message_id, "receivedAt": received_at}, separators=(",", ":"))
        size = len(text.encode())
        if size > MAX_EVENT_BYTES:
            checked.errors.append(
                {"index": index, "error": f"event is {size:,} bytes as stored; at most {MAX_EVENT_BYTES:,}"}
            )
            continue
        checked.accepted.append(Accepted(index, message_id, text, generated))
    return checked


def _envelope(workspace_id: str, sent: list[str], generated: list[str]) -> str:
    # Built from the events' JSON text: nothing is parsed or serialized twice. Events with ids
    # the client chose are stored only if new; ids batchops generated need no such check.
    return (
        '{"workspace_id":'
        + json.dumps(workspace_id)
        + ',"events":['
        + ",".join(sent)
        + '],"generated":['
        + ",".join(generated)
        + "]}"
    )


def pack(workspace_id: str, accepted: list[Accepted]) -> list[tuple[str, list[int]]]:
    """Message bodies of up to MESSAGE_BYTES, each with the indexes (into `accepted`) it carries.
    A messageId repeated in the request is carried once, the first time (the first is stored)."""
    messages: list[tuple[str, list[int]]] = []
    sent: list[str] = []
    generated: list[str] = []
    carried: list[int] = []
    empty = len(_envelope(workspace_id, [], []))
    size = empty
    seen: set[str] = set()
    for index, event in enumerate(accepted):
        if event.message_id in seen:
            continue
        seen.add(event.message_id)
        extra = len(event.text.encode()) + 1
        if carried and size + extra > MESSAGE_BYTES:
            messages.append((_envelope(workspace_id, sent, generated), carried))
            sent, generated, carried, size = [], [], [], empty
        (generated if event.generated else sent).append(event.text)
        carried.append(index)
        size += extra
    if carried:
        messages.append((_envelope(workspace_id, sent, generated), carried))
    return messages


def enqueue(workspace_id: str, checked: Checked) -> Checked:
    """Queue the accepted events. Events whose message SQS would not take after retries are moved
    to the errors (they were not accepted), so nothing reported as accepted is lost."""
    messages = pack(workspace_id, checked.accepted)
    unsent = send_messages(get_settings().tracking_queue_url, [body for body, _ in messages], per_call=1)
    if not unsent:
        return checked
    lost_ids = {checked.accepted[i].message_id for m in unsent for i in messages[m][1]}
    logger().error("Tracked events could not be queued", extra={"events": len(lost_ids)})
    kept = [a for a in checked.accepted if a.message_id not in lost_ids]
    failed = [
        {"index": a.position, "error": "could not be queued; send it again"}
        for a in checked.accepted
        if a.message_id in lost_ids
    ]
    errors = sorted([*checked.errors, *failed], key=lambda e: int(e["index"]))
    return Checked(accepted=kept, errors=errors)


def store_message(body: str) -> int:
    """Worker side: store one message's events; return how many were new. Raises (so SQS
    delivers the message again) when DynamoDB kept refusing some: a second delivery finds the
    events it stored the first time already there, so nothing is stored twice."""
    message = json.loads(body)
    workspace_id = str(message["workspace_id"])
    sent = [_stored(e) for e in message.get("events", [])]
    generated = [_stored(e) for e in message.get("generated", [])]
    settings = get_settings()
    now = int(time.time())
    expires_at = now + settings.tracking_retention_seconds
    repository = TrackedEventRepository(settings.table_name)
    unwritten, existing = (
        repository.insert_new(workspace_id, sent, expires_at=expires_at, now=now) if sent else ([], [])
    )
    unwritten += repository.put(workspace_id, generated, expires_at=expires_at) if generated else []
    if unwritten:
        total = len(sent) + len(generated)
        raise StorageError(f"{len(unwritten)} of {total} tracked events not stored yet; the message will be retried")
    return len(sent) + len(generated) - len(existing)


def _stored(event: dict[str, Any]) -> tuple[str, str]:
    return str(event["messageId"]), json.dumps(event, separators=(",", ":"))


# ---------------------------------------------------------------- the routes


def received_now() -> str:
    return iso(datetime.now(UTC))


def parse_body(body: str) -> Any:
    """A body that did not come through the resolver (an uploaded object): checked for lone
    surrogates here, then parsed like every request body."""
    refuse_lone_surrogates(body)
    return parse_json(body)


def _parse_request(body: str) -> Any:
    # The resolver's check_body has already refused lone surrogates in a request's body: the
    # routes only parse it (one scan per body, not two).
    return parse_json(body)


def invalid(details: list[dict[str, Any]]) -> BadRequestError:
    return BadRequestError(INVALID, code="INVALID_EVENT", details=details)


def events_of(document: Any) -> list[Any]:
    """The events of a bulk body: a JSON array of at least one."""
    if not isinstance(document, list):
        raise invalid([{"field": "body", "error": "must be a JSON array of events"}])
    if not document:
        raise invalid([{"field": "body", "error": "must hold at least one event"}])
    return document


def accept(
    caller: Caller,
    events: list[Any],
    received_at: str,
    new_id: Callable[[int], str] = random_id,
    *,
    all_or_retry: bool = False,
) -> Checked:
    """Validate, charge the events budget, queue: what bulk-track and uploads share. Raises
    INVALID_EVENT when no event is valid (nothing is stored), RateLimitedError over the budget,
    StorageError when nothing could be queued, or when anything could not be and `all_or_retry`
    (an upload is retried whole instead: its ids are stable, so a retry stores nothing twice)."""
    checked = check_events(events, received_at, new_id)
    if not checked.accepted:
        raise invalid(checked.errors)
    rate_limits.spend_events(caller.workspace_id, caller.plan, len(checked.accepted))
    queued = enqueue(caller.workspace_id, checked)
    if not queued.accepted or (all_or_retry and len(queued.accepted) < len(checked.accepted)):
        raise StorageError("The events could not be queued; send them again")
    return queued


def bulk_response(checked: Checked) -> BulkTrackResponse:
    errors = [{"index": int(e["index"]), "error": str(e["error"])} for e in checked.errors]
    return BulkTrackResponse.model_validate({"messageIds": checked.message_ids, "errors": errors or None})


def check_bulk(body: str) -> None:
    """What track_bulk refuses before it stores anything (a dry run's answer): malformed JSON, a
    body that is not an array of events, or no valid event."""
    checked = check_events(events_of(_parse_request(body)), received_now())
    if not checked.accepted:
        raise invalid(checked.errors)


def check_one(body: str) -> None:
    """What track_one refuses before it stores anything."""
    _one(body)


def _one(body: str) -> Accepted:
    checked = check_events([_parse_request(body)], received_now())
    if not checked.accepted:
        raise invalid([{"field": "body", "error": e["error"]} for e in checked.errors])
    return checked.accepted[0]


def track_bulk(caller: Caller, body: str) -> BulkTrackResponse:
    return bulk_response(accept(caller, events_of(_parse_request(body)), received_now()))


def track_one(caller: Caller, body: str) -> TrackResponse:
    """One event, stored at once with a conditional PutItem (cheaper than a queue message and a
    worker for a single event). A messageId already stored answers as accepted: the first copy
    stays."""
    event = _one(body)
    rate_limits.spend_events(caller.workspace_id, caller.plan, 1)
    settings = get_settings()
    now = int(time.time())
    TrackedEventRepository(settings.table_name).put_one(
        caller.workspace_id,
        event.message_id,
        event.text,
        expires_at=now + settings.tracking_retention_seconds,
        now=now,
    )
    return TrackResponse(messageId=event.message_id)


def get_event(workspace_id: str, message_id: str) -> dict[str, Any]:
    found = TrackedEventRepository(get_settings().table_name).get(workspace_id, message_id, now=int(time.time()))
    if found is None:
        raise NotFoundError(f"No tracked event {message_id}")
    return found
