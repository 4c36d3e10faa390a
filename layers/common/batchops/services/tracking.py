"""Tracking (seed 004): validating tracked events. Groundwork for issue 5: each event is checked
on its own, so valid events are accepted next to per-index errors; events keep the fields
they were sent with, plus `messageId` (generated when absent) and `receivedAt`."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from batchops.models.tracking import MAX_EVENT_BYTES, TrackedEvent
from batchops.models.validation import describe_all

_EVENT = TypeAdapter(TrackedEvent)


@dataclass
class Checked:
    """Accepted events (as JSON text, ready to pack) in request order, and per-index errors."""

    accepted: list[tuple[str, str]] = field(default_factory=list)  # (messageId, event JSON)
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def message_ids(self) -> list[str]:
        return [message_id for message_id, _ in self.accepted]


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
        checked.accepted.append((message_id, text))
    return checked
