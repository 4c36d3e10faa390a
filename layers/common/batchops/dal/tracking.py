"""Tracked events (seed 004) in the domain table: one item per workspace and messageId, holding
the event as JSON text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from batchops.dal import clients, keys
from batchops.dal.batch import put_items
from batchops.dal.items import deserialize, serialize


class TrackedEventRepository:
    def __init__(self, table: str):
        self.table = table

    def put(self, workspace_id: str, events: Sequence[tuple[str, str]], *, expires_at: int) -> list[int]:
        """BatchWriteItem (25 per call, retried); indexes still unwritten after the last try."""
        items = [
            {
                **keys.tracked_event(workspace_id, message_id),
                "type": "tracked_event",
                "event_json": text,
                "expires_at": expires_at,
            }
            for message_id, text in events
        ]
        return put_items(self.table, items)

    def get(self, workspace_id: str, message_id: str, *, now: int) -> dict[str, Any] | None:
        response = clients.dynamodb().get_item(
            TableName=self.table, Key=serialize(keys.tracked_event(workspace_id, message_id)), ConsistentRead=True
        )
        if "Item" not in response:
            return None
        item = deserialize(response["Item"])
        if int(item.get("expires_at", now + 1)) <= now:
            return None  # TTL deletes lazily: an expired event is gone as far as readers know
        event: dict[str, Any] = json.loads(item["event_json"])
        return event
