"""Token buckets in DynamoDB, kept as GCRA (the generic cell rate algorithm): a bucket is one
number, `tat`, the time at which it would be full again, in microseconds (so 50,000 events/s
still has a whole-number interval). Taking `cost` tokens moves `tat` forward by cost x
interval, allowed while `tat` stays within burst x interval of now.

A busy bucket costs one conditional UpdateItem per request; an idle one (tat in the past) a
second to restart it. A refused take reads the stored `tat` from the same failed call
(ReturnValuesOnConditionCheckFailure), so Retry-After needs no extra read.

A take larger than the whole bucket (a bulk-track of 5,000 events on a plan of 100 events/s) is
allowed only from a full bucket, and leaves it in debt: `tat` moves cost x interval ahead, so the
workspace waits until that much time has passed. Refusing it outright would make such a request
impossible forever, however long the client waited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from batchops.dal import clients, keys
from batchops.dal.items import serialize
from batchops.dal.queries import is_condition_failure
from batchops.errors import StorageError

IDLE_TTL_SECONDS = 3600  # a bucket untouched this long is deleted (it would be full anyway)


@dataclass(frozen=True)
class Take:
    allowed: bool
    tat_us: int  # after the take when allowed; as stored when refused


def take(table: str, workspace_id: str, bucket: str, *, cost: int, interval_us: int, burst: int, now_us: int) -> Take:
    """Raises StorageError when DynamoDB fails (after botocore's retries)."""
    try:
        return _take(table, workspace_id, bucket, cost=cost, interval_us=interval_us, burst=burst, now_us=now_us)
    except (ClientError, BotoCoreError) as error:
        # AWS's text (table ARN, request ids) stays in the chained cause, for the log: this message
        # reaches clients when bulk-track's events budget cannot be read.
        raise StorageError(f"The {bucket} rate-limit budget could not be read; retry the request") from error


def _take(table: str, workspace_id: str, bucket: str, *, cost: int, interval_us: int, burst: int, now_us: int) -> Take:
    key = serialize(keys.rate_bucket(workspace_id, bucket))
    step = cost * interval_us
    # The latest tat that still leaves room for `cost` tokens.
    ceiling = now_us + burst * interval_us - step
    expires = now_us // 1_000_000 + IDLE_TTL_SECONDS
    try:
        updated = clients.dynamodb().update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET tat = tat + :step, expires_at = :expires",
            ConditionExpression="tat >= :now AND tat <= :ceiling",
            ExpressionAttributeValues=serialize(
                {":step": step, ":now": now_us, ":ceiling": ceiling, ":expires": expires}
            ),
            ReturnValues="UPDATED_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return Take(True, int(updated["Attributes"]["tat"]["N"]))
    except ClientError as error:
        if not is_condition_failure(error):
            raise
        old: dict[str, Any] = dict(error.response.get("Item") or {})  # type: ignore[call-overload]
        stored = old.get("tat", {}).get("N")
    if stored is not None and int(stored) > now_us:
        return Take(False, int(stored))  # too far ahead: over the limit
    # Absent or in the past: the bucket is full; restart it from now (unless another request just did).
    try:
        clients.dynamodb().update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET tat = :fresh, expires_at = :expires",
            ConditionExpression="attribute_not_exists(tat) OR tat <= :now",
            ExpressionAttributeValues=serialize({":fresh": now_us + step, ":now": now_us, ":expires": expires}),
        )
        return Take(True, now_us + step)
    except ClientError as error:
        if not is_condition_failure(error):
            raise
    # Another request restarted it meanwhile: take from the bucket as it is now.
    return _take(table, workspace_id, bucket, cost=cost, interval_us=interval_us, burst=burst, now_us=now_us)
