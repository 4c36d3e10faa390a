"""Batches (seed 002) in the domain table: the batch item with its counters, one item per job and
one per job result in the batch's partition, the workspace's quota counters and job statistics.

Every job status change is one transaction: the job's conditional update (on the status and
attempt count it was decided on) and the batch's counters together, so a duplicate delivery can
neither run a job twice nor count it twice. The max_parallel window is the batch's `in_flight`
counter (jobs queued on SQS or running) and `next_release` (the index of the next pending job):
a release moves both, conditionally, in the same transaction as the job it releases.

The events a change causes (batch.started, batch.job_completed, progress, the end) are written as
outbox items in the same transaction as the change, so no failure after the commit can lose them:
whoever made the change, or else the sweeper, hands them to the webhooks and deletes them. A
finished batch stays in the sweeper's index until its outbox is empty and its jobs have ended.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from batchops.dal import clients, keys
from batchops.dal.batch import put_items
from batchops.dal.items import deserialize, serialize
from batchops.dal.queries import conditional_write, query_gsi1, transact
from batchops.errors import StorageError
from batchops.models.batches import BatchStatus, JobStatus

JOB_STATUSES = tuple(JobStatus)
UNFINISHED_BATCH = (str(BatchStatus.QUEUED), str(BatchStatus.RUNNING))


def counter(status: JobStatus | str) -> str:
    return f"jc_{status}"


def _shard(batch_id: str) -> int:
    return zlib.crc32(batch_id.encode()) % keys.ACTIVE_BATCH_SHARDS


@dataclass(frozen=True)
class OutboxEvent:
    """A batch event to hand to the webhooks once the change that causes it is committed.
    `data` None: computed when it is sent (the end's counts, after every job has ended)."""

    key: str  # the occurrence, unique in the batch: "started", "job:3", "progress_50", "finished"
    event: str  # "batch.started", ...
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class JobChange:
    """A job moving from one status to another, valid only while it still has `from_status` and
    `from_attempts`. `batch_adds` are numbers added to the batch item in the same transaction."""

    from_status: JobStatus
    from_attempts: int
    to: JobStatus
    attempts: int
    fields: dict[str, Any] = field(default_factory=dict)
    batch_adds: dict[str, int] = field(default_factory=dict)
    result: dict[str, Any] | None = None  # the job's result item (raw output), written with the change
    require_unfinished_batch: bool = False  # a claim: never start a job of a cancelled or timed-out batch
    outbox: tuple[OutboxEvent, ...] = ()  # the events the change causes, written with it


class QuotaRefusedError(Exception):
    """A quota counter is at its limit: `which` is "concurrent" or "daily"."""

    def __init__(self, which: str):
        super().__init__(which)
        self.which = which


class BatchRepository:
    def __init__(self, table: str):
        self.table = table

    # ------------------------------------------------------------------ quotas
    def reserve_quota(
        self, workspace_id: str, day: str, *, concurrent: int, daily: int | None, day_expires_at: int
    ) -> None:
        """Count one more unfinished batch and one more batch today, both or neither; raises
        QuotaRefusedError naming the counter at its limit."""
        actions: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": serialize(keys.batch_quota(workspace_id)),
                    "UpdateExpression": "SET active = if_not_exists(active, :zero) + :one",
                    "ConditionExpression": "attribute_not_exists(active) OR active < :max",
                    "ExpressionAttributeValues": serialize({":zero": 0, ":one": 1, ":max": concurrent}),
                }
            }
        ]
        if daily is not None:
            actions.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": serialize(keys.batch_day(workspace_id, day)),
                        "UpdateExpression": "SET created = if_not_exists(created, :zero) + :one, expires_at = :ttl",
                        "ConditionExpression": "attribute_not_exists(created) OR created < :max",
                        "ExpressionAttributeValues": serialize(
                            {":zero": 0, ":one": 1, ":max": daily, ":ttl": day_expires_at}
                        ),
                    }
                }
            )
        reasons = transact(actions)
        if reasons is not None:
            raise QuotaRefusedError("concurrent" if reasons[0] == "ConditionalCheckFailed" else "daily")

    def release_quota(self, workspace_id: str, day: str | None) -> None:
        """Undo a reservation (the batch was not created); `day` None keeps today's count."""
        targets = [(keys.batch_quota(workspace_id), "active")]
        if day is not None:
            targets.append((keys.batch_day(workspace_id, day), "created"))
        for key, name in targets:
            conditional_write(
                "update_item",
                TableName=self.table,
                Key=serialize(key),
                UpdateExpression="SET #n = #n - :one",
                ConditionExpression="#n > :zero",
                ExpressionAttributeNames={"#n": name},
                ExpressionAttributeValues=serialize({":one": 1, ":zero": 0}),
            )

    def _quota_release_action(self, workspace_id: str) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": serialize(keys.batch_quota(workspace_id)),
                "UpdateExpression": "SET active = if_not_exists(active, :one) - :one",
                "ExpressionAttributeValues": serialize({":one": 1}),
            }
        }

    # ------------------------------------------------------------------ creating
    def batch_item(self, workspace_id: str, batch: dict[str, Any], *, check_at: str) -> dict[str, Any]:
        return {
            **keys.batch(workspace_id, batch["batch_id"]),
            **batch,
            "type": "batch",
            "gsi1pk": keys.batches_of_workspace(workspace_id),
            "gsi1sk": f"{batch['created_at']}#{batch['batch_id']}",
            "gsi2pk": keys.active_batches(_shard(batch["batch_id"])),
            "gsi2sk": keys.active_batch_sort(check_at, workspace_id, batch["batch_id"]),
        }

    def job_item(self, workspace_id: str, batch_id: str, job: dict[str, Any]) -> dict[str, Any]:
        return {**keys.batch_job(workspace_id, batch_id, int(job["index"])), **job, "type": "batch_job"}

    def outbox_item(self, workspace_id: str, batch_id: str, event: OutboxEvent) -> dict[str, Any]:
        return {
            **keys.batch_outbox(workspace_id, batch_id, event.key),
            "type": "batch_outbox",
            "event": event.event,
            "data_json": None if event.data is None else json.dumps(event.data, separators=(",", ":")),
        }

    def _outbox_puts(self, workspace_id: str, batch_id: str, events: Sequence[OutboxEvent]) -> list[dict[str, Any]]:
        return [
            {"Put": {"TableName": self.table, "Item": serialize(self.outbox_item(workspace_id, batch_id, event))}}
            for event in events
        ]

    def outbox(self, workspace_id: str, batch_id: str) -> list[OutboxEvent]:
        """The batch's events not yet handed to the webhooks, in key order."""
        return [
            OutboxEvent(
                key=item["sk"].removeprefix(keys.BATCH_OUTBOX_SK_PREFIX),
                event=item["event"],
                data=json.loads(item["data_json"]) if item.get("data_json") else None,
            )
            for item in self.partition(workspace_id, batch_id, sk_prefix=keys.BATCH_OUTBOX_SK_PREFIX)
        ]

    def delete_outbox(self, workspace_id: str, batch_id: str, key: str) -> None:
        clients.dynamodb().delete_item(
            TableName=self.table, Key=serialize(keys.batch_outbox(workspace_id, batch_id, key))
        )

    def put_all(self, items: Sequence[dict[str, Any]]) -> list[int]:
        """BatchWriteItem, retried; the indexes of items still unwritten."""
        return put_items(self.table, items)

    def delete_batch(self, workspace_id: str, batch_id: str) -> None:
        """Remove a batch whose creation failed before anything was queued."""
        for item in self.partition(workspace_id, batch_id):
            clients.dynamodb().delete_item(TableName=self.table, Key=serialize({"pk": item["pk"], "sk": item["sk"]}))

    # ------------------------------------------------------------------ reading
    def get(self, workspace_id: str, batch_id: str) -> dict[str, Any] | None:
        response = clients.dynamodb().get_item(
            TableName=self.table, Key=serialize(keys.batch(workspace_id, batch_id)), ConsistentRead=True
        )
        item = response.get("Item")
        return deserialize(item) if item else None

    def get_job(self, workspace_id: str, batch_id: str, index: int) -> dict[str, Any] | None:
        response = clients.dynamodb().get_item(
            TableName=self.table, Key=serialize(keys.batch_job(workspace_id, batch_id, index)), ConsistentRead=True
        )
        item = response.get("Item")
        return deserialize(item) if item else None

    def partition(self, workspace_id: str, batch_id: str, *, sk_prefix: str | None = None) -> Iterator[dict[str, Any]]:
        """The batch's items (the batch, its jobs and their results) in key order."""
        condition = "pk = :pk"
        values: dict[str, Any] = {":pk": keys.batch(workspace_id, batch_id)["pk"]}
        if sk_prefix is not None:
            condition += " AND begins_with(sk, :prefix)"
            values[":prefix"] = sk_prefix
        paginator = clients.dynamodb().get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=serialize(values),
            ConsistentRead=True,
        ):
            for raw in page.get("Items", []):
                yield deserialize(raw)

    def jobs(self, workspace_id: str, batch_id: str) -> list[dict[str, Any]]:
        return list(self.partition(workspace_id, batch_id, sk_prefix=keys.BATCH_JOB_SK_PREFIX))

    def results(self, workspace_id: str, batch_id: str) -> dict[int, dict[str, Any]]:
        """Job results by job index."""
        return {
            int(item["index"]): item
            for item in self.partition(workspace_id, batch_id, sk_prefix=keys.BATCH_RESULT_SK_PREFIX)
        }

    def of_workspace(self, workspace_id: str) -> list[dict[str, Any]]:
        """Every batch of the workspace (the list sorts and pages by fields of its own choosing)."""
        prefix = keys.batch_prefix(workspace_id)
        return [
            item
            for item in query_gsi1(self.table, keys.batches_of_workspace(workspace_id))
            if item["pk"].startswith(prefix)
        ]

    def job_stats(self, workspace_id: str) -> dict[str, Any]:
        response = clients.dynamodb().get_item(TableName=self.table, Key=serialize(keys.job_stats(workspace_id)))
        item = response.get("Item")
        return deserialize(item) if item else {}

    def record_duration(self, workspace_id: str, job_type: str, duration_ms: int) -> None:
        """Add one completed job's duration to the workspace's statistics (one item per workspace,
        so a busy workspace can be throttled here: StorageError)."""
        try:
            clients.dynamodb().update_item(
                TableName=self.table,
                Key=serialize(keys.job_stats(workspace_id)),
                UpdateExpression="ADD #n :one, #ms :ms",
                ExpressionAttributeNames={"#n": f"n#{job_type}", "#ms": f"ms#{job_type}"},
                ExpressionAttributeValues=serialize({":one": 1, ":ms": duration_ms}),
            )
        except (ClientError, BotoCoreError) as error:
            raise StorageError("Job statistics not updated") from error

    # ------------------------------------------------------------------ jobs
    def change_job(self, workspace_id: str, batch_id: str, job: dict[str, Any], change: JobChange) -> bool:
        """Apply one job status change with its counter moves; False when the job no longer has
        the status and attempts the change was decided on."""
        index = int(job["index"])
        names = {"#status": "status", "#attempts": "attempts"}
        values: dict[str, Any] = {
            ":from": str(change.from_status),
            ":seen": change.from_attempts,
            ":to": str(change.to),
            ":attempts": change.attempts,
        }
        sets = ["#status = :to", "#attempts = :attempts"]
        removes: list[str] = []
        for n, (name, value) in enumerate(change.fields.items()):
            names[f"#f{n}"] = name
            if value is None:
                removes.append(f"#f{n}")
            else:
                values[f":f{n}"] = value
                sets.append(f"#f{n} = :f{n}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        actions: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": serialize(keys.batch_job(workspace_id, batch_id, index)),
                    "UpdateExpression": expression,
                    "ConditionExpression": "#status = :from AND #attempts = :seen",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": serialize(values),
                }
            }
        ]
        adds = dict(change.batch_adds)
        if change.from_status != change.to:
            adds[counter(change.to)] = adds.get(counter(change.to), 0) + 1
            adds[counter(change.from_status)] = adds.get(counter(change.from_status), 0) - 1
        if adds:
            action = self._counter_action(workspace_id, batch_id, adds)
            if change.require_unfinished_batch:
                update = action["Update"]
                update["ConditionExpression"] = "#status IN (:q, :r)"
                update["ExpressionAttributeNames"]["#status"] = "status"
                update["ExpressionAttributeValues"].update(
                    serialize({":q": UNFINISHED_BATCH[0], ":r": UNFINISHED_BATCH[1]})
                )
            actions.append(action)
        if change.result is not None:
            item = {**keys.batch_job_result(workspace_id, batch_id, index), **change.result, "type": "batch_result"}
            actions.append({"Put": {"TableName": self.table, "Item": serialize(item)}})
        actions += self._outbox_puts(workspace_id, batch_id, change.outbox)
        return transact(actions) is None

    def _counter_action(self, workspace_id: str, batch_id: str, adds: dict[str, int]) -> dict[str, Any]:
        names = {f"#c{n}": name for n, name in enumerate(adds)}
        values = {f":c{n}": amount for n, amount in enumerate(adds.values())}
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": serialize(keys.batch(workspace_id, batch_id)),
            "UpdateExpression": "ADD " + ", ".join(f"#c{n} :c{n}" for n in range(len(adds))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": serialize(values),
        }
        return {"Update": update}

    def record_late_result(self, workspace_id: str, batch_id: str, job: dict[str, Any], fields: dict[str, Any]) -> bool:
        """A cancelled job's attempt that finished anyway: kept on the job, counted nowhere."""
        names = {f"#f{n}": name for n, name in enumerate(fields)}
        values = {f":f{n}": value for n, value in enumerate(fields.values())}
        values.update({":cancelled": str(JobStatus.CANCELLED), ":seen": int(job["attempts"])})
        return conditional_write(
            "update_item",
            TableName=self.table,
            Key=serialize(keys.batch_job(workspace_id, batch_id, int(job["index"]))),
            UpdateExpression="SET " + ", ".join(f"#f{n} = :f{n}" for n in range(len(fields))),
            ConditionExpression="#status = :cancelled AND #attempts = :seen",
            ExpressionAttributeNames={**names, "#status": "status", "#attempts": "attempts"},
            ExpressionAttributeValues=serialize(values),
        )

    def release(
        self, workspace_id: str, batch_id: str, *, index: int, max_parallel: int, fields: dict[str, Any]
    ) -> bool:
        """Move pending job `index` into the window: only if it is the next one, the window has
        room and the batch is unfinished. False when any of that no longer holds."""
        batch_update = {
            "Update": {
                "TableName": self.table,
                "Key": serialize(keys.batch(workspace_id, batch_id)),
                "UpdateExpression": "SET next_release = :next, in_flight = in_flight + :one, "
                "#pending = #pending - :one, #queued = #queued + :one",
                "ConditionExpression": "next_release = :index AND in_flight < :max AND #status IN (:q, :r)",
                "ExpressionAttributeNames": {
                    "#pending": counter(JobStatus.PENDING),
                    "#queued": counter(JobStatus.QUEUED),
                    "#status": "status",
                },
                "ExpressionAttributeValues": serialize(
                    {
                        ":next": index + 1,
                        ":one": 1,
                        ":index": index,
                        ":max": max_parallel,
                        ":q": UNFINISHED_BATCH[0],
                        ":r": UNFINISHED_BATCH[1],
                    }
                ),
            }
        }
        names = {"#status": "status"}
        values: dict[str, Any] = {":pending": str(JobStatus.PENDING), ":queued": str(JobStatus.QUEUED)}
        sets = ["#status = :queued"]
        for n, (name, value) in enumerate(fields.items()):
            names[f"#f{n}"] = name
            values[f":f{n}"] = value
            sets.append(f"#f{n} = :f{n}")
        job_update = {
            "Update": {
                "TableName": self.table,
                "Key": serialize(keys.batch_job(workspace_id, batch_id, index)),
                "UpdateExpression": "SET " + ", ".join(sets),
                "ConditionExpression": "#status = :pending",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": serialize(values),
            }
        }
        return transact([batch_update, job_update]) is None

    # ------------------------------------------------------------------ the batch
    def start(self, workspace_id: str, batch_id: str, started_at: str, outbox: Sequence[OutboxEvent] = ()) -> bool:
        """queued -> running, once, with the events it causes."""
        update = {
            "Update": {
                "TableName": self.table,
                "Key": serialize(keys.batch(workspace_id, batch_id)),
                "UpdateExpression": "SET #status = :running, started_at = :at",
                "ConditionExpression": "#status = :queued",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": serialize(
                    {":running": str(BatchStatus.RUNNING), ":queued": str(BatchStatus.QUEUED), ":at": started_at}
                ),
            }
        }
        return transact([update, *self._outbox_puts(workspace_id, batch_id, outbox)]) is None

    def finish(
        self,
        workspace_id: str,
        batch_id: str,
        status: BatchStatus,
        fields: dict[str, Any],
        *,
        only_when_drained: bool,
        check_at: str,
        outbox: Sequence[OutboxEvent] = (),
    ) -> bool:
        """Set the final status exactly once, free the workspace's concurrent-batch slot and write
        the events it causes, in one transaction. `only_when_drained`: only if no job is pending,
        queued or running. The batch stays in the sweeper's index (at `check_at`) until `retire`:
        what follows the end (ending its jobs, sending its events) is finished by the sweeper
        should the caller stop half-way."""
        names = {"#status": "status"}
        values: dict[str, Any] = {":to": str(status), ":q": UNFINISHED_BATCH[0], ":r": UNFINISHED_BATCH[1]}
        sets = ["#status = :to"]
        for n, (name, value) in enumerate(fields.items()):
            names[f"#f{n}"] = name
            values[f":f{n}"] = value
            sets.append(f"#f{n} = :f{n}")
        names["#sweep"] = "gsi2sk"
        values[":sweep"] = keys.active_batch_sort(check_at, workspace_id, batch_id)
        sets.append("#sweep = :sweep")
        condition = "#status IN (:q, :r)"
        if only_when_drained:
            for n, status_name in enumerate((JobStatus.PENDING, JobStatus.QUEUED, JobStatus.RUNNING)):
                names[f"#d{n}"] = counter(status_name)
                condition += f" AND #d{n} = :zero"
            values[":zero"] = 0
        update = {
            "Update": {
                "TableName": self.table,
                "Key": serialize(keys.batch(workspace_id, batch_id)),
                "UpdateExpression": "SET " + ", ".join(sets),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": serialize(values),
            }
        }
        actions = [update, self._quota_release_action(workspace_id), *self._outbox_puts(workspace_id, batch_id, outbox)]
        return transact(actions) is None

    def retire(self, workspace_id: str, batch_id: str) -> bool:
        """Take a finished batch out of the sweeper's index: everything after its end is done."""
        return conditional_write(
            "update_item",
            TableName=self.table,
            Key=serialize(keys.batch(workspace_id, batch_id)),
            UpdateExpression="REMOVE gsi2pk, gsi2sk",
            ConditionExpression="NOT #status IN (:q, :r)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=serialize({":q": UNFINISHED_BATCH[0], ":r": UNFINISHED_BATCH[1]}),
        )

    def mark_once(
        self,
        workspace_id: str,
        batch_id: str,
        flag: str,
        at: str,
        outbox: Sequence[OutboxEvent] = (),
        *,
        unless_status: Sequence[BatchStatus] = (),
    ) -> bool:
        """Set `flag` (a progress threshold, exports written, ...) if it was never set, and the
        batch is in none of `unless_status`, with the events that causes."""
        condition = "attribute_exists(pk) AND attribute_not_exists(#flag)"
        names = {"#flag": flag}
        values: dict[str, Any] = {":at": at}
        if unless_status:
            statuses = {f":unless{n}": str(status) for n, status in enumerate(unless_status)}
            condition += f" AND NOT (#status IN ({', '.join(statuses)}))"
            names["#status"] = "status"
            values.update(statuses)
        update = {
            "Update": {
                "TableName": self.table,
                "Key": serialize(keys.batch(workspace_id, batch_id)),
                "UpdateExpression": "SET #flag = :at",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": serialize(values),
            }
        }
        return transact([update, *self._outbox_puts(workspace_id, batch_id, outbox)]) is None

    def link_retry(self, workspace_id: str, batch_id: str, new_batch_id: str) -> None:
        """Name the retry on the original batch, once (a repeated link changes nothing)."""
        conditional_write(
            "update_item",
            TableName=self.table,
            Key=serialize(keys.batch(workspace_id, batch_id)),
            UpdateExpression="SET retried_by = list_append(if_not_exists(retried_by, :empty), :new)",
            ConditionExpression="attribute_exists(pk) AND NOT contains(retried_by, :id)",
            ExpressionAttributeValues=serialize({":empty": [], ":new": [new_batch_id], ":id": new_batch_id}),
        )

    # ------------------------------------------------------------------ sweeping
    def overdue(self, before: str, limit: int) -> list[tuple[str, str, str]]:
        """(workspace, batch id, gsi2sk) of batches whose check time has passed: unfinished ones,
        and finished ones whose follow-up (ending jobs, sending events) is not known done."""
        found: list[tuple[str, str, str]] = []
        paginator = clients.dynamodb().get_paginator("query")
        for shard in range(keys.ACTIVE_BATCH_SHARDS):
            for page in paginator.paginate(
                TableName=self.table,
                IndexName="gsi2",
                KeyConditionExpression="gsi2pk = :pk AND gsi2sk < :before",
                ExpressionAttributeValues=serialize({":pk": keys.active_batches(shard), ":before": before}),
            ):
                for raw in page.get("Items", []):
                    item = deserialize(raw)
                    workspace, _, batch_id = item["pk"].removeprefix("WS#").partition("#BATCH#")
                    found.append((workspace, batch_id, item["gsi2sk"]))
                    if len(found) >= limit:
                        return found
        return found

    def recheck_later(self, workspace_id: str, batch_id: str, seen: str, check_at: str) -> bool:
        return conditional_write(
            "update_item",
            TableName=self.table,
            Key=serialize(keys.batch(workspace_id, batch_id)),
            UpdateExpression="SET gsi2sk = :check",
            ConditionExpression="gsi2sk = :seen",
            ExpressionAttributeValues=serialize(
                {":check": keys.active_batch_sort(check_at, workspace_id, batch_id), ":seen": seen}
            ),
        )


def config_of(job: dict[str, Any]) -> Any:
    return json.loads(job["config_json"]) if "config_json" in job else None
