"""Jobs in the domain table: the job item, plus one item per name and one per slug that keep
them unique (all written in one transaction, so a name or slug and its job never disagree)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from batchops.dal import clients, keys
from batchops.dal.items import deserialize, serialize
from batchops.dal.runs import Where, newest_first_where
from batchops.errors import ConflictError, NotFoundError
from batchops.models.jobs import JSON_SETTINGS

NAME_TAKEN = "JOB_NAME_TAKEN"
SLUG_TAKEN = "JOB_SLUG_TAKEN"


def _cancelled_because(error: ClientError) -> list[str]:
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return []
    return [str(r.get("Code", "None")) for r in error.response.get("CancellationReasons", [])]


def _put_new(table: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"Put": {"TableName": table, "Item": serialize(item), "ConditionExpression": "attribute_not_exists(pk)"}}


class JobRepository:
    def __init__(self, table: str):
        self.table = table

    def _job_item(self, workspace_id: str, job: dict[str, Any]) -> dict[str, Any]:
        stored = {k: v for k, v in job.items() if k not in JSON_SETTINGS}
        # JSON text: any JSON value fits (DynamoDB caps nesting at 32 levels and has no floats).
        for name in JSON_SETTINGS:
            if job.get(name) is not None:
                stored[f"{name}_json"] = json.dumps(job[name], separators=(",", ":"), ensure_ascii=False)
        return {
            **keys.job(workspace_id, job["id"]),
            **stored,
            "type": "job",
            "gsi1pk": keys.jobs_of_workspace(workspace_id),
            "gsi1sk": f"{job['created_at']}#{job['id']}",
        }

    def _name_item(self, workspace_id: str, name: str, job_id: str) -> dict[str, Any]:
        return {**keys.job_name(workspace_id, name), "type": "job_name", "job_id": job_id}

    def _slug_item(self, workspace_id: str, slug: str, job_id: str) -> dict[str, Any]:
        return {**keys.job_slug(workspace_id, slug), "type": "job_slug", "job_id": job_id}

    def create(self, workspace_id: str, job: dict[str, Any]) -> None:
        writes = [
            _put_new(self.table, self._job_item(workspace_id, job)),
            _put_new(self.table, self._name_item(workspace_id, job["name"], job["id"])),
        ]
        if job.get("slug"):
            writes.append(_put_new(self.table, self._slug_item(workspace_id, job["slug"], job["id"])))
        try:
            clients.dynamodb().transact_write_items(TransactItems=writes)
        except ClientError as error:
            reasons = _cancelled_because(error)
            if len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed":
                raise _slug_taken(job["slug"]) from None
            if "ConditionalCheckFailed" in reasons:
                raise _name_taken(job["name"]) from None
            raise

    def get(self, workspace_id: str, job_id: str) -> dict[str, Any] | None:
        response = clients.dynamodb().get_item(
            TableName=self.table, Key=serialize(keys.job(workspace_id, job_id)), ConsistentRead=True
        )
        item = response.get("Item")
        return _public(deserialize(item)) if item else None

    def get_by_slug(self, workspace_id: str, slug: str) -> dict[str, Any] | None:
        response = clients.dynamodb().get_item(
            TableName=self.table, Key=serialize(keys.job_slug(workspace_id, slug)), ConsistentRead=True
        )
        item = response.get("Item")
        return self.get(workspace_id, deserialize(item)["job_id"]) if item else None

    def list(
        self, workspace_id: str, *, limit: int, cursor: str | None, where: Where | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        items, next_cursor = newest_first_where(
            self.table,
            keys.jobs_of_workspace(workspace_id),
            pk_prefix=keys.job_prefix(workspace_id),
            limit=limit,
            cursor=cursor,
            where=where,
        )
        return [_public(i) for i in items], next_cursor

    def replace(self, workspace_id: str, before: dict[str, Any], after: dict[str, Any]) -> None:
        """Write the updated job; a new name or slug moves its uniqueness item in the same
        transaction."""
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
        # Which claim each write makes, for the error when its condition fails.
        claims: list[ConflictError | None] = [
            ConflictError("The job changed meanwhile; read it and try again", code="JOB_CHANGED")
        ]
        if after["name"] != before["name"]:
            writes += [
                _put_new(self.table, self._name_item(workspace_id, after["name"], after["id"])),
                {"Delete": {"TableName": self.table, "Key": serialize(keys.job_name(workspace_id, before["name"]))}},
            ]
            claims += [_name_taken(after["name"]), None]
        old_slug, new_slug = before.get("slug"), after.get("slug")
        if new_slug != old_slug:
            if new_slug:
                writes.append(_put_new(self.table, self._slug_item(workspace_id, new_slug, after["id"])))
                claims.append(_slug_taken(new_slug))
            if old_slug:
                writes.append(
                    {"Delete": {"TableName": self.table, "Key": serialize(keys.job_slug(workspace_id, old_slug))}}
                )
                claims.append(None)
        try:
            clients.dynamodb().transact_write_items(TransactItems=writes)
        except ClientError as error:
            reasons = _cancelled_because(error)
            # A name or slug already taken says more than a concurrent change of the job.
            failed = [claims[n] for n, reason in enumerate(reasons) if reason == "ConditionalCheckFailed"]
            conflict = next((c for c in reversed(failed) if c is not None), None)
            if conflict is not None:
                raise conflict from None
            raise

    def delete(self, workspace_id: str, job: dict[str, Any]) -> None:
        writes: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": serialize(keys.job(workspace_id, job["id"])),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            {"Delete": {"TableName": self.table, "Key": serialize(keys.job_name(workspace_id, job["name"]))}},
        ]
        if job.get("slug"):
            writes.append(
                {"Delete": {"TableName": self.table, "Key": serialize(keys.job_slug(workspace_id, job["slug"]))}}
            )
        try:
            clients.dynamodb().transact_write_items(TransactItems=writes)
        except ClientError as error:
            if _cancelled_because(error)[:1] == ["ConditionalCheckFailed"]:
                raise NotFoundError(f"Job {job['id']} not found", code="JOB_NOT_FOUND") from None
            raise


def _name_taken(name: str) -> ConflictError:
    return ConflictError(f"A job named {name!r} already exists", code=NAME_TAKEN)


def _slug_taken(slug: str) -> ConflictError:
    return ConflictError(f"A job with slug {slug!r} already exists", code=SLUG_TAKEN)


_INTERNAL = {"pk", "sk", "type", "gsi1pk", "gsi1sk"}


def _public(item: dict[str, Any]) -> dict[str, Any]:
    job = {k: v for k, v in item.items() if k not in _INTERNAL and not k.endswith("_json")}
    for name in JSON_SETTINGS:
        if f"{name}_json" in item:
            job[name] = json.loads(item[f"{name}_json"])
    return job


def jobs_by_name(table: str, workspace_id: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """Registered jobs by name (Batches refer to jobs by name); names without a job are absent."""
    from batchops.dal.batch import get_items
    from batchops.dal.items import deserialize

    found = [deserialize(i) for i in get_items(table, [keys.job_name(workspace_id, n) for n in set(names)])]
    ids = {item["job_id"]: item["pk"].rsplit("#JOBNAME#", 1)[-1] for item in found}
    jobs = [deserialize(i) for i in get_items(table, [keys.job(workspace_id, job_id) for job_id in ids])]
    return {job["name"]: _public(job) for job in jobs}
