"""Runs, their de-duplication claims and bulk-trigger batches (BatchOperation) in the domain table.

Every change of a run's status is a conditional write on the status and attempt count it had, and
a run that belongs to a batch moves that batch's per-status counters in the same transaction, so
a duplicate delivery can neither run a run twice nor count it twice.
"""

from __future__ import annotations

import json
import random
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from batchops.dal import clients, keys
from batchops.dal.batch import get_items, put_items
from batchops.dal.items import deserialize, iso, serialize
from batchops.dal.queries import (
    Where,
    cancellation_reasons,
    conditional_write,
    cursor_for,
    is_condition_failure,
    newest_first,
    transact,
)
from batchops.errors import StorageError
from batchops.models.jobs import RunStatus

MAX_TRANSACTION_ITEMS = 100  # TransactWriteItems' limit
MAX_TRANSACTION_ATTEMPTS = 8
RUN_STATUSES = tuple(RunStatus)
# Attributes of a stored batch operation that are not the seed's fields.
_INTERNAL = {"pk", "sk", "type", "gsi1pk", "gsi1sk", "expires_at"}
# Attributes of a stored run that only batchops reads.
RUN_INTERNAL = frozenset(
    {
        "pk",
        "sk",
        "type",
        "gsi1pk",
        "gsi1sk",
        "gsi2pk",
        "gsi2sk",
        "gsi3pk",
        "gsi3sk",
        "expires_at",
        "lease_until",
        "has_result",
        "payload_json",
    }
)


def _listing_sort(run: dict[str, Any]) -> str:
    """The sort key of a run in its listings (gsi1, gsi3): newest first by creation."""
    return f"{run['created_at']}#{run['id']}"


def _counter(status: RunStatus | str) -> str:
    return f"rc_{status}"


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))  # noqa: S311 - jitter, not crypto


def _shard(run_id: str) -> int:
    return zlib.crc32(run_id.encode()) % keys.IN_FLIGHT_RUN_SHARDS


@dataclass(frozen=True)
class RunFilter:
    """Which runs a listing keeps: of one job, one batch, some statuses (as stored), and with a
    tag or a metadata entry (a key, and its value if given).

    `batch_created_at` is the batch's `created_at`. A bulk trigger stores the batch and all its
    runs with one creation time (services/runs.py `_create`), and a run's place in its job's
    listing (gsi3sk) starts with it, so the batch's runs are one key range of the job's runs:
    read by key, not filtered out of all of them."""

    job_id: str | None = None
    batch_id: str | None = None
    batch_created_at: str | None = None
    statuses: tuple[RunStatus, ...] = ()
    tag_key: str | None = None
    tag_value: str | None = None
    metadata_key: str | None = None
    metadata_value: str | None = None

    def where(self) -> Where | None:
        """The filters that may drop most of what is read."""
        return Where.all_of(
            self._batch() if self.batch_created_at is None else None,
            Where.one_of("status", sorted({str(s) for s in self.statuses})) if self.statuses else None,
            Where.label("tags", self.tag_key, self.tag_value) if self.tag_key is not None else None,
            Where.label("metadata", self.metadata_key, self.metadata_value) if self.metadata_key is not None else None,
        )

    def strays(self) -> Where | None:
        """Within the batch's key range, only a run of the same job created in the same
        microsecond by another request is not the batch's."""
        return self._batch() if self.batch_created_at is not None else None

    def sort_prefix(self) -> str | None:
        return None if self.batch_created_at is None else f"{self.batch_created_at}#"

    def _batch(self) -> Where | None:
        return Where.equals({"batch_id": self.batch_id}) if self.batch_id is not None else None


@dataclass(frozen=True)
class BatchClose:
    """What a try at closing a batch found: whether it closed it, and the batch's finished_at
    (None while some run of it is still waiting or running)."""

    closed_now: bool
    finished_at: str | None


@dataclass(frozen=True)
class Claim:
    """What makes a run unique for its job: kind "key" (an idempotency key) or "payload" (the
    payload's hash, for `until`, the end of the de-duplication window, in epoch seconds)."""

    kind: str
    digest: str
    run_id: str
    until: int | None = None


@dataclass(frozen=True)
class Transition:
    """A run moving from one status to another, valid only if it still has `from_status` and
    `from_attempts` when written."""

    from_status: RunStatus
    from_attempts: int
    to: RunStatus
    attempts: int
    fields: dict[str, Any]
    # When the sweeper should look at the run again. For a change that ends a run, set only when
    # something is left to do after it (closing the run's batch): the run stays in the sweeper's
    # index until `unindex`, so a crash right after the end cannot leave the batch open.
    check_at: str | None = None
    result: Any = None
    has_result: bool = False


class RunRepository:
    def __init__(self, table: str):
        self.table = table

    # ------------------------------------------------------------------ creating
    def run_item(self, workspace_id: str, run: dict[str, Any], *, check_at: str, expires_at: int) -> dict[str, Any]:
        order = _listing_sort(run)
        stored = {k: v for k, v in run.items() if k != "payload"}
        return {
            **keys.run(workspace_id, run["id"]),
            **stored,
            # JSON text: any JSON value fits (DynamoDB caps nesting at 32 levels and has no floats).
            "payload_json": json.dumps(run["payload"], separators=(",", ":"), ensure_ascii=False),
            "type": "run",
            "gsi1pk": keys.runs_of_workspace(workspace_id),
            "gsi1sk": order,
            "gsi3pk": keys.runs_of_job(workspace_id, run["job_id"]),
            "gsi3sk": order,
            "gsi2pk": keys.in_flight_runs(_shard(run["id"])),
            "gsi2sk": keys.in_flight_run_sort(check_at, workspace_id, run["id"]),
            "expires_at": expires_at,
        }

    def batch_item(
        self, workspace_id: str, batch: dict[str, Any], *, counts: dict[RunStatus, int], expires_at: int
    ) -> dict[str, Any]:
        counters = {_counter(s): counts.get(s, 0) for s in RUN_STATUSES}
        return {
            **keys.batch_operation(workspace_id, batch["id"]),
            **batch,
            **counters,
            "type": "batch_operation",
            "gsi1pk": keys.batch_operations_of_workspace(workspace_id),
            "gsi1sk": f"{batch['created_at']}#{batch['id']}",
            "expires_at": expires_at,
        }

    def put_all(self, items: Sequence[dict[str, Any]]) -> list[int]:
        """BatchWriteItem, retried; the indexes of items still unwritten."""
        return put_items(self.table, items)

    def delete_all(self, item_keys: Sequence[dict[str, str]]) -> list[dict[str, str]]:
        """Remove what a failed request wrote (nothing was queued yet); the keys that could not be
        removed."""
        kept = []
        for key in item_keys:
            try:
                clients.dynamodb().delete_item(TableName=self.table, Key=serialize(key))
            except (ClientError, BotoCoreError):
                kept.append(key)
        return kept

    # ------------------------------------------------------------------ claims
    def claim_key(self, workspace_id: str, job_id: str, claim: Claim) -> dict[str, str]:
        return keys.run_claim(workspace_id, job_id, claim.kind, claim.digest)

    def read_claims(
        self, workspace_id: str, job_id: str, claims: Sequence[Claim]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        # Items of one request may share a claim; BatchGetItem refuses a key twice.
        wanted = {
            self.claim_key(workspace_id, job_id, c)["pk"]: self.claim_key(workspace_id, job_id, c) for c in claims
        }
        found = get_items(self.table, list(wanted.values()))
        by_pk = {deserialize(item)["pk"]: deserialize(item) for item in found}
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for claim in claims:
            item = by_pk.get(self.claim_key(workspace_id, job_id, claim)["pk"])
            if item is not None:
                out[(claim.kind, claim.digest)] = item
        return out

    def write_claims(
        self,
        workspace_id: str,
        job_id: str,
        groups: Sequence[Sequence[Claim]],
        *,
        now: int,
        claimed_at: str,
        expires_at: int,
        voids: dict[tuple[str, str], str],
    ) -> set[int]:
        """Claim every group (one item's claims) all-or-nothing; return the indexes of groups
        refused because another run holds one of their claims. A claim can be taken when absent,
        expired (`until` passed), or held by a run that was never written (`voids`)."""
        refused: set[int] = set()
        pending = [i for i, group in enumerate(groups) if group]
        for chunk in self._claim_chunks(groups, pending):
            self._write_claim_chunk(workspace_id, job_id, groups, chunk, refused, now, claimed_at, expires_at, voids)
        return refused

    @staticmethod
    def _claim_chunks(groups: Sequence[Sequence[Claim]], indexes: list[int]) -> Iterator[list[int]]:
        chunk: list[int] = []
        size = 0
        for index in indexes:
            if size + len(groups[index]) > MAX_TRANSACTION_ITEMS:
                yield chunk
                chunk, size = [], 0
            chunk.append(index)
            size += len(groups[index])
        if chunk:
            yield chunk

    def _write_claim_chunk(
        self,
        workspace_id: str,
        job_id: str,
        groups: Sequence[Sequence[Claim]],
        chunk: list[int],
        refused: set[int],
        now: int,
        claimed_at: str,
        expires_at: int,
        voids: dict[tuple[str, str], str],
    ) -> None:
        remaining = list(chunk)
        for attempt in range(MAX_TRANSACTION_ATTEMPTS):
            if not remaining:
                return
            owners: list[int] = []
            actions: list[dict[str, Any]] = []
            for index in remaining:
                for claim in groups[index]:
                    item = {
                        **self.claim_key(workspace_id, job_id, claim),
                        "type": "run_claim",
                        "run_id": claim.run_id,
                        "until": claim.until,
                        "claimed_at": claimed_at,
                        "expires_at": claim.until if claim.until is not None else expires_at,
                    }
                    actions.append(
                        {
                            "Put": {
                                "TableName": self.table,
                                "Item": serialize(item),
                                "ConditionExpression": "attribute_not_exists(pk) OR #until < :now OR run_id = :void",
                                "ExpressionAttributeNames": {"#until": "until"},
                                "ExpressionAttributeValues": serialize(
                                    {":now": now, ":void": voids.get((claim.kind, claim.digest), "-")}
                                ),
                            }
                        }
                    )
                    owners.append(index)
            try:
                clients.dynamodb().transact_write_items(TransactItems=actions)
                return
            except ClientError as error:
                reasons = cancellation_reasons(error)
                if reasons is None:
                    # Throttling or an outage that botocore's retries did not outlast: the request
                    # fails as a whole (503) and its claims are released by the caller.
                    raise StorageError("Could not record the runs' de-duplication claims; retry the request") from error
                failed = {owners[n] for n, reason in enumerate(reasons) if reason == "ConditionalCheckFailed"}
                refused |= failed
                remaining = [i for i in remaining if i not in failed]
                if not failed:  # a conflicting transaction or throttling: the same again, later
                    _backoff(attempt)
        if remaining:
            raise StorageError("Could not record the runs' de-duplication claims; retry the request")

    def release_claims(self, workspace_id: str, job_id: str, claims: Sequence[Claim]) -> None:
        """Undo claims of runs that were not created (only while they still point at them)."""
        for claim in claims:
            try:
                clients.dynamodb().delete_item(
                    TableName=self.table,
                    Key=serialize(self.claim_key(workspace_id, job_id, claim)),
                    ConditionExpression="run_id = :mine",
                    ExpressionAttributeValues=serialize({":mine": claim.run_id}),
                )
            except (ClientError, BotoCoreError):
                continue  # not ours any more, or unreachable: it expires with its TTL

    # ------------------------------------------------------------------ reading
    def get(self, workspace_id: str, run_id: str, *, with_result: bool = True) -> dict[str, Any] | None:
        """The run, with its result unless told otherwise (the worker never needs it)."""
        if not with_result:
            response = clients.dynamodb().get_item(
                TableName=self.table, Key=serialize(keys.run(workspace_id, run_id)), ConsistentRead=True
            )
            return deserialize(response["Item"]) if "Item" in response else None
        # One Query reads the run and its result item together.
        response = clients.dynamodb().query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=serialize({":pk": keys.run(workspace_id, run_id)["pk"]}),
            ConsistentRead=True,
        )
        items = {i["sk"]: i for i in (deserialize(raw) for raw in response.get("Items", []))}
        run = items.get(keys.run(workspace_id, run_id)["sk"])
        if run is None:
            return None
        return {**run, "result": _result_of(items.get(keys.RUN_RESULT_SK))}

    def existing(self, workspace_id: str, run_ids: Sequence[str]) -> set[str]:
        found = get_items(self.table, [keys.run(workspace_id, r) for r in set(run_ids)], projection="id")
        return {deserialize(item)["id"] for item in found}

    def get_many(self, targets: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Runs (without results) by (workspace, run id); those that do not exist are absent."""
        found = get_items(self.table, [keys.run(ws, run_id) for ws, run_id in set(targets)])
        runs = [deserialize(item) for item in found]
        return {(run["project_id"], run["id"]): run for run in runs}

    def with_results(self, workspace_id: str, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        wanted = [r["id"] for r in runs if r.get("has_result")]
        if not wanted:
            return runs
        found = get_items(self.table, [keys.run_result(workspace_id, r) for r in wanted])
        results = {item["run_id"]: _result_of(item) for item in (deserialize(raw) for raw in found)}
        return [{**r, "result": results.get(r["id"])} for r in runs]

    def page(
        self, workspace_id: str, filters: RunFilter, *, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of runs, newest first, each with its result. A job's runs are read from its
        own index partition; a batch's from its key range of its job's. Other filters cost a
        bounded number of reads per page (queries.newest_first)."""
        partition, index = self._listing(workspace_id, filters.job_id)
        runs, next_cursor = newest_first(
            self.table,
            partition,
            pk_prefix=keys.run_prefix(workspace_id),
            limit=limit,
            cursor=cursor,
            where=filters.where(),
            index=index,
            sort_prefix=filters.sort_prefix(),
            strays=filters.strays(),
        )
        return self.with_results(workspace_id, runs), next_cursor

    def cursor_after(self, workspace_id: str, run: dict[str, Any], job_id: str | None) -> str:
        """The cursor of a listing (`page` with this `job_id`) that continues after `run`."""
        partition, index = self._listing(workspace_id, job_id)
        item = {
            **keys.run(workspace_id, run["id"]),
            f"{index}pk": partition,
            f"{index}sk": _listing_sort(run),
        }
        return cursor_for(item, index)

    @staticmethod
    def _listing(workspace_id: str, job_id: str | None) -> tuple[str, str]:
        if job_id is not None:
            return keys.runs_of_job(workspace_id, job_id), "gsi3"
        return keys.runs_of_workspace(workspace_id), "gsi1"

    def get_batch(self, workspace_id: str, batch_id: str) -> dict[str, Any] | None:
        response = clients.dynamodb().get_item(
            TableName=self.table, Key=serialize(keys.batch_operation(workspace_id, batch_id)), ConsistentRead=True
        )
        item = response.get("Item")
        return deserialize(item) if item else None

    def list_batches(
        self, workspace_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        return newest_first(
            self.table,
            keys.batch_operations_of_workspace(workspace_id),
            pk_prefix=keys.batch_operation_prefix(workspace_id),
            limit=limit,
            cursor=cursor,
        )

    # ------------------------------------------------------------------ changing
    def transition(self, workspace_id: str, run: dict[str, Any], change: Transition) -> bool:
        """Apply one status change; False when the run no longer has the status and attempt
        count the change was decided on (another delivery got there first)."""
        names = {"#status": "status", "#attempts": "attempts"}
        values: dict[str, Any] = {
            ":from": str(change.from_status),
            ":seen": change.from_attempts,
            ":to": str(change.to),
            ":attempts": change.attempts,
        }
        names["#updated"] = "updated_at"
        values[":updated"] = iso(datetime.now(UTC))
        sets = ["#status = :to", "#attempts = :attempts", "#updated = :updated"]
        removes: list[str] = []
        for n, (name, value) in enumerate(change.fields.items()):
            names[f"#f{n}"] = name
            if value is None:
                removes.append(f"#f{n}")
            else:
                values[f":f{n}"] = value
                sets.append(f"#f{n} = :f{n}")
        if change.to.finished:
            removes.append("lease_until")
            if change.check_at is None:
                removes += ["gsi2pk", "gsi2sk"]
        if change.check_at is not None:
            values[":check"] = keys.in_flight_run_sort(change.check_at, workspace_id, run["id"])
            sets.append("gsi2sk = :check")
        if change.has_result:
            values[":has"] = True
            sets.append("has_result = :has")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": serialize(keys.run(workspace_id, run["id"])),
            "UpdateExpression": expression,
            "ConditionExpression": "#status = :from AND #attempts = :seen",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": serialize(values),
        }
        others = self._companions(workspace_id, run, change)
        if not others:
            try:
                clients.dynamodb().update_item(**update)
                return True
            except ClientError as error:
                if is_condition_failure(error):
                    return self._landed(workspace_id, run["id"], change)
                raise
        # Many runs of one batch finish at once and all update its counters: a TransactionConflict
        # is expected under load, and transact() tries again.
        applied = transact([{"Update": update}, *others], max_attempts=MAX_TRANSACTION_ATTEMPTS) is None
        return applied or self._landed(workspace_id, run["id"], change)

    def _landed(self, workspace_id: str, run_id: str, change: Transition) -> bool:
        """Whether a write whose condition failed had in fact gone through: botocore retries a
        request whose answer was lost, and the retry then fails its own condition."""
        current = self.get(workspace_id, run_id, with_result=False)
        return (
            current is not None
            and current.get("status") == str(change.to)
            and current.get("attempts") == change.attempts
            and all(current.get(k) == v for k, v in change.fields.items() if v is not None)
        )

    def _companions(self, workspace_id: str, run: dict[str, Any], change: Transition) -> list[dict[str, Any]]:
        """Writes that must happen with the status change, or not at all."""
        writes: list[dict[str, Any]] = []
        if change.has_result:
            item = {
                **keys.run_result(workspace_id, run["id"]),
                "type": "run_result",
                "run_id": run["id"],
                "result_json": json.dumps(change.result, separators=(",", ":"), ensure_ascii=False),
                "expires_at": run.get("expires_at"),
            }
            writes.append({"Put": {"TableName": self.table, "Item": serialize(item)}})
        if run.get("batch_id") and change.from_status != change.to:
            writes.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": serialize(keys.batch_operation(workspace_id, run["batch_id"])),
                        # if_not_exists: a batch stored before a status existed has no counter for it.
                        "UpdateExpression": (
                            "SET #to = if_not_exists(#to, :zero) + :one, #from = if_not_exists(#from, :zero) - :one"
                        ),
                        "ExpressionAttributeNames": {
                            "#to": _counter(change.to),
                            "#from": _counter(change.from_status),
                        },
                        "ExpressionAttributeValues": serialize({":one": 1, ":zero": 0}),
                    }
                }
            )
        return writes

    def finish_batch(self, workspace_id: str, batch_id: str, finished_at: str) -> BatchClose:
        """Set finished_at once, when no run of the batch is waiting or running any more. Says
        whether this call closed it, and the batch's finished_at if it is closed (by this call or
        an earlier one; the old item comes back with the failed condition at no extra read)."""
        try:
            clients.dynamodb().update_item(
                TableName=self.table,
                **self._finish_request(workspace_id, batch_id, finished_at),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            # The failed condition's old item (ReturnValuesOnConditionCheckFailure); botocore's
            # stubs do not list it on an error response.
            typed: dict[str, Any] | None = error.response.get("Item")  # type: ignore[assignment]
            old = deserialize(typed) if typed else {}
            return BatchClose(closed_now=False, finished_at=old.get("finished_at"))
        return BatchClose(closed_now=True, finished_at=finished_at)

    def latest_run_end(self, workspace_id: str, job_id: str, batch_id: str, created_at: str) -> str | None:
        """The latest finished_at of the batch's runs, read strongly consistent. Their ids come
        from the batch's key range of its job's runs (gsi3, the runs of a bulk trigger share its
        created_at), which holds them from their creation on; their finished_at from the table,
        since an index may not show a write of milliseconds ago."""
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "gsi3",
            "KeyConditionExpression": "gsi3pk = :p AND begins_with(gsi3sk, :s)",
            "FilterExpression": "batch_id = :b",  # a run of the same job created in the same microsecond
            "ProjectionExpression": "pk, sk",
            "ExpressionAttributeValues": serialize(
                {":p": keys.runs_of_job(workspace_id, job_id), ":s": f"{created_at}#", ":b": batch_id}
            ),
        }
        run_keys: list[dict[str, str]] = []
        for page in clients.dynamodb().get_paginator("query").paginate(**query):
            run_keys += [{"pk": item["pk"]["S"], "sk": item["sk"]["S"]} for item in page.get("Items", [])]
        found = (
            deserialize(item).get("finished_at") for item in get_items(self.table, run_keys, projection="finished_at")
        )
        return max((str(end) for end in found if end), default=None)

    def raise_batch_finish(self, workspace_id: str, batch_id: str, finished_at: str) -> bool:
        """Move a closed batch's finished_at later to `finished_at`; never earlier, never on an
        open batch."""
        return conditional_write(
            "update_item",
            TableName=self.table,
            Key=serialize(keys.batch_operation(workspace_id, batch_id)),
            UpdateExpression="SET finished_at = :t",
            ConditionExpression="attribute_exists(finished_at) AND finished_at < :t",
            ExpressionAttributeValues=serialize({":t": finished_at}),
        )

    def _finish_request(self, workspace_id: str, batch_id: str, finished_at: str) -> dict[str, Any]:
        return dict(
            Key=serialize(keys.batch_operation(workspace_id, batch_id)),
            UpdateExpression="SET finished_at = :now",
            # A batch stored before runs could be delayed has no delayed counter.
            ConditionExpression=(
                "attribute_exists(pk) AND attribute_not_exists(finished_at) AND #q = :zero AND #r = :zero"
                " AND (attribute_not_exists(#d) OR #d = :zero)"
            ),
            ExpressionAttributeNames={
                "#q": _counter(RunStatus.QUEUED),
                "#r": _counter(RunStatus.RUNNING),
                "#d": _counter(RunStatus.DELAYED),
            },
            ExpressionAttributeValues=serialize({":now": finished_at, ":zero": 0}),
        )

    # ------------------------------------------------------------------ sweeping
    def overdue(self, before: str, limit: int) -> list[tuple[str, str, str]]:
        """(workspace, run id, gsi2sk) of unfinished runs whose check time has passed."""
        found: list[tuple[str, str, str]] = []
        for shard in range(keys.IN_FLIGHT_RUN_SHARDS):
            paginator = clients.dynamodb().get_paginator("query")
            for page in paginator.paginate(
                TableName=self.table,
                IndexName="gsi2",
                KeyConditionExpression="gsi2pk = :pk AND gsi2sk < :before",
                ExpressionAttributeValues=serialize({":pk": keys.in_flight_runs(shard), ":before": before}),
            ):
                for raw in page.get("Items", []):
                    item = deserialize(raw)
                    workspace, _, run_id = item["pk"].removeprefix("WS#").partition("#RUN#")
                    found.append((workspace, run_id, item["gsi2sk"]))
                    if len(found) >= limit:
                        return found
        return found

    def unindex(self, workspace_id: str, run_id: str) -> None:
        """Take an ended run out of the sweeper's index, once nothing is left to do for it."""
        conditional_write(
            "update_item",
            TableName=self.table,
            Key=serialize(keys.run(workspace_id, run_id)),
            UpdateExpression="REMOVE gsi2pk, gsi2sk",
            ConditionExpression="attribute_exists(pk)",  # an update must not bring back a deleted run
        )

    def recheck_later(self, workspace_id: str, run_id: str, seen: str | None, check_at: str) -> bool:
        """Move an unfinished run's check time (only if nobody moved it meanwhile)."""
        condition = "attribute_exists(gsi2pk)" + (" AND gsi2sk = :seen" if seen is not None else "")
        values: dict[str, Any] = {":check": keys.in_flight_run_sort(check_at, workspace_id, run_id)}
        if seen is not None:
            values[":seen"] = seen
        return conditional_write(
            "update_item",
            TableName=self.table,
            Key=serialize(keys.run(workspace_id, run_id)),
            UpdateExpression="SET gsi2sk = :check",
            ConditionExpression=condition,
            ExpressionAttributeValues=serialize(values),
        )


def _result_of(item: dict[str, Any] | None) -> Any:
    return json.loads(item["result_json"]) if item and "result_json" in item else None


def stored_run(item: dict[str, Any]) -> dict[str, Any]:
    """A run item as plain values: its payload parsed, the table's own attributes left out."""
    run = {k: v for k, v in item.items() if k not in RUN_INTERNAL}
    if "payload_json" in item:
        run["payload"] = json.loads(item["payload_json"])
    return run


def public_batch(item: dict[str, Any]) -> dict[str, Any]:
    """Exactly the seed's BatchOperation fields (finished_at null until set): the per-status
    counters the batch item keeps are batchops' own bookkeeping, never shown."""
    counters = {_counter(s) for s in RUN_STATUSES}
    batch = {k: v for k, v in item.items() if k not in _INTERNAL and k not in counters}
    batch.setdefault("finished_at", None)
    return batch
