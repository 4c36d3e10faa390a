"""BatchWriteItem / BatchGetItem retries: moto never returns Unprocessed*, so a scripted client does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from batchops.dal import batch, clients
from batchops.dal.items import deserialize, serialize
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


# ---------------------------------------------------------------- conditional puts (TransactWriteItems)


@pytest.fixture
def dynamo_reset() -> Iterator[None]:
    yield
    clients.reset_clients()


class ScriptedTransactions:
    """TransactWriteItems as DynamoDB answers it: all or nothing, with a cancellation reason per
    item. `existing` fail their condition; `conflicts[pk]` transactions conflict first;
    `invalid` are refused outright."""

    def __init__(self, existing=(), conflicts: dict[str, int] | None = None, invalid=()):
        self.existing = set(existing)
        self.conflicts = dict(conflicts or {})
        self.invalid = set(invalid)
        self.calls: list[list[str]] = []
        self.stored: list[str] = []

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        assert len(TransactItems) <= 100
        pks = [t["Put"]["Item"]["pk"]["S"] for t in TransactItems]
        assert all(t["Put"]["ConditionExpression"] for t in TransactItems)
        self.calls.append(pks)
        reasons = []
        for pk in pks:
            if pk in self.invalid:
                reasons.append({"Code": "ValidationError"})
            elif pk in self.existing:
                reasons.append({"Code": "ConditionalCheckFailed"})
            elif self.conflicts.get(pk, 0) > 0:
                self.conflicts[pk] -= 1
                reasons.append({"Code": "TransactionConflict"})
            else:
                reasons.append({"Code": "None"})
        if any(r["Code"] != "None" for r in reasons):
            error = ClientError(
                {"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"}}, "TransactWriteItems"
            )
            error.response["CancellationReasons"] = reasons  # type: ignore[typeddict-unknown-key]
            raise error
        self.stored += pks
        self.existing |= set(pks)
        return {}


def keyed(n: int, size: int = 0) -> list[dict[str, Any]]:
    return [{"pk": f"k{i}", "sk": "EVENT", "blob": "x" * size} for i in range(n)]


def test_new_items_go_100_per_transaction(dynamo_reset: None) -> None:
    fake = ScriptedTransactions()
    clients.set_client("dynamodb", fake)
    assert batch.put_new_items("T", keyed(250), sleep=lambda s: None) == ([], [])
    assert [len(c) for c in sorted(fake.calls, key=len, reverse=True)] == [100, 100, 50]
    assert sorted(fake.stored) == sorted(f"k{i}" for i in range(250))


def test_transactions_stay_under_4_mb(dynamo_reset: None) -> None:
    fake = ScriptedTransactions()
    clients.set_client("dynamodb", fake)
    assert batch.put_new_items("T", keyed(100, size=100_000), sleep=lambda s: None) == ([], [])
    assert max(len(c) for c in fake.calls) <= 39  # 39 x 100 KB < 4 MB
    assert len(fake.stored) == 100


def test_existing_items_are_reported_and_the_rest_written_again_at_once(dynamo_reset: None) -> None:
    fake = ScriptedTransactions(existing={"k3", "k7"})
    clients.set_client("dynamodb", fake)
    slept: list[float] = []
    assert batch.put_new_items("T", keyed(10), sleep=slept.append) == ([], [3, 7])
    assert len(fake.calls) == 2 and len(fake.calls[1]) == 8
    assert slept == []  # a failed condition is not contention: no backoff
    assert sorted(fake.stored) == sorted(f"k{i}" for i in range(10) if i not in (3, 7))


def test_conflicts_are_retried_with_backoff_and_invalid_items_reported(dynamo_reset: None) -> None:
    fake = ScriptedTransactions(conflicts={"k1": 2}, invalid={"k4"})
    clients.set_client("dynamodb", fake)
    slept: list[float] = []
    assert batch.put_new_items("T", keyed(6), sleep=slept.append) == ([4], [])
    assert len(slept) == 2  # two conflicted attempts, then through
    assert sorted(fake.stored) == ["k0", "k1", "k2", "k3", "k5"]


def test_items_still_conflicting_after_the_last_attempt_are_reported_unwritten(dynamo_reset: None) -> None:
    fake = ScriptedTransactions(conflicts={"k0": 100})
    clients.set_client("dynamodb", fake)
    assert batch.put_new_items("T", keyed(3), max_attempts=3, sleep=lambda s: None) == ([0, 1, 2], [])
    assert fake.stored == []


# ---------------------------------------------------------------- transaction size, in bytes

DYNAMODB_TRANSACTION_LIMIT = 4 * 1024 * 1024


def utf8_size(item: dict[str, Any]) -> int:
    """What DynamoDB counts for an item of string attributes: names and values in UTF-8 bytes."""
    return sum(len(name.encode()) + len(value["S"].encode()) for name, value in item.items())


class SizeCheckingTransactions(ScriptedTransactions):
    """Refuses a whole call as DynamoDB does (ValidationException, no cancellation reasons) when
    its items add up to more than 4 MB of UTF-8, or when it holds an item listed in `too_large`."""

    def __init__(self, too_large=(), **options: Any):
        super().__init__(**options)
        self.too_large = set(too_large)
        self.refused_calls = 0

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        size = sum(utf8_size(t["Put"]["Item"]) for t in TransactItems)
        if size > DYNAMODB_TRANSACTION_LIMIT or any(
            t["Put"]["Item"]["pk"]["S"] in self.too_large for t in TransactItems
        ):
            self.refused_calls += 1
            self.calls.append([t["Put"]["Item"]["pk"]["S"] for t in TransactItems])
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "Transaction request cannot be larger than 4 MB"}},
                "TransactWriteItems",
            )
        return super().transact_write_items(TransactItems)


def test_transactions_are_sized_in_utf8_bytes_not_characters(dynamo_reset: None) -> None:
    # 60 keyed event entries of ~99 KB of CJK text each fit one 6 MiB request body: 33,000
    # characters, 99,000 bytes of UTF-8 apiece, ~6 MB together, where 4 MB is the limit.
    fake = SizeCheckingTransactions()
    clients.set_client("dynamodb", fake)
    rows = [{"pk": f"k{i}", "sk": "EVENT", "summary": "\u65e5\u672c\u8a9e" * 11_000} for i in range(60)]
    assert utf8_size(serialize(rows[0])) > 99_000
    slept: list[float] = []
    assert batch.put_new_items("T", rows, sleep=slept.append) == ([], [])
    assert fake.refused_calls == 0 and slept == []
    assert sorted(fake.stored) == sorted(f"k{i}" for i in range(60))
    assert all(len(call) <= 40 for call in fake.calls)  # 40 x 99 KB is just under 4 MB


def test_emoji_and_names_count_in_bytes_too(dynamo_reset: None) -> None:
    fake = SizeCheckingTransactions()
    clients.set_client("dynamodb", fake)
    # 4-byte characters, and long attribute names, which count as well
    rows = [{"pk": f"k{i}", "sk": "EVENT", "n" * 50_000: "\U0001f600" * 12_500} for i in range(80)]
    assert batch.put_new_items("T", rows, sleep=lambda s: None) == ([], [])
    assert fake.refused_calls == 0 and len(fake.stored) == 80


def test_a_call_dynamodb_refuses_whole_is_not_retried_and_only_the_refused_item_is_reported(
    dynamo_reset: None,
) -> None:
    fake = SizeCheckingTransactions(too_large={"k6"}, existing={"k2"})
    clients.set_client("dynamodb", fake)
    slept: list[float] = []
    assert batch.put_new_items("T", keyed(10), sleep=slept.append) == ([6], [2])
    assert slept == []  # never waited for: the same call would be refused again
    assert len({tuple(c) for c in fake.calls}) == len(fake.calls)  # no call was sent twice
    assert ["k6"] in fake.calls and len(fake.calls) < 2 * 10
    assert sorted(fake.stored) == sorted(f"k{i}" for i in range(10) if i not in (2, 6))


def test_a_lone_item_dynamodb_refuses_is_reported_at_once(dynamo_reset: None) -> None:
    fake = SizeCheckingTransactions(too_large={"k0"})
    clients.set_client("dynamodb", fake)
    assert batch.put_new_items("T", keyed(1), sleep=lambda s: pytest.fail("no backoff")) == ([0], [])
    assert fake.calls == [["k0"]]
