"""Operations jobs (async batches and transactions): one job item plus one item per operation.

Operations live in items of their own: a batch may carry 5 MB of bodies, far past one
item's 400 KB. Each operation item is claimed with a conditional write before it runs and
keeps its result, so a redelivered job never runs an operation twice.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from batchops.dal import batch, clients, keys
from batchops.dal.errors import error_code, is_throttling
from batchops.dal.items import deserialize, serialize
from batchops.dal.queries import Where, conditional_write, newest_first
from batchops.errors import StorageError
from batchops.models.common import Caller
from batchops.models.operations import JobStatus, Operation, OperationResult

# An operation item holds the operation (at most 100 KB) and its result: keep it under 400 KB.
MAX_RESULT_BYTES = 250 * 1024
# Tries of a result write (each with botocore's own retries): about 0.7 s of backoff in all.
RESULT_WRITE_ATTEMPTS = 4
_SERVER_ERRORS = frozenset({"InternalServerError", "ServiceUnavailable", "RequestLimitExceeded"})


def is_transient(error: Exception) -> bool:
    """Worth another try: throttling, a server-side error, or no usable answer at all."""
    return isinstance(error, BotoCoreError) or is_throttling(error) or error_code(error) in _SERVER_ERRORS


@dataclass
class OperationRecord:
    index: int
    operation: Operation
    claimed_at: str | None = None
    result: OperationResult | None = None


@dataclass
class JobRecord:
    workspace_id: str
    id: str
    mode: str
    status: JobStatus
    caller: Caller
    continue_on_error: bool
    parallel: bool
    created_at: str
    started_at: str | None = None
    completed_at: str | None = None
    error: str | None = None
    summary: dict[str, int] | None = None
    # When the latest delivery took the job, and whether that was the queue's last delivery.
    held_at: str | None = None
    last_delivery: bool = False
    operations: list[OperationRecord] = field(default_factory=list)


def _job_fields(item: dict[str, Any], workspace_id: str) -> JobRecord:
    return JobRecord(
        workspace_id=workspace_id,
        id=item["job_id"],
        mode=item["mode"],
        status=JobStatus(item["status"]),
        caller=Caller.model_validate(item["caller"]),
        continue_on_error=bool(item["continue_on_error"]),
        parallel=bool(item["parallel"]),
        created_at=item["created_at"],
        started_at=item.get("started_at"),
        completed_at=item.get("completed_at"),
        error=item.get("error"),
        summary=item.get("summary"),
        held_at=item.get("held_at"),
        last_delivery=bool(item.get("last_delivery", False)),
    )


def pack_result(result: OperationResult) -> bytes:
    """Gzipped JSON: an operation's answer (say 1,000 execution ids) can be hundreds of KB.
    One that still would not fit its item keeps its status and says its body was not kept."""
    packed = gzip.compress(result.model_dump_json().encode())
    if len(packed) <= MAX_RESULT_BYTES:
        return packed
    body = {"error": "The operation's response was too large to keep", "code": "RESULT_TOO_LARGE"}
    return gzip.compress(OperationResult(id=result.id, status=result.status, body=body).model_dump_json().encode())


def unpack_result(value: bytes | str) -> OperationResult:
    raw = value if isinstance(value, str) else gzip.decompress(value).decode()
    return OperationResult.model_validate_json(raw)


class OperationJobRepository:
    def __init__(self, table: str):
        self.table = table

    def create(
        self,
        workspace_id: str,
        job_id: str,
        *,
        mode: str,
        caller: Caller,
        operations: list[Operation],
        continue_on_error: bool,
        parallel: bool,
        created_at: str,
        expires_at: int,
        check_at: str | None = None,
    ) -> None:
        """Store the job and its operations. `check_at`: when the sweeper should first look at
        it if nothing happens (creation time when not given)."""
        pk = keys.operation_job(workspace_id, job_id)
        job: dict[str, Any] = {
            "pk": pk,
            "sk": keys.JOB_SK,
            "type": "operation_job",
            "job_id": job_id,
            "mode": mode,
            "status": JobStatus.QUEUED.value,
            # Operations run later (worker, state machine) but always as the caller who submitted them.
            "caller": caller.model_dump(mode="json"),
            "continue_on_error": continue_on_error,
            "parallel": parallel,
            "total": len(operations),
            "workspace_id": workspace_id,
            "created_at": created_at,
            # Listed in the sparse in-flight index until the job ends (see `transition`), sorted
            # by when the sweeper should look at it next.
            "gsi2pk": keys.IN_FLIGHT_JOBS,
            "gsi2sk": keys.in_flight_sort(check_at or created_at, workspace_id, job_id),
            "expires_at": expires_at,
        }
        if mode == "async":
            job["gsi1pk"] = keys.async_jobs_of_workspace(workspace_id)
            job["gsi1sk"] = f"{created_at}#{job_id}"
        items = [
            {
                "pk": pk,
                "sk": keys.operation_sk(n),
                "type": "operation",
                "index": n,
                "op_id": op.id,
                "operation": op.model_dump_json(exclude_none=True),
                "expires_at": expires_at,
            }
            for n, op in enumerate(operations)
        ]
        # Operations first: a job item that exists always has all its operations.
        if batch.put_items(self.table, items):
            raise StorageError("The job could not be stored; submit it again")
        if batch.put_items(self.table, [job]):
            raise StorageError("The job could not be stored; submit it again")

    def get(self, workspace_id: str, job_id: str, only: Sequence[int] | None = None) -> JobRecord | None:
        """The job with all its operations, or with just the operations at `only` (one
        transaction step needs its own operation and the ones it references, not all 100)."""
        pk = keys.operation_job(workspace_id, job_id)
        items: list[dict[str, Any]] = []
        if only is None:
            paginator = clients.dynamodb().get_paginator("query")
            for page in paginator.paginate(
                TableName=self.table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": pk}},
                ConsistentRead=True,
            ):
                items.extend(deserialize(i) for i in page.get("Items", []))
        else:
            wanted = [{"pk": pk, "sk": keys.JOB_SK}] + [{"pk": pk, "sk": keys.operation_sk(n)} for n in set(only)]
            items = [deserialize(i) for i in batch.get_items(self.table, wanted)]
        job_items = [i for i in items if i["sk"] == keys.JOB_SK]
        if not job_items:
            return None
        record = _job_fields(job_items[0], workspace_id)
        for item in sorted((i for i in items if i["sk"] != keys.JOB_SK), key=lambda i: int(i["index"])):
            result = unpack_result(item["result"]) if "result" in item else None
            record.operations.append(
                OperationRecord(
                    index=int(item["index"]),
                    operation=Operation.model_validate_json(item["operation"]),
                    claimed_at=item.get("claimed_at"),
                    result=result,
                )
            )
        return record

    def operation_ids(self, workspace_id: str, job_id: str) -> list[str]:
        """The job's operation ids in order, read without their bodies or results."""
        ids: list[str] = []
        paginator = clients.dynamodb().get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :op)",
            ExpressionAttributeValues={":pk": {"S": keys.operation_job(workspace_id, job_id)}, ":op": {"S": "OP#"}},
            ProjectionExpression="op_id",
            ConsistentRead=True,
        ):
            ids.extend(i["op_id"]["S"] for i in page.get("Items", []))
        return ids

    def transition(
        self,
        workspace_id: str,
        job_id: str,
        allowed_from: tuple[JobStatus, ...],
        to: JobStatus,
        *,
        only_if: Where | None = None,
        **fields: Any,
    ) -> bool:
        """Move the job to `to` only from one of `allowed_from` (and only if `only_if` holds);
        False when it was elsewhere."""
        names = {"#status": "status", **(only_if.names if only_if else {})}
        values: dict[str, Any] = {":to": to.value, **(only_if.values if only_if else {})}
        updates = ["#status = :to"]
        removals = " REMOVE gsi2pk, gsi2sk" if to in (JobStatus.COMPLETED, JobStatus.FAILED) else ""
        for n, (name, value) in enumerate(fields.items()):
            names[f"#f{n}"] = name
            values[f":f{n}"] = value
            updates.append(f"#f{n} = :f{n}")
        conditions = []
        for n, status in enumerate(allowed_from):
            values[f":from{n}"] = status.value
            conditions.append(f"#status = :from{n}")
        condition = "attribute_exists(pk) AND (" + " OR ".join(conditions) + ")"
        if only_if is not None:
            condition += f" AND ({only_if.expression})"
        return conditional_write(
            "update_item",
            TableName=self.table,
            Key=serialize({"pk": keys.operation_job(workspace_id, job_id), "sk": keys.JOB_SK}),
            UpdateExpression="SET " + ", ".join(updates) + removals,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize(values),
        )

    def take(self, workspace_id: str, job_id: str, *, at: str, check_at: str, last_delivery: bool) -> bool:
        """A delivery takes the job to run it (QUEUED or PROCESSING -> PROCESSING): the job is
        held from `at`, and the sweeper looks at it again at `check_at`. False when the job has
        ended since it was read (another delivery finished it, or the sweeper failed it)."""
        updates = [
            "#status = :processing",
            "held_at = :at",
            "started_at = if_not_exists(started_at, :at)",
            "gsi2sk = :check",
        ]
        values: dict[str, Any] = {
            ":processing": JobStatus.PROCESSING.value,
            ":queued": JobStatus.QUEUED.value,
            ":at": at,
            ":check": keys.in_flight_sort(check_at, workspace_id, job_id),
        }
        if last_delivery:
            updates.append("last_delivery = :last")
            values[":last"] = True
        return conditional_write(
            "update_item",
            TableName=self.table,
            Key=serialize({"pk": keys.operation_job(workspace_id, job_id), "sk": keys.JOB_SK}),
            UpdateExpression="SET " + ", ".join(updates),
            ConditionExpression="attribute_exists(pk) AND #status IN (:queued, :processing)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=serialize(values),
        )

    def is_open(self, workspace_id: str, job_id: str) -> bool:
        """Whether the job is still QUEUED or PROCESSING, read strongly consistent: a claim made
        before this read and a close (FAILED) after it are both seen by whoever reads next."""
        response = clients.dynamodb().get_item(
            TableName=self.table,
            Key=serialize({"pk": keys.operation_job(workspace_id, job_id), "sk": keys.JOB_SK}),
            ProjectionExpression="#status",
            ExpressionAttributeNames={"#status": "status"},
            ConsistentRead=True,
        )
        status = response.get("Item", {}).get("status", {}).get("S")
        return status in (JobStatus.QUEUED.value, JobStatus.PROCESSING.value)

    def fail_unstarted(self, workspace_id: str, job_id: str, *, at: str, error: str) -> bool:
        """QUEUED -> FAILED: no delivery ever took the job (a delivery's `take` is conditional on
        the same status, so exactly one of them wins)."""
        return self.transition(
            workspace_id, job_id, (JobStatus.QUEUED,), JobStatus.FAILED, completed_at=at, error=error
        )

    def fail_abandoned(
        self, workspace_id: str, job_id: str, *, at: str, error: str, held_before: str, created_before: str
    ) -> bool:
        """PROCESSING -> FAILED, only while no delivery can hold the job or come back to it: the
        latest delivery took it before `held_before`, and it was the queue's last one or the job
        is older than `created_before` (its message expired)."""
        return self.end_abandoned(
            workspace_id,
            job_id,
            JobStatus.FAILED,
            held_before=held_before,
            created_before=created_before,
            completed_at=at,
            error=error,
        )

    def end_abandoned(
        self, workspace_id: str, job_id: str, to: JobStatus, *, held_before: str, created_before: str, **fields: Any
    ) -> bool:
        """PROCESSING -> `to` (with `fields`) under the same condition as `fail_abandoned`."""
        # Jobs taken before deliveries recorded held_at were taken when they started.
        unheld = Where(
            "(#held < :held_before OR (attribute_not_exists(#held) AND #started < :held_before))"
            " AND (#last = :last OR #created < :created_before)",
            {"#held": "held_at", "#started": "started_at", "#last": "last_delivery", "#created": "created_at"},
            {":held_before": held_before, ":last": True, ":created_before": created_before},
        )
        return self.transition(workspace_id, job_id, (JobStatus.PROCESSING,), to, only_if=unheld, **fields)

    def recheck_later(self, workspace_id: str, job_id: str, seen: str, check_at: str) -> bool:
        """Move an unfinished job's next look to `check_at` (only if nobody moved it meanwhile:
        a delivery taking the job sets its own)."""
        return conditional_write(
            "update_item",
            TableName=self.table,
            Key=serialize({"pk": keys.operation_job(workspace_id, job_id), "sk": keys.JOB_SK}),
            UpdateExpression="SET gsi2sk = :check",
            ConditionExpression="attribute_exists(gsi2pk) AND gsi2sk = :seen",
            ExpressionAttributeValues=serialize(
                {":check": keys.in_flight_sort(check_at, workspace_id, job_id), ":seen": seen}
            ),
        )

    def claim_operation(self, workspace_id: str, job_id: str, index: int, at: str) -> bool:
        """True for the one caller that may run this operation; False when it was claimed before,
        or already has a result (a timed-out or skipped operation is recorded unclaimed: a
        duplicate delivery that read the job earlier must not run it after all)."""
        return conditional_write(
            "update_item",
            TableName=self.table,
            Key=serialize({"pk": keys.operation_job(workspace_id, job_id), "sk": keys.operation_sk(index)}),
            UpdateExpression="SET claimed_at = :at",
            ConditionExpression=(
                "attribute_exists(pk) AND attribute_not_exists(claimed_at) AND attribute_not_exists(#result)"
            ),
            ExpressionAttributeNames={"#result": "result"},
            ExpressionAttributeValues=serialize({":at": at}),
        )

    def record_result(
        self,
        workspace_id: str,
        job_id: str,
        index: int,
        result: OperationResult,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Keep the first result recorded for an operation (a retry never overwrites it).

        A transient error is retried past botocore's own retries: the result exists only in this
        run's memory, and once lost its operation can only be reported INTERRUPTED (effect
        unknown), a success told as a failure. The write is idempotent, so retrying is safe."""
        request = {
            "TableName": self.table,
            "Key": serialize({"pk": keys.operation_job(workspace_id, job_id), "sk": keys.operation_sk(index)}),
            "UpdateExpression": "SET #result = if_not_exists(#result, :result)",
            "ExpressionAttributeNames": {"#result": "result"},
            "ExpressionAttributeValues": {":result": {"B": pack_result(result)}},
        }
        for attempt in range(RESULT_WRITE_ATTEMPTS):
            try:
                clients.dynamodb().update_item(**request)
                return
            except (ClientError, BotoCoreError) as error:
                if attempt == RESULT_WRITE_ATTEMPTS - 1 or not is_transient(error):
                    raise
            sleep(min(1.0, 0.1 * 2**attempt))

    def list_async(
        self, workspace_id: str, *, limit: int, status: JobStatus | None, cursor: str | None
    ) -> tuple[list[JobRecord], str | None]:
        """Newest first, optionally only jobs with `status`."""
        items, next_cursor = newest_first(
            self.table,
            keys.async_jobs_of_workspace(workspace_id),
            pk_prefix=keys.operation_job(workspace_id, ""),
            limit=limit,
            cursor=cursor,
            filters={"status": status.value} if status else None,
        )
        return [_job_fields(i, workspace_id) for i in items], next_cursor

    def due(self, before: str) -> list[tuple[str, str, str]]:
        """(workspace, job id, gsi2sk) of every unfinished job the sweeper should look at before
        `before`."""
        found: list[tuple[str, str, str]] = []
        paginator = clients.dynamodb().get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            IndexName="gsi2",
            KeyConditionExpression="gsi2pk = :pk AND gsi2sk < :before",
            ExpressionAttributeValues={":pk": {"S": keys.IN_FLIGHT_JOBS}, ":before": {"S": before}},
        ):
            for raw in page.get("Items", []):
                _, _, rest = raw["pk"]["S"].partition("WS#")
                workspace_id, _, job_id = rest.partition("#OPJOB#")
                found.append((workspace_id, job_id, raw["gsi2sk"]["S"]))
        return found

    def jobs(self, targets: Sequence[tuple[str, str]]) -> dict[tuple[str, str], JobRecord]:
        """The job items (without operations) by (workspace, job id); missing ones are absent."""
        wanted = [{"pk": keys.operation_job(ws, job_id), "sk": keys.JOB_SK} for ws, job_id in set(targets)]
        found: dict[tuple[str, str], JobRecord] = {}
        for raw in batch.get_items(self.table, wanted) if wanted else []:
            item = deserialize(raw)
            workspace_id = str(item["workspace_id"])
            found[(workspace_id, str(item["job_id"]))] = _job_fields(item, workspace_id)
        return found
