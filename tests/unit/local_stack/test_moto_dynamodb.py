"""moto's DynamoDB as the local stack installs it (tests/conftest.py too): atomic conditional writes,
and TransactWriteItems with moto's own conditions and cancellation reasons, with item backups
instead of whole-table copies."""

from __future__ import annotations

import copy
import sys
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb import models
from moto.dynamodb.models.table import Table

from batchops_local.moto_dynamodb import install


@pytest.fixture
def table() -> Iterator[Any]:
    install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="T",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def put(pk: str, value: str = "new", condition: str | None = "attribute_not_exists(pk)") -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": "T", "Item": {"pk": {"S": pk}, "sk": {"S": "s"}, "v": {"S": value}}}
    if condition:
        op["ConditionExpression"] = condition
    return {"Put": op}


def items(client: Any) -> dict[str, str]:
    return {i["pk"]["S"]: i["v"]["S"] for i in client.scan(TableName="T")["Items"]}


def test_a_transaction_applies_every_item(table):
    table.transact_write_items(TransactItems=[put("a"), put("b")])
    assert items(table) == {"a": "new", "b": "new"}


def test_a_cancelled_transaction_leaves_everything_as_it_was(table):
    for pk in ("old", "taken"):
        table.put_item(TableName="T", Item={"pk": {"S": pk}, "sk": {"S": "s"}, "v": {"S": "kept"}})
    update = {
        "Update": {
            "TableName": "T",
            "Key": {"pk": {"S": "old"}, "sk": {"S": "s"}},
            "UpdateExpression": "SET v = :v",
            "ExpressionAttributeValues": {":v": {"S": "changed"}},
        }
    }
    with pytest.raises(ClientError) as cancelled:
        # The first two succeed inside moto before the third fails its condition.
        table.transact_write_items(TransactItems=[put("fresh"), update, put("taken", "again")])
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "ConditionalCheckFailed"]
    assert items(table) == {"old": "kept", "taken": "kept"}


def test_tables_are_no_longer_copied(table, monkeypatch):
    backend_table = models.dynamodb_backends["123456789012"]["us-east-1"].tables["T"]
    # moto's own version deep-copies the whole table once per item of every transaction.
    assert models.copy.deepcopy(backend_table) is backend_table
    copied: list[Any] = []
    real = copy.deepcopy
    monkeypatch.setattr(copy, "deepcopy", lambda value, memo=None: (copied.append(value), real(value, memo))[1])
    table.put_item(TableName="T", Item={"pk": {"S": "t3"}, "sk": {"S": "s"}, "v": {"S": "old"}})
    with pytest.raises(ClientError):
        table.transact_write_items(TransactItems=[put(f"t{n}") for n in range(5)])
    # Only the one item that existed was saved (the others were absent), never a table.
    assert not any(isinstance(c, Table) for c in copied)
    assert [c.hash_key.value for c in copied if type(c).__name__ == "Item"] == ["t3"]


def test_transactions_and_plain_writes_on_many_threads(table):
    errors: list[BaseException] = []

    def transactions(worker: int) -> None:
        try:
            for n in range(20):
                table.transact_write_items(TransactItems=[put(f"w{worker}-{n}-{i}") for i in range(10)])
        except BaseException as error:
            errors.append(error)

    def plain() -> None:
        for n in range(300):
            table.put_item(TableName="T", Item={"pk": {"S": f"p{n}"}, "sk": {"S": "s"}, "v": {"S": "x"}})

    threads = [threading.Thread(target=transactions, args=(w,)) for w in range(4)] + [threading.Thread(target=plain)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(items(table)) == 4 * 20 * 10 + 300


def test_one_conditional_update_has_one_winner_however_threads_interleave(table: Any) -> None:
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # a thread switch at nearly every bytecode: races show at once
    try:
        trials = []
        for _ in range(50):
            table.put_item(TableName="T", Item={"pk": {"S": "race"}, "sk": {"S": "s"}, "n": {"N": "0"}})
            winners: list[int] = []

            def claim(winners: list[int] = winners) -> None:
                try:
                    table.update_item(
                        TableName="T",
                        Key={"pk": {"S": "race"}, "sk": {"S": "s"}},
                        UpdateExpression="SET n = :one",
                        ConditionExpression="n = :zero",
                        ExpressionAttributeValues={":one": {"N": "1"}, ":zero": {"N": "0"}},
                    )
                    winners.append(1)
                except ClientError as error:
                    assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"

            threads = [threading.Thread(target=claim) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            trials.append(len(winners))
    finally:
        sys.setswitchinterval(switch)
    assert trials == [1] * 50
