"""Small DynamoDB idioms the repositories share."""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from batchops.dal import clients
from batchops.dal.items import deserialize, serialize
from batchops.errors import StorageError, ValidationFailedError

_BAD_CURSOR = [{"field": "cursor", "error": "not a cursor we issued"}]


def is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def conditional_write(operation: str, **request: Any) -> bool:
    """One conditional write (`put_item`, `update_item`, `delete_item`); False when its condition
    did not hold, any other error raised."""
    try:
        getattr(clients.dynamodb(), operation)(**request)
    except ClientError as error:
        if is_condition_failure(error):
            return False
        raise
    return True


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


def encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _cursor_keys(index: str) -> set[str]:
    return {"pk", "sk", f"{index}pk", f"{index}sk"}


def decode_cursor(cursor: str, partition: str, pk_prefix: str, index: str = "gsi1") -> dict[str, Any]:
    """A cursor we issued for this listing: it only ever works for the workspace it came from."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error):
        key = None
    well_formed = (
        isinstance(key, dict)
        and set(key) == _cursor_keys(index)
        and all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values())
    )
    if not well_formed or key[f"{index}pk"]["S"] != partition or not key["pk"]["S"].startswith(pk_prefix):
        raise ValidationFailedError("Invalid cursor", details=_BAD_CURSOR)
    return dict(key)


@dataclass(frozen=True)
class Where:
    """A filter on a listing, applied by DynamoDB after reading (names and values by placeholder)."""

    expression: str
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def all_of(*parts: Where | None) -> Where | None:
        present = [p for p in parts if p is not None]
        if not present:
            return None
        if len(present) == 1:
            # DynamoDB refuses parentheses around a whole expression as redundant.
            return present[0]
        return Where(
            " AND ".join(f"({p.expression})" for p in present),
            {k: v for p in present for k, v in p.names.items()},
            {k: v for p in present for k, v in p.values.items()},
        )

    @staticmethod
    def equals(values: dict[str, Any]) -> Where | None:
        """Every attribute named has the value given."""
        if not values:
            return None
        names = {f"#eq{n}": name for n, name in enumerate(values)}
        expression = " AND ".join(f"#eq{n} = :eq{n}" for n in range(len(values)))
        return Where(expression, names, {f":eq{n}": value for n, value in enumerate(values.values())})

    @staticmethod
    def one_of(attribute: str, allowed: Sequence[Any]) -> Where:
        """The attribute has one of the values given."""
        placeholders = [f":in{n}" for n in range(len(allowed))]
        return Where(
            f"#in IN ({', '.join(placeholders)})",
            {"#in": attribute},
            dict(zip(placeholders, allowed, strict=True)),
        )

    @staticmethod
    def label(attribute: str, key: str, value: str | None) -> Where:
        """A map attribute (tags, metadata) that has `key`, with `value` if given."""
        # Placeholders named after the attribute, so filters on two maps can be combined.
        names = {f"#{attribute}_map": attribute, f"#{attribute}_key": key}
        path = f"#{attribute}_map.#{attribute}_key"
        if value is None:
            return Where(f"attribute_exists({path})", names)
        return Where(f"{path} = :{attribute}_value", names, {f":{attribute}_value": value})


def cursor_for(item: dict[str, Any], index: str = "gsi1") -> str:
    """The cursor that continues a listing of `index` after `item` (plain values)."""
    return encode_cursor({k: {"S": str(item[k])} for k in sorted(_cursor_keys(index))})


# A listing request reads at most this many Query pages (each at most 1 MB). DynamoDB applies a
# Query's Limit before its FilterExpression, so a filter that matches little used to read on
# until it found `limit + 1` items: one GET /v1/runs?batch_id=...&limit=1 over 401 runs made 201
# Queries, and larger partitions ran past API Gateway's 29 s (a 502 under schemathesis).
MAX_LISTING_QUERIES = 4
# With a filter, each Query examines this many index items (unless `limit + 1` is more): at most
# 4 x 250 items, or 4 MB, per request. The answer then holds the matches found, and a cursor
# after the last item examined.
FILTERED_QUERY_ITEMS = 250


def newest_first(
    table: str,
    partition: str,
    *,
    pk_prefix: str,
    limit: int,
    cursor: str | None,
    filters: dict[str, str] | None = None,
    where: Where | None = None,
    index: str = "gsi1",
    sort_prefix: str | None = None,
    strays: Where | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of an index partition (gsi1 unless told), newest first: at most `limit` items
    that have the `filters` values and match `where`, and the cursor of the next page (None on
    the last one).

    `sort_prefix` narrows the partition to the index sort keys that start with it (a key
    condition: only those are read). `strays` is a filter that drops only the odd item sharing
    that key range, so it does not make the listing read more per Query.

    Every request reads at most MAX_LISTING_QUERIES Query pages. A filtered page can therefore
    hold fewer than `limit` items, even none, with a cursor: the one after the last item
    examined, so paging on returns every match exactly once."""
    key_condition = f"{index}pk = :pk"
    values: dict[str, Any] = {":pk": {"S": partition}}
    if sort_prefix is not None:
        key_condition += f" AND begins_with({index}sk, :sk_prefix)"
        values[":sk_prefix"] = {"S": sort_prefix}
    sparse = Where.all_of(Where.equals(filters or {}), where)
    request: dict[str, Any] = {
        "TableName": table,
        "IndexName": index,
        "KeyConditionExpression": key_condition,
        "ExpressionAttributeValues": values,
        "ScanIndexForward": False,
        # Limit counts items examined, not items kept.
        "Limit": limit + 1 if sparse is None else max(limit + 1, FILTERED_QUERY_ITEMS),
    }
    condition = Where.all_of(sparse, strays)
    if condition is not None:
        request["FilterExpression"] = condition.expression
        if condition.names:
            request["ExpressionAttributeNames"] = condition.names
        values.update(serialize(condition.values))
    if cursor:
        start = decode_cursor(cursor, partition, pk_prefix, index)
        if sort_prefix is not None and not start[f"{index}sk"]["S"].startswith(sort_prefix):
            # DynamoDB refuses a start key outside the key condition (a 500 otherwise).
            raise ValidationFailedError("Invalid cursor", details=_BAD_CURSOR)
        request["ExclusiveStartKey"] = start
    found: list[dict[str, Any]] = []
    examined_up_to: dict[str, Any] | None = None
    for _ in range(MAX_LISTING_QUERIES):
        page = clients.dynamodb().query(**request)
        found.extend(page.get("Items", []))
        examined_up_to = page.get("LastEvaluatedKey")
        if len(found) > limit or examined_up_to is None:
            break
        request["ExclusiveStartKey"] = examined_up_to
    next_cursor: str | None = None
    if len(found) > limit:
        found = found[:limit]
        next_cursor = encode_cursor({k: found[-1][k] for k in _cursor_keys(index)})
    elif examined_up_to is not None:
        # The read budget ran out before the partition did: go on after the last item examined.
        next_cursor = encode_cursor({k: examined_up_to[k] for k in _cursor_keys(index)})
    return [deserialize(i) for i in found], next_cursor


def cancellation_reasons(error: ClientError) -> list[str] | None:
    """The per-action reasons of a cancelled TransactWriteItems (None for any other error)."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    return [str(r.get("Code", "None")) for r in error.response.get("CancellationReasons", [])]


def transact(actions: list[dict[str, Any]], *, max_attempts: int = 8) -> list[str] | None:
    """TransactWriteItems with one idempotency token for all its retries; None when it was
    applied, else the per-action reasons of the condition that failed. Conflicts with other
    transactions and throttling are retried with backoff (many items of one batch finish at
    once and all update its counters)."""
    token = uuid.uuid4().hex
    for attempt in range(max_attempts):
        try:
            clients.dynamodb().transact_write_items(TransactItems=actions, ClientRequestToken=token)
            return None
        except ClientError as error:
            reasons = cancellation_reasons(error)
            if reasons is None:
                raise
            if "ConditionalCheckFailed" in reasons:
                return reasons
            time.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))  # noqa: S311 - jitter, not crypto
    raise StorageError("DynamoDB kept refusing a transaction; it will be retried")
