"""Jobs in the domain table: the job item, plus one item per name that keeps names unique
(both written in one transaction, so a name and its job never disagree)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from batchops.dal import clients, keys
from batchops.dal.items import deserialize, serialize
from batchops.dal.queries import newest_first
from batchops.errors import ConflictError, NotFoundError

NAME_TAKEN = "JOB_NAME_TAKEN"


def _cancelled_because(error: ClientError) -> list[str]:
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return []
    return [str(r.get("Code", "None")) for r in error.response.get("CancellationReasons", [])]


class JobRepository:
    def __init__(self, table: str):
        self.table = table

    def _job_item(self, workspace_id: str, job: dict[str, Any]) -> dict[str, Any]:
        return {
            **keys.job(workspace_id, job["id"]),
            **job,
            "type": "job",
            "gsi1pk": keys.jobs_of_workspace(workspace_id),
            "gsi1sk": f"{job['created_at']}#{job['id']}",
        }

    def _name_item(self, workspace_id: str, name: str, job_id: str) -> dict[str, Any]:
        return {**keys.job_name(workspace_id, name), "type": "job_name", "job_id": job_id}

    def create(self, workspace_id: str, job: dict[str, Any]) -> None:
        try:
            clients.dynamodb().transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": serialize(self._name_item(workspace_id, job["name"], job["id"])),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": serialize(self._job_item(workspace_id, job)),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as error:
            if _cancelled_because(error)[:1] == ["ConditionalCheckFailed"]:
                raise ConflictError(f"A job named {job['name']!r} already exists", code=NAME_TAKEN) from None
            raise

    def get(self, workspace_id: str, job_id: str) -> dict[str, Any] | None:
        response = clients.dynamodb().get_item(
            TableName=self.table, Key=serialize(keys.job(workspace_id, job_id)), ConsistentRead=True
        )
        item = response.get("Item")
        return _public(deserialize(item)) if item else None

    def list(self, workspace_id: str, *, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        items, next_cursor = newest_first(
            self.table,
            keys.jobs_of_workspace(workspace_id),
            pk_prefix=keys.job_prefix(workspace_id),
            limit=limit,
            cursor=cursor,
        )
        return [_public(i) for i in items], next_cursor

    def replace(self, workspace_id: str, before: dict[str, Any], after: dict[str, Any]) -> None:
        """Write the updated job; a new name moves its uniqueness item in the same transaction."""
        writes: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": serialize(self._job_item(workspace_id, after)),
                    "ConditionExpression": "attribute_exists(pk) AND updated_at = :seen",
                    "ExpressionAttributeValues": serialize({":seen": before["updated_at"]}),
                }
            }
        ]
        if after["name"] != before["name"]:
            writes += [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": serialize(self._name_item(workspace_id, after["name"], after["id"])),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {"Delete": {"TableName": self.table, "Key": serialize(keys.job_name(workspace_id, before["name"]))}},
            ]
        try:
            clients.dynamodb().transact_write_items(TransactItems=writes)
        except ClientError as error:
            reasons = _cancelled_because(error)
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise ConflictError(f"A job named {after['name']!r} already exists", code=NAME_TAKEN) from None
            if reasons[:1] == ["ConditionalCheckFailed"]:
                raise ConflictError("The job changed meanwhile; read it and try again", code="JOB_CHANGED") from None
            raise

    def delete(self, workspace_id: str, job: dict[str, Any]) -> None:
        try:
            clients.dynamodb().transact_write_items(
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": self.table,
                            "Key": serialize(keys.job(workspace_id, job["id"])),
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                    {"Delete": {"TableName": self.table, "Key": serialize(keys.job_name(workspace_id, job["name"]))}},
                ]
            )
        except ClientError as error:
            if _cancelled_because(error)[:1] == ["ConditionalCheckFailed"]:
                raise NotFoundError(f"Job {job['id']} not found", code="JOB_NOT_FOUND") from None
            raise


_INTERNAL = {"pk", "sk", "type", "gsi1pk", "gsi1sk"}


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in _INTERNAL}


def jobs_by_name(table: str, workspace_id: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """Registered jobs by name (Batches refer to jobs by name); names without a job are absent."""
    from batchops.dal.batch import get_items
    from batchops.dal.items import deserialize

    found = [deserialize(i) for i in get_items(table, [keys.job_name(workspace_id, n) for n in set(names)])]
    ids = {item["job_id"]: item["pk"].rsplit("#JOBNAME#", 1)[-1] for item in found}
    jobs = [deserialize(i) for i in get_items(table, [keys.job(workspace_id, job_id) for job_id in ids])]
    return {job["name"]: _public(job) for job in jobs}
