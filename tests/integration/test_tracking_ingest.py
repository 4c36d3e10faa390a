"""Tracking ingestion (seed 004) on moto: accepted events packed many to an SQS message, the
worker storing them one item per messageId (the first copy; generated ids blindly with
BatchWriteItem, client ids with conditional puts), with a retention TTL."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from batchops.services import tracking
from batchops.settings import reset_settings
from tests.support import LambdaContext, load_function, sqs_event

WORKER = load_function("tracking_worker")
NOW = "2026-11-23T10:00:00.000000Z"


@pytest.fixture
def queue(aws, monkeypatch) -> str:
    url = boto3.client("sqs").get_queue_url(QueueName="TrackingQueue")["QueueUrl"]
    monkeypatch.setenv("BATCHOPS_TRACKING_QUEUE_URL", url)
    reset_settings()
    return str(url)


def events(n: int, prefix: str = "m", size: int = 0) -> list[dict]:
    return [
        {
            "event": "signup",
            "properties": {"n": i, "pad": "x" * size},
            "timestamp": "2025-10-29T22:00:00.778Z",
            "messageId": f"{prefix}-{i}",
        }
        for i in range(n)
    ]


def receive_all(url: str) -> list[dict]:
    found: list[dict] = []
    while True:
        got = boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return found
        found += got


def work(messages: list[dict]) -> dict:
    return WORKER.lambda_handler(sqs_event("tracking_worker", messages), LambdaContext())


def stored(workspace: str, message_id: str) -> dict | None:
    from batchops.dal.tracking import TrackedEventRepository

    return TrackedEventRepository("DomainTable").get(workspace, message_id, now=int(time.time()))


def test_events_are_packed_into_few_messages_of_at_most_1_mib(queue):
    sent = events(5_000, size=1_900)  # about 10 MB of events
    checked = tracking.enqueue("ws-a", tracking.check_events(sent, NOW))
    assert checked.errors == [] and len(checked.accepted) == 5_000
    messages = receive_all(queue)
    sizes = [len(m["Body"].encode()) for m in messages]
    assert max(sizes) <= 1024 * 1024
    total = sum(sizes)
    assert len(messages) == -(-total // (1024 * 1024 - 1024))  # the fewest the bytes allow
    carried = [e["messageId"] for m in messages for e in json.loads(m["Body"])["events"]]
    assert all(json.loads(m["Body"])["generated"] == [] for m in messages)
    assert sorted(carried) == sorted(e["messageId"] for e in sent)


def test_the_worker_stores_each_message_id_once_with_a_ttl(queue):
    batch = events(60) + events(3)  # m-0..m-2 repeated in the request: carried once, the first
    checked = tracking.enqueue("ws-a", tracking.check_events(batch, NOW))
    assert checked.message_ids[-3:] == ["m-0", "m-1", "m-2"]
    messages = receive_all(queue)
    assert sum(len(json.loads(m["Body"])["events"]) for m in messages) == 60
    assert work(messages) == {"batchItemFailures": []}
    assert work(messages) == {"batchItemFailures": []}  # a redelivery stores the same items
    event = stored("ws-a", "m-7")
    assert event == {**events(60)[7], "receivedAt": NOW}
    assert stored("ws-b", "m-7") is None  # another workspace's id finds nothing
    from batchops.dal import clients

    items = clients.dynamodb().scan(TableName="DomainTable")["Items"]
    tracked = [i for i in items if i["sk"]["S"] == "EVENT"]
    assert len(tracked) == 60
    retention = int(tracked[0]["expires_at"]["N"]) - int(time.time())
    assert 30 * 24 * 3600 - 60 < retention <= 30 * 24 * 3600


def test_a_message_dynamodb_keeps_refusing_is_retried_not_dropped(queue, monkeypatch):
    from batchops.dal.tracking import TrackedEventRepository

    tracking.enqueue("ws-a", tracking.check_events(events(30), NOW))
    [message] = receive_all(queue)
    real = TrackedEventRepository.insert_new
    monkeypatch.setattr(TrackedEventRepository, "insert_new", lambda self, ws, evs, expires_at, now: ([0], []))
    assert work([message]) == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    monkeypatch.setattr(TrackedEventRepository, "insert_new", real)
    assert work([message]) == {"batchItemFailures": []}
    assert stored("ws-a", "m-29") is not None


def test_generated_ids_are_written_blind_and_client_ids_conditionally(queue, monkeypatch):
    from tests.support import counting_dynamodb_calls

    sent = events(30) + [{k: v for k, v in e.items() if k != "messageId"} for e in events(30, prefix="g")]
    checked = tracking.enqueue("ws-a", tracking.check_events(sent, NOW))
    [message] = receive_all(queue)
    body = json.loads(message["Body"])
    assert (len(body["events"]), len(body["generated"])) == (30, 30)
    with counting_dynamodb_calls() as calls:
        assert work([message]) == {"batchItemFailures": []}
    # One conditional PutItem per client-id event (30), the 30 generated ids blind in 25-item
    # BatchWriteItems (2).
    assert calls == {"PutItem": 30, "BatchWriteItem": 2}
    assert all(stored("ws-a", i) is not None for i in checked.message_ids)
    with counting_dynamodb_calls() as again:
        assert work([message]) == {"batchItemFailures": []}  # redelivered: nothing new
    assert again == {"PutItem": 30, "BatchWriteItem": 2}


def test_a_message_of_only_duplicates_stores_nothing_new(queue):
    tracking.enqueue("ws-a", tracking.check_events(events(5), NOW))
    [message] = receive_all(queue)
    assert tracking.store_message(message["Body"]) == 5
    assert tracking.store_message(message["Body"]) == 0


def test_events_sqs_would_not_take_are_reported_not_accepted(queue, monkeypatch):
    monkeypatch.setattr(tracking, "send_messages", lambda url, bodies, per_call: [0])
    checked = tracking.enqueue("ws-a", tracking.check_events([{"bad": 1}, *events(2)], NOW))
    assert checked.accepted == []
    assert [e["index"] for e in checked.errors] == [0, 1, 2]
    assert "send it again" in checked.errors[1]["error"]


def test_an_expired_event_reads_as_missing(queue):
    from batchops.dal.tracking import TrackedEventRepository

    repo = TrackedEventRepository("DomainTable")
    assert repo.put("ws-a", [("old", '{"messageId":"old"}')], expires_at=1_000) == []
    assert repo.get("ws-a", "old", now=999) == {"messageId": "old"}
    assert repo.get("ws-a", "old", now=1_000) is None
