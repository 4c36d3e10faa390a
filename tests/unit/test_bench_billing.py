"""bench/billing.py counts what AWS bills: item sizes and capacity units as the DynamoDB developer
guide's examples give them, transactions doubled, SQS payloads in 64 KB chunks, and a small run
of a real path beside the naive baseline whose counters agree with each other."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bench import billing
from bench.billing import (
    Gsi,
    Meter,
    item_size,
    number_size,
    read_units,
    sqs_chunks,
    value_size,
    write_units,
)

KB = 1024


# ------------------------------------------------------------------ sizes (CapacityUnitCalculations)
def test_strings_are_name_plus_utf8_value_bytes() -> None:
    assert item_size({"name": {"S": "abc"}}) == 4 + 3
    assert item_size({"é": {"S": "€"}}) == 2 + 3  # UTF-8 bytes, not characters


def test_numbers_are_one_byte_per_two_significant_digits_plus_one() -> None:
    assert number_size("12345") == 3 + 1
    assert number_size("1000") == 1 + 1  # trailing zeros trimmed
    assert number_size("0.0012") == 1 + 1  # leading zeros trimmed
    assert number_size("-123.45") == 3 + 1
    assert item_size({"n": {"N": "42"}}) == 1 + 2


def test_binary_boolean_null_and_sets() -> None:
    assert item_size({"b": {"B": b"\x00\x01\x02"}}) == 1 + 3  # raw bytes, not base64
    assert item_size({"flag": {"BOOL": True}}) == 4 + 1
    assert item_size({"none": {"NULL": True}}) == 4 + 1
    assert value_size({"SS": ["ab", "c"]}) == 3


def test_lists_and_maps_cost_three_bytes_plus_one_per_element() -> None:
    assert value_size({"L": []}) == 3
    assert value_size({"M": {}}) == 3
    assert item_size({"l": {"L": [{"S": "ab"}, {"N": "1"}]}}) == 1 + 3 + (1 + 2) + (1 + 2)
    assert item_size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + (1 + 1 + 1)


# ------------------------------------------------------------------ units (read-write-operations)
def test_read_units_follow_the_guide_examples() -> None:
    assert read_units(3500, consistent=True) == 1  # "reading a 3,500-byte item ... same as a 4 KB item"
    assert read_units(10 * KB, consistent=True) == 3  # 10 KB rounds up to 12 KB
    assert read_units(8 * KB, consistent=True) == 2  # 8 KB: 2 strongly consistent
    assert read_units(8 * KB, consistent=False) == 1  # ... 1 eventually consistent
    # BatchGetItem of 1.5 KB and 6.5 KB items is 4 KB + 8 KB, not 8 KB
    assert read_units(int(1.5 * KB), consistent=True) + read_units(int(6.5 * KB), consistent=True) == 3
    assert read_units(0, consistent=False) == 0.5  # a missing item still reads


def test_write_units_are_per_started_kilobyte() -> None:
    assert write_units(1) == 1
    assert write_units(KB) == 1
    assert write_units(KB + 1) == 2
    assert write_units(3 * KB) == 3  # "a standard write of a 3 KB item: three WCUs"


def test_sqs_is_billed_per_started_64_kb_chunk() -> None:
    assert sqs_chunks(0) == 1
    assert sqs_chunks(64 * KB) == 1
    assert sqs_chunks(64 * KB + 1) == 2
    assert sqs_chunks(256 * KB) == 4  # AWS's example: a 256 KB payload is 4 requests


# ------------------------------------------------------------------ the hook on real requests
@pytest.fixture
def meter() -> Iterator[Meter]:
    with mock_aws():
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName="T",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        made = Meter({})
        made.install()
        yield made


def _dynamodb() -> Any:
    from batchops.dal import clients

    return clients.dynamodb()


def test_transact_write_items_bill_twice_a_standard_write(meter: Meter) -> None:
    _dynamodb().put_item(TableName="T", Item={"pk": {"S": "a"}, "pad": {"S": "x" * 1500}})
    assert meter.current.wru == 2  # 1.5 KB: two started KB
    _dynamodb().transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "T", "Item": {"pk": {"S": "b"}, "pad": {"S": "x" * 1500}}}},
            {"Put": {"TableName": "T", "Item": {"pk": {"S": "c"}}}},
        ]
    )
    assert meter.current.wru == 2 + 2 * 2 + 2 * 1


def test_update_bills_the_larger_image_and_a_failed_condition_still_bills(meter: Meter) -> None:
    _dynamodb().put_item(TableName="T", Item={"pk": {"S": "a"}, "filler": {"S": "x" * 3000}})
    assert meter.current.wru == 3
    _dynamodb().update_item(TableName="T", Key={"pk": {"S": "a"}}, UpdateExpression="REMOVE filler")
    assert meter.current.wru == 3 + 3  # billed on the 3 KB item before, not the tiny one after
    with pytest.raises(_dynamodb().exceptions.ConditionalCheckFailedException):
        _dynamodb().put_item(TableName="T", Item={"pk": {"S": "a"}}, ConditionExpression="attribute_not_exists(pk)")
    assert meter.current.wru == 3 + 3 + 1
    _dynamodb().get_item(TableName="T", Key={"pk": {"S": "a"}})
    _dynamodb().get_item(TableName="T", Key={"pk": {"S": "a"}}, ConsistentRead=True)
    assert meter.current.rru == 0.5 + 1


def test_gsi_writes_follow_the_index_keys(meter: Meter) -> None:
    meter._tables["T"] = (("pk",), (Gsi("g", ("gk",), all_attributes=False),))
    _dynamodb().put_item(TableName="T", Item={"pk": {"S": "a"}, "gk": {"S": "1"}})
    assert meter.current.gsi_wru == 1  # added to the index
    _dynamodb().put_item(TableName="T", Item={"pk": {"S": "a"}, "gk": {"S": "1"}, "x": {"S": "y"}})
    assert meter.current.gsi_wru == 1  # KEYS_ONLY: an unprojected attribute writes nothing
    _dynamodb().put_item(TableName="T", Item={"pk": {"S": "a"}, "gk": {"S": "2"}})
    assert meter.current.gsi_wru == 1 + 2  # the index key moved: delete + put
    _dynamodb().delete_item(TableName="T", Key={"pk": {"S": "a"}})
    assert meter.current.gsi_wru == 1 + 2 + 1


def test_sqs_batches_are_billed_on_their_total_payload(meter: Meter) -> None:
    from batchops.dal import clients

    sqs = clients.client("sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    before = meter.current.sqs_requests
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": "x" * (10 * KB)} for n in range(10)])
    assert meter.current.sqs_requests - before == 2  # 100 KB: two 64 KB chunks


# ------------------------------------------------------------------ a small run
def test_a_small_run_of_a_path_and_the_baseline_counts_consistently() -> None:
    billing.prepare()
    [result] = billing._measure(
        "event log",
        50,
        lambda made: billing.path_event_log(made, 50),
        per_request=50,
    )
    path, naive = result.usage, result.baseline
    assert result.items == 50
    assert path.invocations == path.api_requests == 2  # one POST, one GET page
    assert path.wru >= 50 and path.rru > 0 and path.gb_s > 0
    # The baseline: one ingest request, 50 SendMessage, 5 worker batches of 10, 50 PutItem.
    assert naive.api_requests == 1
    assert naive.invocations == 1 + 5
    assert naive.sqs_requests == 50
    assert naive.esm_sqs_requests == 5 + 5  # a receive and a delete per delivered batch
    assert naive.wru == 50
    assert naive.aws_requests == 50 + 50
    assert result.dollars_per_million > 0 and result.baseline_per_million > 0


def test_moto_reports_a_constant_consumed_capacity_so_the_bench_sizes_items_itself(meter: Meter) -> None:
    """Cross-check with moto's ConsumedCapacity: they agree on a small item; on a 3 KB item moto
    still says 1.0 (a constant per operation), which is why the bench does not read it."""
    small = _dynamodb().put_item(TableName="T", Item={"pk": {"S": "s"}}, ReturnConsumedCapacity="TOTAL")
    assert small["ConsumedCapacity"]["CapacityUnits"] == meter.current.wru == 1
    large = _dynamodb().put_item(
        TableName="T", Item={"pk": {"S": "l"}, "filler": {"S": "x" * 3000}}, ReturnConsumedCapacity="TOTAL"
    )
    assert large["ConsumedCapacity"]["CapacityUnits"] == 1.0
    assert meter.current.wru == 1 + 3
