"""Event-log entries: one item per entry, listed per batch through gsi1 in time order."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from batchops.dal import batch, clients, keys
from batchops.dal.items import deserialize, serialize
from batchops.dal.queries import is_condition_failure, query_gsi1
from batchops.errors import ConflictError
from batchops.models.event_log import StoredEvent

_ENTRY_FIELDS = set(StoredEvent.model_fields)


class EventLogRepository:
    def __init__(self, table: str, *, max_write_attempts: int = 8):
        self.table = table
        self.max_write_attempts = max_write_attempts

    def _item(self, workspace_id: str, event: StoredEvent, received_ns: int, position: int) -> dict[str, Any]:
        item: dict[str, Any] = {
            **keys.event_entry(workspace_id, event.executionId),
            **event.model_dump(mode="json", exclude_none=True, exclude={"metadata"}),
            "type": "event",
        }
        if event.metadata is not None:
            # Kept as the client's JSON text: DynamoDB numbers cannot hold every JSON number
            # (1e-308, 40-digit integers) and metadata is opaque to batchops anyway.
            item["metadata"] = json.dumps(event.metadata, separators=(",", ":"), ensure_ascii=False)
        if event.batchId is not None:
            item["gsi1pk"] = keys.event_batch(workspace_id, event.batchId)
            item["gsi1sk"] = keys.event_batch_sort(event.timestamp, received_ns, position)
        return item

    def existing_execution_ids(self, workspace_id: str, execution_ids: Sequence[str]) -> set[str]:
        found = batch.get_items(
            self.table,
            [keys.event_entry(workspace_id, e) for e in dict.fromkeys(execution_ids)],
            projection="executionId",
        )
        return {deserialize(i)["executionId"] for i in found}

    def put_many(self, workspace_id: str, events: Sequence[StoredEvent]) -> list[int]:
        """BatchWriteItem in chunks of 25; returns indexes that could not be written."""
        received = time.time_ns()
        items = [self._item(workspace_id, e, received, n) for n, e in enumerate(events)]
        return batch.put_items(self.table, items, max_attempts=self.max_write_attempts)

    def put_one(self, workspace_id: str, event: StoredEvent) -> None:
        """A single entry can afford a conditional write, which closes the duplicate race exactly."""
        try:
            clients.dynamodb().put_item(
                TableName=self.table,
                Item=serialize(self._item(workspace_id, event, time.time_ns(), 0)),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if is_condition_failure(error):
                raise ConflictError(
                    f"executionId {event.executionId} already exists", code="DUPLICATE_EXECUTION_ID"
                ) from None
            raise

    def batch_events(self, workspace_id: str, batch_id: str) -> list[StoredEvent]:
        """Every entry of a batch, oldest first."""
        events: list[StoredEvent] = []
        for item in query_gsi1(self.table, keys.event_batch(workspace_id, batch_id)):
            if "metadata" in item:
                item["metadata"] = json.loads(item["metadata"])
            events.append(StoredEvent.model_validate({k: v for k, v in item.items() if k in _ENTRY_FIELDS}))
        return events
