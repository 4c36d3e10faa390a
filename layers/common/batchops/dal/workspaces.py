"""Workspaces and API keys in the domain table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from batchops.dal import clients, keys
from batchops.dal.items import deserialize, iso, serialize
from batchops.dal.queries import conditional_write, is_condition_failure, query_gsi1
from batchops.errors import ConflictError
from batchops.models.workspace import ApiKey, Workspace


class WorkspaceRepository:
    def __init__(self, table: str):
        self.table = table

    def create(self, workspace: Workspace) -> None:
        item = {**keys.workspace(workspace.id), **workspace.model_dump(mode="json"), "type": "workspace"}
        try:
            clients.dynamodb().put_item(
                TableName=self.table, Item=serialize(item), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as error:
            if is_condition_failure(error):
                raise ConflictError(f"Workspace {workspace.id} already exists", code="WORKSPACE_EXISTS") from None
            raise

    def get(self, workspace_id: str) -> Workspace | None:
        response = clients.dynamodb().get_item(
            TableName=self.table, Key=serialize(keys.workspace(workspace_id)), ConsistentRead=True
        )
        item = response.get("Item")
        return Workspace.model_validate(deserialize(item)) if item else None


class ApiKeyRepository:
    def __init__(self, table: str):
        self.table = table

    def create(self, key: ApiKey) -> None:
        item: dict[str, Any] = {
            **keys.api_key(key.key_hash),
            **key.model_dump(mode="json", exclude_none=True),
            "type": "api_key",
            "gsi1pk": keys.api_keys_of_workspace(key.workspace_id),
            "gsi1sk": key.key_id,
        }
        try:
            clients.dynamodb().put_item(
                TableName=self.table, Item=serialize(item), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as error:
            if is_condition_failure(error):
                raise ConflictError("This API key already exists", code="API_KEY_EXISTS") from None
            raise

    def get_by_hash(self, key_hash: str) -> ApiKey | None:
        response = clients.dynamodb().get_item(TableName=self.table, Key=serialize(keys.api_key(key_hash)))
        item = response.get("Item")
        return ApiKey.model_validate(deserialize(item)) if item else None

    def list_for_workspace(self, workspace_id: str) -> list[ApiKey]:
        return [ApiKey.model_validate(i) for i in query_gsi1(self.table, keys.api_keys_of_workspace(workspace_id))]

    def revoke(self, key_hash: str, at: datetime) -> bool:
        """Mark a key revoked; False when no such key exists."""
        return conditional_write(
            "update_item",
            TableName=self.table,
            Key=serialize(keys.api_key(key_hash)),
            UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :at)",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":at": {"S": iso(at)}},
        )

    def touch(self, key_hash: str, now: datetime, not_since: datetime) -> None:
        """Record last use, at most once per interval: one conditional write, skipped when fresh."""
        try:
            clients.dynamodb().update_item(
                TableName=self.table,
                Key=serialize(keys.api_key(key_hash)),
                UpdateExpression="SET last_used_at = :now",
                ConditionExpression="attribute_exists(pk) AND "
                "(attribute_not_exists(last_used_at) OR last_used_at < :since)",
                ExpressionAttributeValues={":now": {"S": iso(now)}, ":since": {"S": iso(not_since)}},
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise
