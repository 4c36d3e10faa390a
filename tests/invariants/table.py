"""The table as the checkers read it: every item, deserialized, in one scan."""

from __future__ import annotations

from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer

_DESERIALIZE = TypeDeserializer()


def table_items(table: str = "DomainTable") -> list[dict[str, Any]]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        items += [{k: _DESERIALIZE.deserialize(v) for k, v in raw.items()} for raw in page["Items"]]
    return items
