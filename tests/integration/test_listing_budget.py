"""Filtered listings (issue 13, R8): every request costs a bounded number of Queries, however few
items match, and paging with the cursor still returns every match exactly once, newest first.

DynamoDB applies a Query's Limit before its FilterExpression (moto too), so a listing that asked
for `limit + 1` items per Query made one Query per two items examined: 201 Queries for one
`GET /v1/runs?batch_id=...&limit=1` over 401 runs."""

from __future__ import annotations

import uuid

import boto3
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from batchops.dal import queries
from batchops.dal.queries import newest_first
from tests.support import counting_dynamodb_calls

# The per-request read budget docs/scaling.md states ("Filtered listings").
MAX_QUERIES = 4
PARTITION = "WS#ws-a#THINGS"
PK_PREFIX = "WS#ws-a#THING#"


def new_table() -> str:
    """A table of its own per example: moto's Query scans the whole table."""
    name = f"listing-{uuid.uuid4().hex[:12]}"
    boto3.client("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "gsi1pk", "gsi1sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    return name


def store(table: str, layout: list[bool]) -> None:
    """Item n (created n-th, so listed in reverse) matches the filter when layout[n]."""
    client = boto3.client("dynamodb")
    items = [
        {
            "pk": {"S": f"{PK_PREFIX}{n:05d}"},
            "sk": {"S": "THING"},
            "gsi1pk": {"S": PARTITION},
            "gsi1sk": {"S": f"2026-01-01T00:00:00.{n:06d}Z#{n}"},
            "n": {"N": str(n)},
            "kind": {"S": "match" if matches else "other"},
        }
        for n, matches in enumerate(layout)
    ]
    for start in range(0, len(items), 25):
        client.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]})


def read_all(table: str, limit: int, filtered: bool) -> list[int]:
    """Page through with the cursor; every request within the budget."""
    seen: list[int] = []
    cursor = None
    for _ in range(10_000):
        with counting_dynamodb_calls() as calls:
            items, cursor = newest_first(
                table,
                PARTITION,
                pk_prefix=PK_PREFIX,
                limit=limit,
                cursor=cursor,
                filters={"kind": "match"} if filtered else None,
            )
        assert calls["Query"] <= MAX_QUERIES, calls
        assert len(items) <= limit
        if not filtered:
            assert len(items) == limit or cursor is None  # unfiltered pages are full
        seen += [int(i["n"]) for i in items]
        if cursor is None:
            return seen
    raise AssertionError("the listing never ended")


@st.composite
def layouts(draw: st.DrawFn) -> list[bool]:
    """Which items match: none, a few, half, all; anywhere in the partition."""
    size = draw(st.integers(0, 300))
    percent = draw(st.sampled_from([0, 1, 5, 50, 100]))
    return [draw(st.integers(0, 99)) < percent for _ in range(size)]


@pytest.mark.usefixtures("aws")
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(layout=layouts(), limit=st.integers(1, 60), filtered=st.booleans(), per_query=st.sampled_from([3, 10, None]))
# The case: one match, the oldest of 301 items, one per page.
@example(layout=[True] + [False] * 300, limit=1, filtered=True, per_query=None)
@example(layout=[False] * 120 + [True] * 3 + [False] * 120, limit=2, filtered=True, per_query=3)
def test_every_request_is_bounded_and_paging_returns_every_match_once(
    layout: list[bool], limit: int, filtered: bool, per_query: int | None
) -> None:
    table = new_table()
    store(table, layout)
    with pytest.MonkeyPatch.context() as patch:
        if per_query is not None:
            # Small Query pages make the budget run out inside these small partitions.
            patch.setattr(queries, "FILTERED_QUERY_ITEMS", per_query, raising=False)
        seen = read_all(table, limit, filtered)
    expected = [n for n in reversed(range(len(layout))) if layout[n] or not filtered]
    assert seen == expected


@pytest.mark.usefixtures("aws")
def test_a_cursor_outside_the_listings_key_range_is_refused() -> None:
    from batchops.errors import ValidationFailedError

    table = new_table()
    store(table, [True] * 5)
    _, cursor = newest_first(table, PARTITION, pk_prefix=PK_PREFIX, limit=1, cursor=None)
    assert cursor is not None
    with pytest.raises(ValidationFailedError):
        newest_first(table, PARTITION, pk_prefix=PK_PREFIX, limit=1, cursor=cursor, sort_prefix="2027-")
