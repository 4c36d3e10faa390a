"""Small DynamoDB idioms the repositories share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from batchops.dal import clients
from batchops.dal.items import deserialize


def is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def query_gsi1(table: str, partition: str) -> Iterator[dict[str, Any]]:
    """Every item under one gsi1 partition, in sort-key order, as plain Python values."""
    paginator = clients.dynamodb().get_paginator("query")
    for page in paginator.paginate(
        TableName=table,
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :pk",
        ExpressionAttributeValues={":pk": {"S": partition}},
    ):
        for raw in page.get("Items", []):
            yield deserialize(raw)
