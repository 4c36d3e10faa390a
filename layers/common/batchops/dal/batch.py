"""Batched DynamoDB reads and writes that lose nothing.

BatchWriteItem and BatchGetItem may hand back part of a request as
`UnprocessedItems` / `UnprocessedKeys`; those are retried with exponential
backoff and full jitter. Whatever is still unwritten after the last attempt is
returned to the caller by index, so it can be reported per item, never dropped.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from batchops.dal import clients
from batchops.dal.items import serialize
from batchops.errors import StorageError

WRITE_CHUNK = 25  # BatchWriteItem's limit
GET_CHUNK = 100  # BatchGetItem's limit
TRANSACT_CHUNK = 100  # TransactWriteItems' limit: items per call...
TRANSACT_BYTES = 4_000_000  # ...and their total size (4 MB), with room for the request around them
# Cancellation reasons worth another attempt; any other (ValidationError, ...) never succeeds.
_TRANSIENT = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)
MAX_WORKERS = 4  # bounded fan-out: a 1,000-item write is 40 calls, 4 at a time
BASE_DELAY = 0.05
MAX_DELAY = 2.0

Sleep = Callable[[float], None]


def _backoff(attempt: int) -> float:
    return random.uniform(0, min(MAX_DELAY, BASE_DELAY * 2**attempt))  # noqa: S311 - jitter, not crypto


def _key_of(item: dict[str, Any], key_attrs: Sequence[str]) -> tuple[str, ...]:
    return tuple(str(next(iter(item[a].values()))) for a in key_attrs)


def put_items(
    table: str,
    items: Sequence[dict[str, Any]],
    *,
    key_attrs: Sequence[str] = ("pk", "sk"),
    max_attempts: int = 8,
    sleep: Sleep = time.sleep,
) -> list[int]:
    """Write plain-Python items; return the indexes of those that could not be written."""
    typed = [serialize(i) for i in items]
    chunks = [list(range(n, min(n + WRITE_CHUNK, len(typed)))) for n in range(0, len(typed), WRITE_CHUNK)]

    def write_chunk(indexes: list[int]) -> list[int]:
        by_key = {_key_of(typed[i], key_attrs): i for i in indexes}
        pending = [{"PutRequest": {"Item": typed[i]}} for i in indexes]
        for attempt in range(max_attempts):
            if attempt:
                sleep(_backoff(attempt))
            try:
                response = clients.dynamodb().batch_write_item(RequestItems={table: pending})
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ValidationException":
                    continue  # throttled or transient after botocore's own retries: try again
                # One bad item (too large, say) fails the whole call: find it by writing alone,
                # so the rest are stored and only it is reported.
                if len(pending) == 1:
                    return [by_key[_key_of(pending[0]["PutRequest"]["Item"], key_attrs)]]
                singles = [by_key[_key_of(p["PutRequest"]["Item"], key_attrs)] for p in pending]
                return sorted(i for single in singles for i in write_chunk([single]))
            pending = response.get("UnprocessedItems", {}).get(table, [])
            if not pending:
                return []
        return sorted(by_key[_key_of(p["PutRequest"]["Item"], key_attrs)] for p in pending)

    if len(chunks) <= 1:
        return write_chunk(chunks[0]) if chunks else []
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(chunks))) as pool:
        return sorted(i for failed in pool.map(write_chunk, chunks) for i in failed)


def _value_size(value: dict[str, Any]) -> int:
    """Bytes DynamoDB counts for one typed value, by its item-size rules: strings and names in
    UTF-8 bytes (a CJK character is 3, an emoji 4), binary in bytes, 1 for a boolean or null,
    3 plus 1 per element for a list or map. A number counts about half its digits plus one; its
    text length is used, which is never less."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(str(data).encode("utf-8"))
    if kind == "N":
        return len(str(data)) + 1
    if kind == "B":
        return len(data) if isinstance(data, bytes | bytearray) else len(str(data).encode("utf-8"))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: member}) for member in data)
    if kind == "L":
        return 3 + sum(1 + _value_size(member) for member in data)
    if kind == "M":
        return 3 + sum(1 + len(name.encode("utf-8")) + _value_size(member) for name, member in data.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def _item_size(item: dict[str, Any]) -> int:
    """Bytes DynamoDB counts for a typed item (attribute names plus values), which is what its
    4 MB limit on a transaction's items is measured in. Characters are not bytes: 60 entries of
    CJK text are ~2 MB of characters but ~6 MB of UTF-8."""
    return sum(len(name.encode("utf-8")) + _value_size(value) for name, value in item.items())


def _transaction_chunks(typed: Sequence[dict[str, Any]]) -> list[list[int]]:
    chunks: list[list[int]] = []
    current: list[int] = []
    size = 0
    for index, item in enumerate(typed):
        this_size = _item_size(item)
        if current and (len(current) == TRANSACT_CHUNK or size + this_size > TRANSACT_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(index)
        size += this_size
    if current:
        chunks.append(current)
    return chunks


def put_new_items(
    table: str,
    items: Sequence[dict[str, Any]],
    *,
    condition: str = "attribute_not_exists(pk)",
    values: dict[str, Any] | None = None,
    max_attempts: int = 8,
    sleep: Sleep = time.sleep,
) -> tuple[list[int], list[int]]:
    """Write the items for which `condition` holds (by default: not stored yet), up to 100 per
    TransactWriteItems call, since BatchWriteItem takes no conditions. Returns the indexes still
    unwritten after the last attempt and the indexes whose condition failed.

    A transaction is all or nothing: when some items fail their condition, the call is cancelled
    with a reason per item, and the others are written again without them. A call DynamoDB refuses
    as a whole (ValidationException: an item or the call too large, say) would be refused again,
    so it is never retried: it is halved until each item it cannot take stands alone, and those
    are returned as unwritten while the rest are written."""
    typed = [serialize(i) for i in items]
    typed_values = serialize(values) if values else None

    def write_chunk(indexes: list[int]) -> tuple[list[int], list[int]]:
        pending = list(indexes)
        existing: list[int] = []
        unwritable: list[int] = []
        wait = False
        for attempt in range(max_attempts):
            if wait:
                sleep(_backoff(attempt))
            puts = []
            for i in pending:
                put: dict[str, Any] = {"TableName": table, "Item": typed[i], "ConditionExpression": condition}
                if typed_values:
                    put["ExpressionAttributeValues"] = typed_values
                puts.append({"Put": put})
            try:
                clients.dynamodb().transact_write_items(TransactItems=puts)
                return sorted(unwritable), sorted(existing)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code == "ValidationException":
                    if len(pending) == 1:
                        unwritable += pending
                        return sorted(unwritable), sorted(existing)
                    for half in (pending[: len(pending) // 2], pending[len(pending) // 2 :]):
                        refused, found = write_chunk(half)
                        unwritable += refused
                        existing += found
                    return sorted(unwritable), sorted(existing)
                reasons = [str(r.get("Code") or "None") for r in error.response.get("CancellationReasons") or []]
                if code != "TransactionCanceledException" or len(reasons) != len(pending):
                    wait = True  # throttled or transient after botocore's own retries: try again
                    continue
            outcome = dict(zip(pending, reasons, strict=True))
            existing += [i for i, r in outcome.items() if r == "ConditionalCheckFailed"]
            unwritable += [i for i, r in outcome.items() if r not in _TRANSIENT | {"None", "ConditionalCheckFailed"}]
            pending = [i for i, r in outcome.items() if r in _TRANSIENT | {"None"}]
            # Items cancelled only because another failed its condition can go again at once.
            wait = any(r in _TRANSIENT for r in reasons)
            if not pending:
                break
        return sorted(unwritable + pending), sorted(existing)

    chunks = _transaction_chunks(typed)
    if len(chunks) <= 1:
        return write_chunk(chunks[0]) if chunks else ([], [])
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(chunks))) as pool:
        results = list(pool.map(write_chunk, chunks))
    return sorted(i for failed, _ in results for i in failed), sorted(i for _, found in results for i in found)


def get_items(
    table: str,
    keys: Sequence[dict[str, str]],
    *,
    projection: str | None = None,
    max_attempts: int = 8,
    sleep: Sleep = time.sleep,
) -> list[dict[str, Any]]:
    """Read items by key (strongly consistent); typed items in no particular order."""
    found: list[dict[str, Any]] = []
    typed_keys = [serialize(k) for k in keys]
    for start in range(0, len(typed_keys), GET_CHUNK):
        request: dict[str, Any] = {"Keys": typed_keys[start : start + GET_CHUNK], "ConsistentRead": True}
        if projection:
            request["ProjectionExpression"] = projection
        for attempt in range(max_attempts):
            if attempt:
                sleep(_backoff(attempt))
            try:
                response = clients.dynamodb().batch_get_item(RequestItems={table: request})
            except ClientError as error:
                # Throttled or unavailable beyond botocore's own retries: a 503 to the client, like
                # keys that stayed unprocessed, rather than an unhandled error.
                raise StorageError(f"Could not read from {table}") from error
            found.extend(response.get("Responses", {}).get(table, []))
            unprocessed = response.get("UnprocessedKeys", {}).get(table)
            if not unprocessed:
                break
            request = unprocessed
        else:
            raise StorageError(f"Could not read all keys from {table} after retries")
    return found
