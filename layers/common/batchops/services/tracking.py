"""Tracking (seed 004): validating, packing, queueing and storing tracked events.

Each event is checked on its own, so valid events are accepted next to per-index errors; events
keep the fields they were sent with, plus `messageId` (generated when absent) and `receivedAt`.
Accepted events travel many to an SQS message (up to 1 MiB, SQS's limit) and a worker stores
them with BatchWriteItem, one item per messageId, so a messageId sent twice is stored once."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pydantic import TypeAdapter, ValidationError

from batchops.dal.messaging import send_messages
from batchops.dal.tracking import TrackedEventRepository
from batchops.errors import StorageError
from batchops.models.tracking import MAX_EVENT_BYTES, TrackedEvent
from batchops.models.validation import describe_all
from batchops.observability import logger
from batchops.settings import get_settings

# SQS takes 1 MiB per message and per SendMessageBatch call; leave room for the envelope.
MESSAGE_BYTES = 1024 * 1024 - 1024

_EVENT = TypeAdapter(TrackedEvent)


class Accepted(NamedTuple):
    position: int  # in the request
    message_id: str
    text: str  # the event as stored, JSON


@dataclass
class Checked:
    """Accepted events (as JSON text, ready to pack) in request order, and per-index errors."""

    accepted: list[Accepted] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def message_ids(self) -> list[str]:
        return [a.message_id for a in self.accepted]


def check_events(events: list[Any], received_at: str) -> Checked:
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
        message_id = event.get("messageId") or str(uuid.uuid4())
        text = json.dumps({**event, "messageId": message_id, "receivedAt": received_at}, separators=(",", ":"))
        size = len(text.encode())
        if size > MAX_EVENT_BYTES:
            checked.errors.append(
                {"index": index, "error": f"event is {size:,} bytes as stored; at most {MAX_EVENT_BYTES:,}"}
            )
            continue
        checked.accepted.append(Accepted(index, message_id, text))
    return checked


def _envelope(workspace_id: str, texts: list[str]) -> str:
    # Built from the events' JSON text: nothing is parsed or serialized twice.
    return '{"workspace_id":' + json.dumps(workspace_id) + ',"events":[' + ",".join(texts) + "]}"


def pack(workspace_id: str, accepted: list[Accepted]) -> list[tuple[str, list[int]]]:
    """Message bodies of up to MESSAGE_BYTES, each with the indexes (into `accepted`) it carries.
    A messageId repeated in the request is carried once, the first time (the first is stored)."""
    messages: list[tuple[str, list[int]]] = []
    texts: list[str] = []
    carried: list[int] = []
    size = len(_envelope(workspace_id, []))
    seen: set[str] = set()
    for index, (_, message_id, text) in enumerate(accepted):
        if message_id in seen:
            continue
        seen.add(message_id)
        extra = len(text.encode()) + 1
        if texts and size + extra > MESSAGE_BYTES:
            messages.append((_envelope(workspace_id, texts), carried))
            texts, carried, size = [], [], len(_envelope(workspace_id, []))
        texts.append(text)
        carried.append(index)
        size += extra
    if texts:
        messages.append((_envelope(workspace_id, texts), carried))
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


def store_message(body: str) -> None:
    """Worker side: store one message's events. Raises (so SQS delivers the message again) when
    DynamoDB kept refusing some; writing an event twice stores the same item."""
    message = json.loads(body)
    events = [(str(e["messageId"]), json.dumps(e, separators=(",", ":"))) for e in message["events"]]
    settings = get_settings()
    expires_at = int(time.time()) + settings.tracking_retention_seconds
    failed = TrackedEventRepository(settings.table_name).put(message["workspace_id"], events, expires_at=expires_at)
    if failed:
        raise StorageError(f"{len(failed)} of {len(events)} tracked events not stored yet; the message will be retried")
