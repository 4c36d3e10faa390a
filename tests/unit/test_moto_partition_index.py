"""moto's Query reading one partition (local/batchops_local/moto_dynamodb.py): the same pages as
moto's own Query, which walks the whole table, after any sequence of writes, and no walk of the
table once a GSI's index is built."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.dynamodb.models.table import Table

from batchops_local.moto_dynamodb import install

PKS = ("a", "b", "c")
SKS = ("JOB#0", "JOB#1", "JOB#2", "JOB#3", "META", "RUN#1")
GPKS = ("g1", "g2", "g3")


@dataclass(frozen=True)
class Query:
    """One Query, paged with Limit until LastEvaluatedKey runs out."""

    index: str | None
    key_condition: str
    values: dict[str, dict[str, str]]
    forward: bool
    limit: int | None


def _key_conditions() -> list[tuple[str | None, str, dict[str, dict[str, str]]]]:
    found: list[tuple[str | None, str, dict[str, dict[str, str]]]] = []
    for pk in PKS:
        found += [
            (None, "pk = :p", {":p": {"S": pk}}),
            (None, "pk = :p AND begins_with(sk, :s)", {":p": {"S": pk}, ":s": {"S": "JOB#"}}),
            (None, "pk = :p AND sk BETWEEN :x AND :y", {":p": {"S": pk}, ":x": {"S": "JOB#1"}, ":y": {"S": "META"}}),
            ("lsi", "pk = :p AND lsk > :x", {":p": {"S": pk}, ":x": {"S": "1"}}),
        ]
    for gpk in GPKS:
        found += [
            ("gsi", "gpk = :g", {":g": {"S": gpk}}),
            ("gsi", "gpk = :g AND begins_with(gsk, :s)", {":g": {"S": gpk}, ":s": {"S": "1"}}),
            ("gsi", "gpk = :g AND gsk BETWEEN :x AND :y", {":g": {"S": gpk}, ":x": {"S": "1"}, ":y": {"S": "3"}}),
        ]
    return found


QUERIES = [
    Query(index, condition, values, forward, limit)
    for index, condition, values in _key_conditions()
    for forward in (True, False)
    for limit in (None, 2)
]

keys = st.tuples(st.sampled_from(PKS), st.sampled_from(SKS))
index_values = st.one_of(st.none(), st.sampled_from(GPKS))
sort_values = st.sampled_from(("1", "2", "3", "10"))
put_op = st.tuples(st.just("put"), keys, index_values, sort_values)
update_op = st.tuples(st.just("update"), keys, index_values, sort_values)
delete_op = st.tuples(st.just("delete"), keys)
transaction_op = st.tuples(
    st.just("transaction"), st.lists(st.one_of(put_op, update_op, delete_op), min_size=1, max_size=3), st.booleans()
)
batch_op = st.tuples(st.just("batch"), st.lists(st.one_of(put_op, delete_op), min_size=1, max_size=4))
operations = st.lists(st.one_of(put_op, update_op, delete_op, transaction_op, batch_op), max_size=25)


@contextmanager
def dynamodb() -> Iterator[Any]:
    install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        attributes = ("pk", "sk", "gpk", "gsk", "lsk")
        client.create_table(
            TableName="T",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in attributes],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "gsi",
                    "KeySchema": [
                        {"AttributeName": "gpk", "KeyType": "HASH"},
                        {"AttributeName": "gsk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            LocalSecondaryIndexes=[
                {
                    "IndexName": "lsi",
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "lsk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def key(pk: str, sk: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def item(op: tuple[Any, ...]) -> dict[str, dict[str, str]]:
    _, (pk, sk), gpk, sort = op
    found = {**key(pk, sk), "gsk": {"S": sort}, "lsk": {"S": sort}}
    return found | ({"gpk": {"S": gpk}} if gpk else {})


def update_arguments(op: tuple[Any, ...]) -> dict[str, Any]:
    _, (pk, sk), gpk, sort = op
    values: dict[str, Any] = {":s": {"S": sort}}
    expression = "SET gsk = :s, lsk = :s"
    if gpk:
        expression += ", gpk = :g"
        values[":g"] = {"S": gpk}
    else:
        expression += " REMOVE gpk"
    return {"Key": key(pk, sk), "UpdateExpression": expression, "ExpressionAttributeValues": values}


def apply(client: Any, op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "put":
        client.put_item(TableName="T", Item=item(op))
    elif kind == "update":
        client.update_item(TableName="T", **update_arguments(op))
    elif kind == "delete":
        client.delete_item(TableName="T", Key=key(*op[1]))
    elif kind == "batch":
        requests: dict[str, Any] = {}
        for entry in op[1]:  # one request per key: DynamoDB refuses duplicates in a batch
            if entry[0] == "put":
                requests[str(entry[1])] = {"PutRequest": {"Item": item(entry)}}
            else:
                requests[str(entry[1])] = {"DeleteRequest": {"Key": key(*entry[1])}}
        client.batch_write_item(RequestItems={"T": list(requests.values())})
    else:
        transact(client, op[1], cancel=op[2])


def transact(client: Any, entries: list[tuple[Any, ...]], cancel: bool) -> None:
    """A transaction of the entries (one per key), cancelled by a failing condition when `cancel`."""
    chosen = {str(entry[1]): entry for entry in entries}
    items: list[dict[str, Any]] = []
    for entry in chosen.values():
        if entry[0] == "put":
            items.append({"Put": {"TableName": "T", "Item": item(entry)}})
        elif entry[0] == "update":
            items.append({"Update": {"TableName": "T", **update_arguments(entry)}})
        else:
            items.append({"Delete": {"TableName": "T", "Key": key(*entry[1])}})
    if cancel:
        # Last, so the cancelled transaction's earlier writes have happened and must be undone.
        items[-1][next(iter(items[-1]))]["ConditionExpression"] = "attribute_exists(never)"
    try:
        client.transact_write_items(TransactItems=items)
    except ClientError as exc:
        assert cancel and exc.response["Error"]["Code"] == "TransactionCanceledException"


def pages(client: Any, query: Query) -> list[tuple[list[dict[str, Any]], dict[str, Any] | None]]:
    arguments: dict[str, Any] = {
        "TableName": "T",
        "KeyConditionExpression": query.key_condition,
        "ExpressionAttributeValues": query.values,
        "ScanIndexForward": query.forward,
    }
    if query.index:
        arguments["IndexName"] = query.index
    if query.limit:
        arguments["Limit"] = query.limit
    found: list[tuple[list[dict[str, Any]], dict[str, Any] | None]] = []
    while True:
        response = client.query(**arguments)
        last = response.get("LastEvaluatedKey")
        found.append((response["Items"], last))
        if not last:
            return found
        arguments["ExclusiveStartKey"] = last


@contextmanager
def moto_walking_the_table() -> Iterator[None]:
    patched = Table.query
    Table.query = patched.__wrapped__  # type: ignore[attr-defined,method-assign]
    try:
        yield
    finally:
        Table.query = patched  # type: ignore[method-assign]


def all_pages(client: Any, queries: list[Query]) -> list[Any]:
    return [pages(client, query) for query in queries]


# A GSI query first in every example: it builds the index that the writes after it must maintain.
BUILDS_THE_INDEX = next(q for q in QUERIES if q.index == "gsi")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=operations, after=operations, queries=st.lists(st.sampled_from(QUERIES), min_size=1, max_size=5))
def test_queries_read_what_moto_reads_walking_the_whole_table(before, after, queries):
    queries = [BUILDS_THE_INDEX, *queries]
    with dynamodb() as client:
        for op in before:
            apply(client, op)
        for step in ("before", "after"):
            if step == "after":
                for op in after:
                    apply(client, op)
            found = all_pages(client, queries)
            with moto_walking_the_table():
                expected = all_pages(client, queries)
            assert found == expected, step


def test_a_query_reads_the_partition_not_the_table(monkeypatch: pytest.MonkeyPatch):
    with dynamodb() as client:
        for n in range(30):
            client.put_item(
                TableName="T", Item={**key(f"p{n % 3}", f"JOB#{n}"), "gpk": {"S": f"g{n % 3}"}, "gsk": {"S": str(n)}}
            )
        query = QUERIES[-1]
        pages(client, query)  # builds the GSI's index, once
        client.update_item(TableName="T", **update_arguments(("update", ("p0", "JOB#0"), "g3", "2")))
        walks: list[int] = []
        real: Callable[[Table], Any] = Table.all_items

        def counted(self: Table) -> Any:
            walks.append(1)
            return real(self)

        monkeypatch.setattr(Table, "all_items", counted)
        table_pages = pages(client, Query(None, "pk = :p", {":p": {"S": "p1"}}, True, 3))
        gsi_pages = pages(client, Query("gsi", "gpk = :g", {":g": {"S": "g3"}}, True, None))
        assert walks == []
        assert sum(len(items) for items, _ in table_pages) == 10 and len(table_pages) == 4
        assert [i["sk"]["S"] for items, _ in gsi_pages for i in items] == ["JOB#0"]
