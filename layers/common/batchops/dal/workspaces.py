"""Workspaces and API keys in the domain table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from batchops.dal import clients, keys
from batchops.dal.items import deserialize, iso, serialize
from batchops.errors import ConflictError
from batchops.models.workspace import ApiKey, Workspace


def _is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


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
            if _is_condition_failure(error):
                raise ConflictError(
                    f"Workspace {workspace.id} already exists", code="WORKSPACE_EXISTS"
                ) from None
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
            if _is_condition_failure(error):
                raise ConflictError("This API key already exists", code="API_KEY_EXISTS") from None
            raise

    def get_by_hash(self, key_hash: str) -> ApiKey | None:
        response = clients.dynamodb().get_item(TableName=self.table, Key=serialize(keys.api_key(key_hash)))
        item = response.get("Item")
        return ApiKey.model_validate(deserialize(item)) if item else None

    def list_for_workspace(self, workspace_id: str) -> list[ApiKey]:
        found: list[ApiKey] = []
        paginator = clients.dynamodb().get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues={":pk": {"S": keys.api_keys_of_workspace(workspace_id)}},
        ):
            found.extend(ApiKey.model_validate(deserialize(i)) for i in page.get("Items", []))
        return found

    def revoke(self, key_hash: str, at: datetime) -> bool:
        """Mark a key revoked; False when no such key exists."""
        try:
            clients.dynamodb().update_item(
                TableName=self.table,
                Key=serialize(keys.api_key(key_hash)),
                UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :at)",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":at": {"S": iso(at)}},
            )
        except ClientError as error:
            if _is_condition_failure(error):
                return False
            raise
        return True

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
            if not _is_condition_failure(error):
                raise
