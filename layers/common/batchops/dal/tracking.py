"""Tracked events (seed 004) in the domain table: one item per workspace and messageId, holding
the event as JSON text; and the records of bodies uploaded through S3."""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from batchops.dal import clients, keys
from batchops.dal.batch import Sleep, _backoff, put_items
from batchops.dal.items import deserialize, serialize
from batchops.dal.queries import conditional_write, is_condition_failure

_NEW = "attribute_not_exists(pk) OR expires_at <= :now"
# Conditional PutItems in flight at once per call. Measured with `python -m bench.dispatch fanout`
# (real botocore, the HTTP send stubbed with a 5 ms round trip, 2,000 puts, one 2-core machine):
# 1 thread 162 puts/s, 4: 669, 8: 1,342, 16: 1,928, at ~0.5 ms of CPU per put. A 512 MB Lambda has
# ~0.29 vCPU, so its CPU caps it near 580 puts/s, which 4 threads reach; 8 leave room for slow round
# trips and stay under botocore's 10 pooled connections per client (more threads would queue there).
PUT_THREADS = 8


class PutOutcome(enum.Enum):
    STORED = "stored"
    EXISTING = "existing"  # the condition failed: a copy of this messageId is stored already
    UNWRITTEN = "unwritten"  # refused or throttled through every attempt: report it, retry the message


class TrackedEventRepository:
    def __init__(self, table: str):
        self.table = table

    def _items(self, workspace_id: str, events: Sequence[tuple[str, str]], expires_at: int) -> list[dict[str, Any]]:
        return [
            {
                **keys.tracked_event(workspace_id, message_id),
                "type": "tracked_event",
                "event_json": text,
                "expires_at": expires_at,
            }
            for message_id, text in events
        ]

    def put(self, workspace_id: str, events: Sequence[tuple[str, str]], *, expires_at: int) -> list[int]:
        """Blind writes (BatchWriteItem, 25 per call, retried), for ids batchops generated: no one
        else can have sent them. Returns the indexes still unwritten after the last try."""
        return put_items(self.table, self._items(workspace_id, events, expires_at))

    def insert_new(
        self,
        workspace_id: str,
        events: Sequence[tuple[str, str]],
        *,
        expires_at: int,
        now: int,
        max_attempts: int = 8,
        sleep: Sleep = time.sleep,
    ) -> tuple[list[int], list[int]]:
        """Store the events whose messageId is not stored yet (the first copy wins; an expired one
        that TTL has not deleted yet counts as gone). Returns (indexes unwritten after the last
        try, indexes already stored).

        One conditional PutItem per event (1 WRU per KB), not TransactWriteItems (2 WRU per KB per
        item): the events need no all-or-nothing, only the condition, and each put stands alone, so
        a throttled or refused event is retried or reported by itself. A messageId repeated in
        `events` is written once, at its first index; the later ones count as already stored."""
        typed_now = serialize({":now": now})
        first_index: dict[str, int] = {}
        outcomes: dict[int, PutOutcome] = {}
        for index, (message_id, _) in enumerate(events):
            if message_id in first_index:
                outcomes[index] = PutOutcome.EXISTING
            else:
                first_index[message_id] = index
        items = self._items(workspace_id, events, expires_at)

        def put(index: int) -> PutOutcome:
            return self._put_new(serialize(items[index]), typed_now, max_attempts, sleep)

        unique = list(first_index.values())
        if len(unique) == 1:
            outcomes[unique[0]] = put(unique[0])
        elif unique:
            # A pool per call, as dal.batch does: threads start at ~0.1 ms each against a message's
            # hundreds of puts, and nothing (threads, their context) outlives the call.
            pool = ThreadPoolExecutor(max_workers=min(PUT_THREADS, len(unique)), thread_name_prefix="tevt-put")
            try:
                futures = [(i, pool.submit(put, i)) for i in unique]
                for index, future in futures:
                    outcomes[index] = future.result()
            finally:
                # On a failure (or the function dying) the puts not started yet are dropped: the
                # message is delivered again and the redelivery writes them.
                pool.shutdown(wait=True, cancel_futures=True)
        unwritten = sorted(i for i, o in outcomes.items() if o is PutOutcome.UNWRITTEN)
        existing = sorted(i for i, o in outcomes.items() if o is PutOutcome.EXISTING)
        return unwritten, existing

    def _put_new(self, item: dict[str, Any], values: dict[str, Any], max_attempts: int, sleep: Sleep) -> PutOutcome:
        for attempt in range(max_attempts):
            if attempt:
                sleep(_backoff(attempt))
            try:
                clients.dynamodb().put_item(
                    TableName=self.table, Item=item, ConditionExpression=_NEW, ExpressionAttributeValues=values
                )
            except ClientError as error:
                if is_condition_failure(error):
                    return PutOutcome.EXISTING
                if error.response.get("Error", {}).get("Code") == "ValidationException":
                    return PutOutcome.UNWRITTEN  # refused as such (too large, say): another try is refused too
                continue  # throttled or transient after botocore's own retries: try again
            return PutOutcome.STORED
        return PutOutcome.UNWRITTEN

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

    def put_one(self, workspace_id: str, message_id: str, text: str, *, expires_at: int, now: int) -> bool:
        """One event with a conditional PutItem; False when its messageId is already stored."""
        (item,) = self._items(workspace_id, [(message_id, text)], expires_at)
        return conditional_write(
            "put_item",
            TableName=self.table,
            Item=serialize(item),
            ConditionExpression=_NEW,
            ExpressionAttributeValues=serialize({":now": now}),
        )


class TrackingUploadRepository:
    """pending -> processing (claimed for one object version, by its ETag) -> completed | failed;
    each step a conditional write, so a duplicate S3 notification or SQS delivery changes nothing."""

    def __init__(self, table: str):
        self.table = table

    def create(
        self, workspace_id: str, upload_id: str, *, created_at: str, expires_at: int, caller: dict[str, str]
    ) -> None:
        """`caller` (key id, plan) is kept for the worker, which charges the workspace's events budget."""
        item = {
            **keys.tracking_upload(workspace_id, upload_id),
            "type": "tracking_upload",
            "upload_id": upload_id,
            "status": "pending",
            "created_at": created_at,
            "expires_at": expires_at,
            **caller,
        }
        clients.dynamodb().put_item(
            TableName=self.table, Item=serialize(item), ConditionExpression="attribute_not_exists(pk)"
        )

    def get(self, workspace_id: str, upload_id: str) -> dict[str, Any] | None:
        response = clients.dynamodb().get_item(
            TableName=self.table, Key=serialize(keys.tracking_upload(workspace_id, upload_id)), ConsistentRead=True
        )
        return deserialize(response["Item"]) if "Item" in response else None

    def claim(self, workspace_id: str, upload_id: str, etag: str) -> bool:
        """Take the upload for the object version `etag`: a pending upload, or one this version
        already holds (a redelivery after a crash). False for anything else."""
        return self._update(
            workspace_id,
            upload_id,
            "SET #status = :processing, etag = :etag",
            "#status = :pending OR (#status = :processing AND etag = :etag)",
            {":processing": "processing", ":pending": "pending", ":etag": etag},
        )

    def count_failure(self, workspace_id: str, upload_id: str, etag: str) -> int | None:
        """One more failed ingestion of the object version `etag`; how many there have been, or
        None when the upload is no longer processing that version."""
        try:
            response = clients.dynamodb().update_item(
                TableName=self.table,
                Key=serialize(keys.tracking_upload(workspace_id, upload_id)),
                UpdateExpression="ADD failures :one",
                ConditionExpression="attribute_exists(pk) AND #status = :processing AND etag = :etag",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=serialize({":one": 1, ":processing": "processing", ":etag": etag}),
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as error:
            if is_condition_failure(error):
                return None
            raise
        return int(deserialize(response["Attributes"])["failures"])

    def finish(self, workspace_id: str, upload_id: str, etag: str, fields: dict[str, Any]) -> bool:
        """processing -> completed | failed (fields["status"]) with its counts or error."""
        names = sorted(fields)
        # Every name through a placeholder: several (status, error) are DynamoDB reserved words.
        assignments = ", ".join(f"#{n} = :{n}" for n in names)
        return self._update(
            workspace_id,
            upload_id,
            f"SET {assignments}",
            "#status = :processing AND etag = :etag",
            {":processing": "processing", ":etag": etag, **{f":{n}": fields[n] for n in names}},
            names={f"#{n}": n for n in names},
        )

    def _update(
        self,
        workspace_id: str,
        upload_id: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> bool:
        return conditional_write(
            "update_item",
            TableName=self.table,
            Key=serialize(keys.tracking_upload(workspace_id, upload_id)),
            UpdateExpression=update,
            ConditionExpression=f"attribute_exists(pk) AND ({condition})",
            ExpressionAttributeNames={"#status": "status", **(names or {})},
            ExpressionAttributeValues=serialize(values),
        )
