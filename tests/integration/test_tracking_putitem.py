"""Tracked events with client messageIds are stored with one conditional PutItem each (1 WRU per KB),
not in TransactWriteItems (2 WRU per KB per item), and keep every promise of docs/reliability.md
under PutItem faults: a throttled put is retried alone, a put throttled through every attempt
keeps its message for a redelivery, a crash between puts and duplicate deliveries store once."""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchops.dal.batch import _item_size
from tests.faults import Faults, Injection, common, schedule_settings, scheduled, schedules, touches
from tests.integration.test_faults_tracking import WS, bulk, event, make_pipeline, pipeline, settle, upload
from tests.invariants.tracking import tracked_events
from tests.pipeline import Pipeline
from tests.support import LambdaContext, load_function, sqs_event

__all__ = ["pipeline"]  # the fixture, shared with test_faults_tracking


@contextmanager
def counting_wru() -> Iterator[Counter[str]]:
    """Write units DynamoDB bills for the project client's writes while inside (on-demand: 1 WRU
    per KB written, 2 per KB for each TransactWriteItems item), and calls by operation."""
    from batchops.dal import clients

    counts: Counter[str] = Counter()

    def count(params: dict[str, Any], model: Any, **_: Any) -> None:
        counts[model.name] += 1
        if model.name == "PutItem":
            counts["WRU"] += math.ceil(_item_size(params["Item"]) / 1024)
        elif model.name == "BatchWriteItem":
            for requests in params["RequestItems"].values():
                counts["WRU"] += sum(math.ceil(_item_size(r["PutRequest"]["Item"]) / 1024) for r in requests)
        elif model.name == "TransactWriteItems":
            counts["WRU"] += sum(2 * math.ceil(_item_size(t["Put"]["Item"]) / 1024) for t in params["TransactItems"])

    client = clients.dynamodb()
    client.meta.events.register("provide-client-params.dynamodb.*", count)
    try:
        yield counts
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb.*", count)


def test_a_tracked_event_with_a_message_id_costs_one_wru(pipeline: Pipeline) -> None:
    status, answer = bulk([event(n, message_id=f"c-{n}") for n in range(40)])
    assert status == 200, answer
    with counting_wru() as first:
        pipeline.run_until_quiet()
    assert (first["WRU"], first["PutItem"], first["TransactWriteItems"]) == (40, 40, 0)
    assert len(tracked_events()) == 40
    status, answer = bulk([event(n, message_id=f"c-{n}") for n in range(30, 50)])  # 10 repeats
    assert status == 200, answer
    with counting_wru() as second:
        pipeline.run_until_quiet()
    # A conditional put whose condition fails is billed as a write too (1 WRU, DynamoDB's docs).
    assert (second["WRU"], second["PutItem"], second["TransactWriteItems"]) == (20, 20, 0)
    assert settle(pipeline, {WS: [f"c-{n}" for n in range(50)]}) == []


def test_a_throttled_put_is_retried_alone_and_the_others_are_not_written_twice(pipeline: Pipeline) -> None:
    status, answer = bulk([event(n, message_id=f"c-{n}") for n in range(20)])
    assert status == 200, answer
    with (
        Faults().throttle("dynamodb", "PutItem", where=touches("#TEVT#c-7'"), times=3).installed() as faults,
        counting_wru() as counts,
    ):
        assert settle(pipeline, {WS: answer["messageIds"]}) == []
    assert len(faults.fired) == 3
    assert counts["PutItem"] == 20  # reached DynamoDB: each event once (the throttles answered before it)
    assert len(tracked_events()) == 20


def test_a_put_throttled_through_every_attempt_keeps_its_message_and_the_redelivery_stores_it(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchops.dal import batch

    monkeypatch.setattr(batch, "MAX_DELAY", 0.001)  # the backoff's sleeps shortened, not its attempts
    status, answer = bulk([event(n, message_id=f"c-{n}") for n in range(12)])
    assert status == 200, answer
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName="TrackingQueue")["QueueUrl"]
    [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    worker = load_function("tracking_worker")
    with Faults().throttle("dynamodb", "PutItem", where=touches("#TEVT#c-4'"), times=8).installed() as faults:
        result = worker.lambda_handler(sqs_event("tracking_worker", [message]), LambdaContext())
    assert len(faults.fired) == 8  # every attempt insert_new makes
    assert result == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert {message_id for _, message_id in tracked_events()} == {f"c-{n}" for n in range(12)} - {"c-4"}
    assert worker.lambda_handler(sqs_event("tracking_worker", [message]), LambdaContext()) == {"batchItemFailures": []}
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])  # as the event source mapping does
    assert settle(pipeline, {WS: answer["messageIds"]}) == []


def test_a_message_id_repeated_in_one_message_keeps_its_first_copy(aws: None) -> None:
    from batchops.dal.tracking import TrackedEventRepository

    repository = TrackedEventRepository("DomainTable")
    now = int(time.time())
    texts = [("a", '{"messageId":"a","n":1}'), ("b", '{"messageId":"b"}'), ("a", '{"messageId":"a","n":2}')]
    assert repository.insert_new(WS, texts, expires_at=now + 60, now=now) == ([], [2])
    assert repository.get(WS, "a", now=now) == {"messageId": "a", "n": 1}
    again = [("a", '{"messageId":"a","n":3}'), ("c", '{"messageId":"c"}')]
    assert repository.insert_new(WS, again, expires_at=now + 60, now=now) == ([], [0])
    assert repository.get(WS, "a", now=now) == {"messageId": "a", "n": 1}


def test_a_crash_between_puts_and_duplicate_deliveries_store_each_event_once(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = make_pipeline(monkeypatch, duplicates=2, shuffle=random.Random(3))
    pipeline.run_until_quiet()
    ids: list[str] = []
    with Faults().crash_after("dynamodb", "PutItem", calls=[5, 33], times=2).installed() as faults:
        for first in (0, 30):
            status, answer = bulk([event(n, message_id=f"c-{n}" if n % 3 else None) for n in range(first, first + 40)])
            assert status == 200, answer
            ids += answer["messageIds"]
        assert settle(pipeline, {WS: ids}) == []
    assert [kind for *_, kind in faults.fired] == ["crash", "crash"]
    assert len(tracked_events()) == len(set(ids))


KINDS: dict[str, Injection] = {
    **common("throttle-send", "partial-send", "partial-write"),
    "throttle-put": lambda f, n: f.throttle("dynamodb", "PutItem", where=touches("#TEVT#"), calls=[n]),
    "crash-put": lambda f, n: f.crash_after("dynamodb", "PutItem", where=touches("#TEVT#"), calls=[n]),
}


@schedule_settings(ci_examples=3)
@given(plan=schedules(KINDS, max_call=12, max_size=4), duplicates=st.integers(0, 2), seed=st.integers(0, 99))
def test_any_schedule_of_put_faults_keeps_every_tracking_promise(
    plan: list[tuple[str, int]], duplicates: int, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.conftest import fresh_aws

    with fresh_aws(), monkeypatch.context() as patched:
        pipeline = make_pipeline(patched, duplicates=duplicates, shuffle=random.Random(seed))
        pipeline.run_until_quiet()
        accepted: list[str] = []
        with scheduled(KINDS, plan).installed():
            upload([event(n) for n in range(3)])
            for first in (0, 6):
                status, answer = bulk(
                    [event(n, message_id=f"c-{n}" if n % 2 else None) for n in range(first, first + 10)]
                )
                if status == 200:
                    accepted += answer["messageIds"]
            broken = settle(pipeline, {WS: accepted}, exact=False)
        assert not broken, "\n".join(broken)
