"""BatchWriteItem / BatchGetItem retries: moto never returns Unprocessed*, so a scripted client does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from batchops.dal import batch, clients
from batchops.dal.items import deserialize
from batchops.errors import StorageError


class ScriptedDynamo:
    """Leaves the listed keys unprocessed for the given number of calls, then accepts them."""

    def __init__(self, stubborn: dict[str, int]):
        self.stubborn = dict(stubborn)
        self.write_calls: list[int] = []
        self.written: list[str] = []

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((table, requests),) = RequestItems.items()
        assert len(requests) <= 25
        if any(r["PutRequest"]["Item"]["pk"]["S"].startswith("bad") for r in requests):
            # DynamoDB refuses the whole call when one item is invalid (too large, say)
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "Item size too large"}}, "BatchWriteItem"
            )
        self.write_calls.append(len(requests))
        unprocessed = []
        for request in requests:
            pk = request["PutRequest"]["Item"]["pk"]["S"]
            if self.stubborn.get(pk, 0) > 0:
                self.stubborn[pk] -= 1
                unprocessed.append(request)
            else:
                self.written.append(pk)
        return {"UnprocessedItems": {table: unprocessed} if unprocessed else {}}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((table, request),) = RequestItems.items()
        keys = request["Keys"]
        assert len(keys) <= 100
        first, rest = keys[:1], keys[1:]
        return {
            "Responses": {table: [dict(k) for k in first]},
            "UnprocessedKeys": {table: {**request, "Keys": rest}} if rest else {},
        }


@pytest.fixture
def dynamo() -> Iterator[Any]:
    def install(stubborn: dict[str, int]) -> ScriptedDynamo:
        fake = ScriptedDynamo(stubborn)
        clients.set_client("dynamodb", fake)
        return fake

    yield install
    clients.reset_clients()


def items(n: int) -> list[dict[str, Any]]:
    return [{"pk": f"p{i}", "sk": "s", "value": i} for i in range(n)]


def test_writes_in_chunks_of_25(dynamo):
    fake = dynamo({})
    assert batch.put_items("T", items(60), sleep=lambda _: None) == []
    assert sorted(fake.write_calls) == [10, 25, 25]
    assert sorted(fake.written) == sorted(f"p{i}" for i in range(60))


def test_unprocessed_items_are_retried_until_whole(dynamo):
    fake = dynamo({"p3": 2, "p30": 5})
    delays: list[float] = []
    assert batch.put_items("T", items(40), sleep=delays.append) == []
    assert fake.written.count("p3") == 1 and fake.written.count("p30") == 1
    assert len(fake.written) == 40
    assert len(delays) == 2 + 5
    assert all(0 <= d <= batch.MAX_DELAY for d in delays)


def test_items_still_unprocessed_after_the_last_attempt_are_reported_by_index(dynamo):
    dynamo({"p7": 100, "p33": 100})
    failed = batch.put_items("T", items(40), max_attempts=3, sleep=lambda _: None)
    assert failed == [7, 33]


def test_batch_get_follows_unprocessed_keys(dynamo):
    dynamo({})
    keys = [{"pk": f"p{i}", "sk": "s"} for i in range(5)]
    found = batch.get_items("T", keys, sleep=lambda _: None)
    assert sorted(deserialize(i)["pk"] for i in found) == [f"p{i}" for i in range(5)]


def test_batch_get_that_never_completes_raises(dynamo):
    dynamo({})
    keys = [{"pk": f"p{i}", "sk": "s"} for i in range(5)]
    with pytest.raises(StorageError):
        batch.get_items("T", keys, max_attempts=2, sleep=lambda _: None)


def test_an_item_dynamodb_refuses_fails_alone_and_the_rest_are_written(dynamo):
    fake = dynamo({})
    rows = items(30)
    rows[7]["pk"] = "bad7"
    failed = batch.put_items("T", rows, sleep=lambda _: None)
    assert failed == [7]
    assert sorted(fake.written) == sorted(r["pk"] for n, r in enumerate(rows) if n != 7)
