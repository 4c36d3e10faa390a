"""Tracking under injected AWS and delivery faults: every event an answer accepted is stored
once and readable, nothing it did not accept is stored, and every upload ends completed or failed
once, its counts equal to its lines, its object removed; the DLQs receive nothing that is not
poison.

POST /v1/bulk-track, POST /v1/track and uploads run as their functions; TrackingQueue and
TrackingUploadQueue are drained by the template's workers through `tests.pipeline.Pipeline`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.faults import Faults, Injection, SimulatedCrash, common, schedule_settings, scheduled, schedules, touches
from tests.invariants.tracking import tracked_events, tracking_broken, uploads
from tests.pipeline import Pipeline
from tests.support import api_event, invoke, load_function

WS = "ws-a"
BUCKET = "trackinguploadbucket"
# In the key of every tracked event: the worker's conditional PutItems (one per client-id event)
# and /v1/track's single put; not the upload records' puts.
EVENT_KEY = "#TEVT#"


def make_pipeline(monkeypatch: pytest.MonkeyPatch, **options: Any) -> Pipeline:
    made = Pipeline(sweeps=(), **options)
    made.wire(monkeypatch)
    monkeypatch.setenv("BATCHOPS_TRACKING_UPLOAD_BUCKET", BUCKET)
    from batchops.settings import reset_settings

    reset_settings()
    return made


@pytest.fixture
def pipeline(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    made = make_pipeline(monkeypatch)
    made.run_until_quiet()  # S3's test event, sent when the bucket's notification was set
    yield made


def call(name: str, **parts: Any) -> tuple[int, dict[str, str], Any]:
    return invoke(load_function(name), api_event(name, workspace=WS, **parts))


def event(n: int, *, message_id: str | None = None, pad: int = 0) -> dict[str, Any]:
    found: dict[str, Any] = {"event": "signup", "properties": {"n": n, "pad": "x" * pad}}
    found["timestamp"] = "2025-10-29T22:00:00Z"
    if message_id:
        found["messageId"] = message_id
    return found


def bulk(events: list[dict[str, Any]]) -> tuple[int, Any]:
    status, _, answer = call("bulk_track", body=events)
    return status, answer


def settle(pipeline: Pipeline, accepted: dict[str, list[str]], **options: Any) -> list[str]:
    for _ in range(30):
        try:
            pipeline.run_until_quiet()
            break
        except SimulatedCrash:
            continue
    dead = pipeline.dead_letters()
    return [f"DLQ {queue}: {len(bodies)} messages" for queue, bodies in dead.items()] + tracking_broken(
        accepted, bucket=BUCKET, **options
    )


def fired(faults: Faults, operation: str) -> int:
    """How many calls of `operation` a rule of `faults` answered: a retargeted fault that matches
    no call any more would leave the test passing without testing the write path."""
    return sum(1 for _, op, _, _ in faults.fired if op == operation)


# ---------------------------------------------------------------- bulk-track and track
def test_throttled_sends_and_writes_store_every_accepted_event_once(pipeline: Pipeline) -> None:
    events = [event(n, message_id=f"c-{n}" if n % 2 else None) for n in range(60)]
    faults = (
        Faults()
        .throttle("sqs", "SendMessageBatch", times=2)
        .partial("dynamodb", "BatchWriteItem", times=3)
        .throttle("dynamodb", "PutItem", where=touches(EVENT_KEY), calls=[3, 5])
    )
    with faults.installed():
        status, answer = bulk(events)
        assert status == 200, answer
        assert settle(pipeline, {WS: answer["messageIds"]}) == []
    assert len(answer["messageIds"]) == 60 and len(tracked_events()) == 60
    assert fired(faults, "PutItem") == 2  # the worker's event puts met both throttles


def test_a_message_sqs_keeps_refusing_is_reported_not_accepted_and_nothing_of_it_is_stored(
    pipeline: Pipeline,
) -> None:
    events = [event(n, message_id=f"big-{n}", pad=60_000) for n in range(20)]  # two messages
    with (
        Faults().fail("sqs", "SendMessageBatch", "ServiceUnavailable", status=503, where=touches("big-19")).installed()
    ):
        status, answer = bulk(events)
    assert status == 200, answer
    refused = {e["index"] for e in answer["errors"]}
    assert refused and 19 in refused and 0 not in refused
    assert settle(pipeline, {WS: answer["messageIds"]}) == []  # exact: the refused are not stored


def test_a_worker_crash_after_its_writes_and_duplicate_deliveries_store_once(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = make_pipeline(monkeypatch, duplicates=2, shuffle=random.Random(7))
    pipeline.run_until_quiet()
    ids: list[str] = []
    with Faults().crash_after("dynamodb", "PutItem", where=touches(EVENT_KEY), calls=[1]).installed() as faults:
        for first in (0, 30):
            status, answer = bulk([event(n, message_id=f"c-{n}" if n % 3 else None) for n in range(first, first + 40)])
            assert status == 200, answer
            ids += answer["messageIds"]
        assert settle(pipeline, {WS: ids}) == []
    assert fired(faults, "PutItem") == 1
    assert len(tracked_events()) == len(set(ids))  # the overlap (c-31 ... c-39 sent twice) once


def test_a_throttled_single_track_is_a_503_and_its_retry_stores_it_once(pipeline: Pipeline) -> None:
    body = event(1, message_id="one")
    with Faults().throttle("dynamodb", "PutItem", where=touches("#TEVT#one")).installed():
        status, _, answer = call("track", body=body)
    assert status == 503, answer
    status, _, answer = call("track", body=body)
    assert status == 200, answer
    assert call("track", body=body)[0] == 200  # a repeat: the first copy stays
    assert settle(pipeline, {WS: ["one"]}) == []


def test_only_a_message_no_delivery_can_store_reaches_the_dlq(pipeline: Pipeline) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName="TrackingQueue")["QueueUrl"]
    poison = json.dumps({"workspace_id": WS, "events": [{"event": "no messageId"}]})
    sqs.send_message(QueueUrl=url, MessageBody=poison)
    # c-2 throttled through all 8 of its attempts: its message is delivered again, and the
    # redelivery stores c-2 and finds the other four stored (their conditions fail).
    with Faults().throttle("dynamodb", "PutItem", where=touches(f"{EVENT_KEY}c-2'"), times=8).installed() as faults:
        status, answer = bulk([event(n, message_id=f"c-{n}") for n in range(5)])
        assert status == 200, answer
        pipeline.run_until_quiet()
    assert fired(faults, "PutItem") == 8
    assert pipeline.dead_letters() == {"TrackingDeadLetterQueue": [poison]}
    assert tracking_broken({WS: answer["messageIds"]}) == []


# ---------------------------------------------------------------- uploads
def upload(events: list[Any]) -> str:
    status, _, created = call("create_tracking_upload")
    assert status == 201, created
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=BUCKET, Key=created["fields"]["key"], Body=json.dumps(events).encode()
    )
    return str(created["uploadId"])


def lines(*found: tuple[str, int]) -> dict[str, int]:
    return dict(found)


def test_s3_and_queue_faults_on_an_upload_end_it_completed_with_its_counts(pipeline: Pipeline) -> None:
    events = [event(n, message_id="dup" if n in (3, 4) else None) for n in range(30)] + [{"event": ""}]
    upload_id = upload(events)
    faults = (
        Faults()
        .throttle("s3", "GetObject", calls=[1])
        .fail("s3", "PutObject", "InternalError", status=500, where=touches("results/"), calls=[1])
        .crash_after("sqs", "SendMessageBatch", where=touches("receivedAt"), calls=[2])
    )
    with faults.installed():
        assert settle(pipeline, {}, lines=lines((upload_id, 31))) == []
    found = uploads()[upload_id]
    assert (found["status"], found["accepted"], found["rejected"]) == ("completed", 30, 1)
    assert len(tracked_events()) == 29  # "dup" twice is one event


def test_t1_an_upload_whose_object_delete_failed_is_cleaned_up_by_the_redelivery(pipeline: Pipeline) -> None:
    """Before: the redelivery found the upload completed and ignored it: its object stayed."""
    upload_id = upload([event(n) for n in range(3)])
    with Faults().fail("s3", "DeleteObject", "InternalError", status=500, calls=[1]).installed():
        assert settle(pipeline, {}, lines=lines((upload_id, 3))) == []
    assert uploads()[upload_id]["status"] == "completed"


def test_t2_an_upload_s3_will_not_serve_ends_failed_not_processing_forever(pipeline: Pipeline) -> None:
    """Before: every receive failed, the notification went to the DLQ and the upload said
    `processing` for good."""
    upload_id = upload([event(n) for n in range(3)])
    with Faults().throttle("s3", "GetObject").installed():
        assert settle(pipeline, {}) == []
    found = uploads()[upload_id]
    assert (found["status"], found["error"]["code"]) == ("failed", "INGEST_FAILED")
    assert tracked_events() == {}


# ---------------------------------------------------------------- random schedules
KINDS: dict[str, Injection] = {
    **common("throttle-send", "partial-send", "partial-write"),
    "throttle-write": lambda f, n: f.throttle("dynamodb", "PutItem", where=touches(EVENT_KEY), calls=[n]),
    "crash-write": lambda f, n: f.crash_after("dynamodb", "PutItem", where=touches(EVENT_KEY), calls=[n]),
    "s3-get": lambda f, n: f.throttle("s3", "GetObject", calls=[n]),
    "s3-put": lambda f, n: f.throttle("s3", "PutObject", calls=[n]),
}
FAULTS = schedules(KINDS, max_call=6, max_size=4)


@schedule_settings(ci_examples=3)
@given(plan=FAULTS, duplicates=st.integers(0, 2), seed=st.integers(0, 99))
def test_any_schedule_of_faults_keeps_every_tracking_promise(
    plan: list[tuple[str, int]], duplicates: int, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.conftest import fresh_aws

    with fresh_aws(), monkeypatch.context() as patched:
        pipeline = make_pipeline(patched, duplicates=duplicates, shuffle=random.Random(seed))
        pipeline.run_until_quiet()
        accepted: list[str] = []
        with scheduled(KINDS, plan).installed():
            upload_id = upload([event(n, message_id=f"u-{n}" if n % 2 else None) for n in range(12)])
            for first in (0, 6):
                status, answer = bulk(
                    [event(n, message_id=f"c-{n}" if n % 2 else None) for n in range(first, first + 10)]
                )
                if status == 200:
                    accepted += answer["messageIds"]
            broken = settle(pipeline, {WS: accepted}, lines=lines((upload_id, 12)))
        assert not broken, "\n".join(broken)
