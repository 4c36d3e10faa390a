"""Jobs in the domain table: the job item, plus one item per name and one per slug that keep
them unique (all written in one transaction, so a name or slug and its job never disagree).

Every write is conditional on what was read: a create on the name and slug being free, a change
or a delete on the job's `updated_at` being the one read, so a concurrent rename can never leave
a name or slug item without its job. Transactions that collide with another (TransactionConflict)
are tried again by `queries.transact`; a condition that failed is a 409 (or 404)."""

from __future__ import annotations

import json
from typing import Any

from batchops.dal import clients, keys
from batchops.dal.batch import get_items
from batchops.dal.items import deserialize, serialize
from batchops.dal.queries import Where, newest_first, transact
from batchops.errors import ConflictError, NotFoundError
from batchops.models.jobs import JSON_SETTINGS

NAME_TAKEN = "JOB_NAME_TAKEN"
SLUG_TAKEN = "JOB_SLUG_TAKEN"
JOB_CHANGED = "JOB_CHANGED"


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
        reasons = transact(writes)
        if reasons is None:
            return
        if len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed":
            raise _slug_taken(job["slug"])
        raise _name_taken(job["name"])

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
        self,
        workspace_id: str,
        *,
        limit: int,
        cursor: str | None,
        tag_key: str | None = None,
        tag_value: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; with `tag_key`, only jobs with that tag (and `tag_value`, if given)."""
        items, next_cursor = newest_first(
            self.table,
            keys.jobs_of_workspace(workspace_id),
            pk_prefix=keys.job_prefix(workspace_id),
            limit=limit,
            cursor=cursor,
            where=Where.label("tags", tag_key, tag_value) if tag_key is not None else None,
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
        claims: list[ConflictError | None] = [_changed()]
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
        reasons = transact(writes)
        if reasons is None:
            return
        # A name or slug already taken says more than a concurrent change of the job.
        failed = [claims[n] for n, reason in enumerate(reasons) if reason == "ConditionalCheckFailed"]
        raise next((c for c in reversed(failed) if c is not None), _changed())

    def delete(self, workspace_id: str, job: dict[str, Any]) -> None:
        """Delete the job as it was read, with its name and slug items. NotFoundError if it is
        gone; ConflictError (JOB_CHANGED) if it changed since (its name or slug may have moved)."""
        writes: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": serialize(keys.job(workspace_id, job["id"])),
                    "ConditionExpression": "attribute_exists(pk) AND updated_at = :seen",
                    "ExpressionAttributeValues": serialize({":seen": job["updated_at"]}),
                }
            },
            {"Delete": {"TableName": self.table, "Key": serialize(keys.job_name(workspace_id, job["name"]))}},
        ]
        if job.get("slug"):
            writes.append(
                {"Delete": {"TableName": self.table, "Key": serialize(keys.job_slug(workspace_id, job["slug"]))}}
            )
        if transact(writes) is None:
            return
        if self.get(workspace_id, job["id"]) is None:
            raise NotFoundError(f"Job {job['id']} not found", code="JOB_NOT_FOUND")
        raise _changed()


def _changed() -> ConflictError:
    return ConflictError("The job changed meanwhile; read it and try again", code=JOB_CHANGED)


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
    found = [deserialize(i) for i in get_items(table, [keys.job_name(workspace_id, n) for n in set(names)])]
    ids = {item["job_id"]: item["pk"].rsplit("#JOBNAME#", 1)[-1] for item in found}
    jobs = [deserialize(i) for i in get_items(table, [keys.job(workspace_id, job_id) for job_id in ids])]
    return {job["name"]: _public(job) for job in jobs}
