"""The SQS event source mapping's record shape and partial-batch rules."""

from __future__ import annotations

import json

from batchops_local.sqs import INVOKE_PAYLOAD_BYTES, fitting, lambda_message_attributes, messages_to_delete, sqs_record
from batchops_local.template import Queue

MESSAGES = [{"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": "{}"} for i in range(3)]


def ids(messages) -> list[str]:
    return [m["MessageId"] for m in messages]


def test_without_report_batch_item_failures_success_deletes_all() -> None:
    assert ids(messages_to_delete(MESSAGES, {"batchItemFailures": [{"itemIdentifier": "m1"}]}, False)) == [
        "m0",
        "m1",
        "m2",
    ]


def test_partial_batch_response_rules() -> None:
    partial = {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert ids(messages_to_delete(MESSAGES, partial, True)) == ["m0", "m2"]
    # Empty, null or absent failures, or no response at all: complete success.
    for result in (None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}):
        assert ids(messages_to_delete(MESSAGES, result, True)) == ["m0", "m1", "m2"]
    # An invalid response or identifier fails the whole batch.
    for result in (
        "ok",
        {"batchItemFailures": "m1"},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"id": "m1"}]},
        {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]},
    ):
        assert messages_to_delete(MESSAGES, result, True) == [], result


def test_record_shape() -> None:
    queue = Queue("WorkQueue", False, {}, None, None, 30, "http://127.0.0.1:5000")
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "rh",
        "MD5OfBody": "md5",
        "Body": '{"a": 1}',
        "Attributes": {
            "ApproximateReceiveCount": "2",
            "SentTimestamp": "1",
            "ApproximateFirstReceiveTimestamp": "2",
        },
        "MD5OfMessageAttributes": "md5a",
        "MessageAttributes": {
            "s": {"StringValue": "x", "DataType": "String"},
            "b": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
        },
    }
    record = sqs_record(message, queue)
    assert record == {
        "messageId": "m1",
        "receiptHandle": "rh",
        "body": '{"a": 1}',
        "attributes": {
            "ApproximateReceiveCount": "2",
            "SentTimestamp": "1",
            "ApproximateFirstReceiveTimestamp": "2",
        },
        "messageAttributes": {
            "s": {"stringValue": "x", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
            "b": {
                "binaryValue": "AAE=",
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "Binary",
            },
        },
        "md5OfBody": "md5",
        "md5OfMessageAttributes": "md5a",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:WorkQueue",
        "awsRegion": "us-east-1",
    }
    assert lambda_message_attributes({}) == {}


def test_a_batch_never_passes_lambdas_6_mb_payload() -> None:
    queue = Queue("Q", False, {}, None, None, 30, "http://127.0.0.1:5000")
    mib = [{"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": "x" * (1024 * 1024 - 100)} for i in range(10)]
    count = fitting(mib, queue)
    assert count == 5  # ten 1 MiB messages take two invocations

    def size(n: int) -> int:
        return len(json.dumps({"Records": [sqs_record(m, queue) for m in mib[:n]]}))

    assert size(count) <= INVOKE_PAYLOAD_BYTES < size(count + 1)
    assert fitting(MESSAGES, queue) == 3
