"""Event-log entries: one item per entry, listed per batch through gsi1, newest first.

An entry sent with an idempotencyKey is keyed by that key and written only if the key is new
(TransactWriteItems, since BatchWriteItem takes no conditions), so a workspace can never hold two
entries with one key, even under concurrent requests. Entries without a key get a fresh executionId
and go in BatchWriteItem calls. Either way, whatever AWS will not take after retries is handed back
by index, never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from batchops.dal import batch, clients, keys
from batchops.dal.items import deserialize, serialize
from batchops.dal.queries import is_condition_failure
from batchops.errors import StorageError
from batchops.models.event_log import EventDigest, EventLogRecord

# Open JSON values are kept as the client's JSON text: DynamoDB numbers cannot hold every JSON
# number (1e-308, 40-digit integers), and these values are opaque to batchops anyway.
_JSON_TEXT = ("identifiers", "metadata", "spanLinks")
# Constant on every entry we answer with (nothing is ever soft-deleted), so it is not stored.
_NOT_STORED = {"isDeleted"}
_DIGEST_FIELDS = ("correlationId", "eventType", "eventStatus", "eventTimestamp")


@dataclass
class WriteOutcome:
    """Indexes of the records AWS would not take, and of those whose idempotencyKey was already
    stored, with the executionId stored under it."""

    unwritten: list[int] = field(default_factory=list)
    existing: dict[int, str] = field(default_factory=dict)


def _entry_key(workspace_id: str, record: EventLogRecord) -> dict[str, str]:
    if record.idempotencyKey is not None:
        return keys.event_entry_by_idempotency_key(workspace_id, record.idempotencyKey)
    return keys.event_entry(workspace_id, record.executionId)


def _item(workspace_id: str, record: EventLogRecord) -> dict[str, Any]:
    item: dict[str, Any] = {
        **_entry_key(workspace_id, record),
        **record.model_dump(mode="json", exclude_none=True, exclude=_NOT_STORED | set(_JSON_TEXT)),
        "type": "event",
    }
    for name in _JSON_TEXT:
        value = getattr(record, name)
        if value is not None:
            item[name] = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    # An empty batchId cannot be a key attribute, and no URL could ask for that batch anyway.
    if record.batchId:
        item["gsi1pk"] = keys.event_batch(workspace_id, record.batchId)
        item["gsi1sk"] = keys.event_batch_sort(record.eventTimestamp, record.eventLogId)
    return item


def _record(item: dict[str, Any]) -> EventLogRecord:
    for name in _JSON_TEXT:
        if name in item:
            item[name] = json.loads(item[name])
    return EventLogRecord.model_validate({k: v for k, v in item.items() if k in EventLogRecord.model_fields})


class EventLogRepository:
    def __init__(self, table: str, *, max_write_attempts: int = 8):
        self.table = table
        self.max_write_attempts = max_write_attempts

    def allocate_ids(self, workspace_id: str, count: int) -> int:
        """The first of `count` consecutive eventLogIds, drawn from the workspace's counter in one
        atomic write (ids of entries that end up not stored are simply never used)."""
        try:
            answer = clients.dynamodb().update_item(
                TableName=self.table,
                Key=serialize(keys.event_log_sequence(workspace_id)),
                UpdateExpression="ADD #last :count",
                ExpressionAttributeNames={"#last": "last"},
                ExpressionAttributeValues={":count": {"N": str(count)}},
                ReturnValues="UPDATED_NEW",
            )
        except ClientError:
            raise StorageError("Could not number the events; send the request again") from None
        last = int(answer["Attributes"]["last"]["N"])
        return last - count + 1

    def put_many(self, workspace_id: str, records: Sequence[EventLogRecord]) -> WriteOutcome:
        """Store new entries. Keys must be distinct within `records` (a transaction may not touch
        one item twice)."""
        items = [_item(workspace_id, r) for r in records]
        keyed = [n for n, r in enumerate(records) if r.idempotencyKey is not None]
        plain = [n for n, r in enumerate(records) if r.idempotencyKey is None]
        outcome = WriteOutcome()
        if keyed:
            unwritten, found = batch.put_new_items(
                self.table, [items[n] for n in keyed], max_attempts=self.max_write_attempts
            )
            outcome.unwritten += [keyed[n] for n in unwritten]
            stored = self._execution_ids([items[keyed[n]]["pk"] for n in found])
            for n in found:
                index = keyed[n]
                if items[index]["pk"] in stored:
                    outcome.existing[index] = stored[items[index]["pk"]]
                else:
                    # Its key is taken but the entry could not be read: the client sends it again.
                    outcome.unwritten.append(index)
        if plain:
            unwritten = batch.put_items(self.table, [items[n] for n in plain], max_attempts=self.max_write_attempts)
            outcome.unwritten += [plain[n] for n in unwritten]
        outcome.unwritten.sort()
        return outcome

    def _execution_ids(self, partition_keys: Sequence[str]) -> dict[str, str]:
        if not partition_keys:
            return {}
        try:
            found = batch.get_items(
                self.table,
                [{"pk": pk, "sk": keys.EVENT_SK} for pk in partition_keys],
                projection="pk, executionId",
                max_attempts=self.max_write_attempts,
            )
        except StorageError:
            return {}
        return {i["pk"]["S"]: i["executionId"]["S"] for i in found}

    def put_one(self, workspace_id: str, record: EventLogRecord) -> str:
        """Store one entry; its executionId, or the one already stored under its idempotencyKey
        (read from the refused write itself, so no read is needed)."""
        try:
            clients.dynamodb().put_item(
                TableName=self.table,
                Item=serialize(_item(workspace_id, record)),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            existing: Any = error.response.get("Item")
            if is_condition_failure(error) and isinstance(existing, dict) and "executionId" in existing:
                return str(existing["executionId"]["S"])
            raise StorageError("Could not store the event; send it again") from None
        return record.executionId

    def batch_digests(self, workspace_id: str, batch_id: str) -> list[EventDigest]:
        """What counting and paging need of every entry of a batch, newest first (equal timestamps:
        the later stored first). Only these few attributes travel, however large the entries."""
        names = {f"#a{n}": name for n, name in enumerate(("pk", *_DIGEST_FIELDS))}
        return [
            EventDigest(ref=item["pk"], **{name: item[name] for name in _DIGEST_FIELDS})
            for item in self._query(
                IndexName="gsi1",
                KeyConditionExpression="gsi1pk = :pk",
                ExpressionAttributeValues={":pk": {"S": keys.event_batch(workspace_id, batch_id)}},
                ProjectionExpression=", ".join(names),
                ExpressionAttributeNames=names,
                ScanIndexForward=False,
            )
        ]

    def _query(self, **request: Any) -> Iterator[dict[str, Any]]:
        paginator = clients.dynamodb().get_paginator("query")
        for page in paginator.paginate(TableName=self.table, **request):
            for raw in page.get("Items", []):
                yield deserialize(raw)

    def records(self, refs: Sequence[str]) -> list[EventLogRecord]:
        """Whole entries, in the order of `refs` (refs from `batch_digests`)."""
        if not refs:
            return []
        found = batch.get_items(
            self.table, [{"pk": ref, "sk": keys.EVENT_SK} for ref in refs], max_attempts=self.max_write_attempts
        )
        by_ref = {item["pk"]: item for item in (deserialize(raw) for raw in found)}
        # Entries are never deleted, so every ref the index gave is found.
        return [_record(by_ref[ref]) for ref in refs if ref in by_ref]
