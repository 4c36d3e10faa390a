"""Operations jobs (async batches and transactions): one job item plus one item per operation.

Operations live in items of their own: a batch may carry 5 MB of bodies, far past one
item's 400 KB. Each operation item is claimed with a conditional write before it runs and
keeps its result, so a redelivered job never runs an operation twice.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from batchops.dal import batch, clients, keys
from batchops.dal.items import deserialize, serialize
from batchops.dal.queries import conditional_write, newest_first
from batchops.errors import StorageError
from batchops.models.common import Caller
from batchops.models.operations import JobStatus, Operation, OperationResult

# An operation item holds the operation (at most 100 KB) and its result: keep it under 400 KB.
MAX_RESULT_BYTES = 250 * 1024


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
    ) -> None:
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
            # Listed in the sparse in-flight index until the job ends (see `transition`).
            "gsi2pk": keys.IN_FLIGHT_JOBS,
            "gsi2sk": keys.in_flight_sort(created_at, workspace_id, job_id),
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
        self, workspace_id: str, job_id: str, allowed_from: tuple[JobStatus, ...], to: JobStatus, **fields: Any
    ) -> bool:
        """Move the job to `to` only from one of `allowed_from`; False when it was elsewhere."""
        names = {"#status": "status"}
        values: dict[str, Any] = {":to": to.value}
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
        return conditional_write(
            "update_item",
            TableName=self.table,
            Key=serialize({"pk": keys.operation_job(workspace_id, job_id), "sk": keys.JOB_SK}),
            UpdateExpression="SET " + ", ".join(updates) + removals,
            ConditionExpression="attribute_exists(pk) AND (" + " OR ".join(conditions) + ")",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize(values),
        )

    def claim_operation(self, workspace_id: str, job_id: str, index: int, at: str) -> bool:
        """True for the one caller that may run this operation; False when it was claimed before."""
        return conditional_write(
            "update_item",
            TableName=self.table,
            Key=serialize({"pk": keys.operation_job(workspace_id, job_id), "sk": keys.operation_sk(index)}),
            UpdateExpression="SET claimed_at = :at",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(claimed_at)",
            ExpressionAttributeValues=serialize({":at": at}),
        )

    def record_result(self, workspace_id: str, job_id: str, index: int, result: OperationResult) -> None:
        """Keep the first result recorded for an operation (a retry never overwrites it)."""
        clients.dynamodb().update_item(
            TableName=self.table,
            Key=serialize({"pk": keys.operation_job(workspace_id, job_id), "sk": keys.operation_sk(index)}),
            UpdateExpression="SET #result = if_not_exists(#result, :result)",
            ExpressionAttributeNames={"#result": "result"},
            ExpressionAttributeValues={":result": {"B": pack_result(result)}},
        )

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

    def overdue(self, created_before: str) -> list[tuple[str, str]]:
        """(workspace, job id) of every unfinished job created before `created_before`."""
        found: list[tuple[str, str]] = []
        paginator = clients.dynamodb().get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            IndexName="gsi2",
            KeyConditionExpression="gsi2pk = :pk AND gsi2sk < :before",
            ExpressionAttributeValues={":pk": {"S": keys.IN_FLIGHT_JOBS}, ":before": {"S": created_before}},
        ):
            for raw in page.get("Items", []):
                _, _, rest = raw["pk"]["S"].partition("WS#")
                workspace_id, _, job_id = rest.partition("#OPJOB#")
                found.append((workspace_id, job_id))
        return found
