"""The Batches engine under injected AWS and delivery faults: nothing lost, nothing done twice.

Each named defect (R1-R6 of issue 13) has a scenario here that failed before its fix; then a
property-based run throws random fault schedules at batches with a window, retries, a webhook
and cancels, and checks every invariant (tests/invariants.py) once the system has settled.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchops.services import batch_engine
from batchops.settings import reset_settings
from tests.faults import Faults, SimulatedCrash, common, schedule_settings, scheduled, schedules, touches
from tests.invariants.batches import batches, batches_broken
from tests.job_endpoint import JobEndpoints, Reply, job_endpoints
from tests.pipeline import Pipeline
from tests.support import api_event, invoke, load_function

WS = "ws-a"


@pytest.fixture
def endpoints() -> Iterator[JobEndpoints]:
    with job_endpoints() as found:
        yield found


@pytest.fixture
def pipeline(aws: None, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    monkeypatch.setenv("BATCHOPS_LOCAL_MODE", "true")  # receivers on 127.0.0.1
    made = Pipeline()
    made.wire(monkeypatch)
    return made


def call(name: str, **parts: Any) -> tuple[int, dict[str, str], Any]:
    return invoke(load_function(name), api_event(name, workspace=WS, **parts))


def create(endpoints: JobEndpoints, jobs: int = 4, **options: Any) -> str:
    body = {
        "name": "faults",
        "jobs": [{"id": f"j{i}", "type": "http", "config": {"url": endpoints.url("/job")}} for i in range(jobs)],
        "options": {"max_parallel": 2, "notification": {"webhook": endpoints.url("/hook")}, **options},
    }
    status, _, answer = call("create_batch", body=body)
    assert status == 201, answer
    return str(answer["data"]["batch_id"])


def hook_events(endpoints: JobEndpoints) -> Counter[str]:
    """Lifecycle events the batch's webhook received, by event and key (job id, threshold)."""
    seen: Counter[str] = Counter()
    for received in endpoints.calls_to("/hook"):
        body = received.body
        detail = (body["data"].get("job") or {}).get("job_id") or (body["data"].get("progress") or {}).get("percentage")
        seen[f"{body['event']}:{detail}" if detail is not None else body["event"]] += 1
    return seen


def job_calls(endpoints: JobEndpoints) -> Counter[str]:
    return Counter(c.headers.get("webhook-id", "") for c in endpoints.calls_to("/job"))


def settled(pipeline: Pipeline, endpoints: JobEndpoints) -> list[str]:
    pipeline.run_until_quiet()
    return batches_broken(endpoint_calls=job_calls(endpoints))


def test_r1_a_job_end_followed_by_a_throttled_statistics_update_still_sends_its_event(
    pipeline: Pipeline, endpoints: JobEndpoints
) -> None:
    batch_id = create(endpoints, jobs=2)
    with Faults().throttle("dynamodb", "UpdateItem", where=touches("JOBSTATS")).installed():
        assert settled(pipeline, endpoints) == []
    events = hook_events(endpoints)
    assert events["batch.job_completed:j0"] == events["batch.job_completed:j1"] == 1
    assert events["batch.completed"] == 1
    assert batches()[batch_id]["batch"]["status"] == "completed"


def test_r1_a_crash_right_after_the_job_end_commits_loses_no_event(pipeline: Pipeline, endpoints: JobEndpoints) -> None:
    create(endpoints, jobs=2)
    ended = touches("batch.job_completed")  # the job's end, with its outbox item
    with Faults().crash_after("dynamodb", "TransactWriteItems", where=ended, times=2).installed() as faults:
        # Each worker dies right after committing its job's end: its message comes back.
        assert settled(pipeline, endpoints) == []
    assert [f[3] for f in faults.fired] == ["crash", "crash"]
    events = hook_events(endpoints)
    assert events["batch.job_completed:j0"] == events["batch.job_completed:j1"] == 1


def test_r2_deliveries_stored_but_not_queued_are_queued_again(pipeline: Pipeline, endpoints: JobEndpoints) -> None:
    webhook_sends = touches("WebhookQueue")
    # More refusals than one sending retries (6 attempts): the first sending of batch.created gives
    # up with its delivery stored and no message on the queue.
    faults = Faults().fail("sqs", "SendMessageBatch", "ServiceUnavailable", status=503, where=webhook_sends, times=8)
    with faults.installed():
        create(endpoints, jobs=2)
        assert settled(pipeline, endpoints) == []
    assert len(faults.fired) == 8
    events = hook_events(endpoints)
    assert events["batch.created"] == 1 and events["batch.completed"] == 1
    assert max(events.values()) == 1


def test_r3_a_cancel_that_stops_half_way_is_finished_by_the_sweeper_and_a_repeated_delete(
    pipeline: Pipeline, endpoints: JobEndpoints
) -> None:
    batch_id = create(endpoints, jobs=5, max_parallel=1)
    cancel_job = touches("':to': {'S': 'cancelled'}")
    with (
        Faults()
        .fail("dynamodb", "TransactWriteItems", "InternalServerError", status=500, where=cancel_job, calls=[2])
        .installed()
    ):
        status, _, answer = call("cancel_batch", path_params={"batch_id": batch_id}, body={"reason": "stop"})
    assert status == 503, answer  # the cancel is committed; ending its jobs stopped half-way
    found = batches()[batch_id]
    assert found["batch"]["status"] == "cancelled"
    assert any(job["status"] in ("pending", "queued") for job in found["jobs"])
    # A retried DELETE finishes the cancel and answers as a cancel does.
    status, _, answer = call("cancel_batch", path_params={"batch_id": batch_id})
    assert status == 200 and answer["data"]["status"] == "cancelled"
    assert settled(pipeline, endpoints) == []
    assert hook_events(endpoints)["batch.cancelled"] == 1


def test_r4_a_timeout_that_stops_half_way_is_finished_by_the_next_sweep(
    pipeline: Pipeline, endpoints: JobEndpoints
) -> None:
    batch_id = create(endpoints, jobs=4, max_parallel=1)
    _expire(batch_id)
    timing_out = touches("':to': {'S': 'cancelled'}")
    crash = Faults().crash_after("dynamodb", "TransactWriteItems", where=timing_out, times=1)
    with crash.installed(), pytest.raises(SimulatedCrash):
        pipeline.sweep()
    assert batches()[batch_id]["batch"]["status"] == "timed_out"
    assert settled(pipeline, endpoints) == []
    events = hook_events(endpoints)
    assert events["batch.failed"] == 1  # a timed-out batch reports batch.failed, once


def test_r5_a_create_whose_event_cannot_be_sent_answers_201_and_runs_once(
    pipeline: Pipeline, endpoints: JobEndpoints
) -> None:
    with Faults().throttle("dynamodb", "Query", where=touches("#WEBHOOKS")).installed():
        batch_id = create(endpoints, jobs=2)
    assert settled(pipeline, endpoints) == []
    assert sorted(job_calls(endpoints).values()) == [1, 1]
    assert hook_events(endpoints)["batch.created"] == 1
    assert list(batches()) == [batch_id]


def test_r6_a_started_event_that_cannot_be_sent_does_not_fail_the_job(
    pipeline: Pipeline, endpoints: JobEndpoints
) -> None:
    create(endpoints, jobs=1)
    with Faults().throttle("dynamodb", "PutItem", where=touches("batch.started"), times=3).installed():
        assert settled(pipeline, endpoints) == []
    [job] = next(iter(batches().values()))["jobs"]
    assert job["status"] == "completed"  # not failed INTERRUPTED
    assert hook_events(endpoints)["batch.started"] == 1


def test_events_reach_a_receiver_in_the_order_they_happened(pipeline: Pipeline, endpoints: JobEndpoints) -> None:
    """The batch's end is the last event: the last job's batch.job_completed and the progress it
    crossed were sent after batch.completed (the outbox was sent in key order, and `finished`
    sorts before `job:…` and `progress_…`)."""
    create(endpoints, jobs=3, max_parallel=1)
    assert settled(pipeline, endpoints) == []
    order = [received.body["event"] for received in endpoints.calls_to("/hook")]
    assert order[0] == "batch.created" and order[-1] == "batch.completed", order
    assert order.count("batch.job_completed") == 3 and order.count("batch.completed") == 1


def test_no_progress_is_reported_after_a_cancel_the_worker_has_not_seen(
    pipeline: Pipeline, endpoints: JobEndpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that read the batch as running before a cancel committed must not mark a progress
    threshold after it: the cancel's follow-up may have retired the batch already, so that event
    came after batch.cancelled, or stayed in an outbox no sweep reads."""
    batch_id = create(endpoints, jobs=4, max_parallel=1)
    status, _, _ = call("cancel_batch", path_params={"batch_id": batch_id})
    assert status == 200
    assert settled(pipeline, endpoints) == []
    cancelled = batches()[batch_id]["batch"]
    assert cancelled["status"] == "cancelled"
    # What that worker read: the batch still running, half its jobs done, no threshold marked.
    stale = {**cancelled, "status": "running", "jc_completed": 2, "jc_cancelled": int(cancelled["jc_cancelled"]) - 2}
    stale = {k: v for k, v in stale.items() if not k.startswith("progress_")}
    repository = batch_engine.repository()
    real_get = type(repository).get
    reads = iter([stale])
    with monkeypatch.context() as patched:
        patched.setattr(type(repository), "get", lambda self, *a: next(reads, None) or real_get(self, *a))
        patched.setattr(batch_engine, "release_window", lambda *a, **k: 0)
        batch_engine.settle(WS, batch_id)

    assert [o["sk"] for o in batches()[batch_id]["outbox"]] == []
    assert not any(k.startswith("progress_") for k in batches()[batch_id]["batch"])
    assert settled(pipeline, endpoints) == []
    assert "batch.progress" not in hook_events(endpoints)


def test_a_job_end_the_table_refuses_once_is_written_again_not_the_job_run_again(
    pipeline: Pipeline, endpoints: JobEndpoints
) -> None:
    """The end of a job whose endpoint answered is retried in place: given up, the redelivery
    found the job leased and dropped it, and after the lease the endpoint was called again."""
    batch_id = create(endpoints, jobs=2, retry_failed=True, max_retries=2)
    ending = touches("batch.job_completed")
    with Faults().throttle("dynamodb", "TransactWriteItems", where=ending, calls=[1, 2]).installed():
        assert settled(pipeline, endpoints) == []
    assert sorted(job_calls(endpoints).values()) == [1, 1]
    jobs = batches()[batch_id]["jobs"]
    assert [(job["status"], int(job["attempts"])) for job in jobs] == [("completed", 1), ("completed", 1)]
    events = hook_events(endpoints)
    assert (events["batch.job_completed:j0"], events["batch.job_completed:j1"]) == (1, 1)


def _expire(batch_id: str) -> None:
    """Move the batch's deadline into the past, as if its timeout_minutes had run out."""
    found = batches()[batch_id]["batch"]
    boto3.client("dynamodb", region_name="us-east-1").update_item(
        TableName="DomainTable",
        Key={"pk": {"S": found["pk"]}, "sk": {"S": found["sk"]}},
        UpdateExpression="SET deadline = :past, gsi2sk = :due",
        ExpressionAttributeValues={
            ":past": {"S": "2000-01-01T00:00:00.000000Z"},
            ":due": {"S": f"2000-01-01T00:00:00.000000Z#WS#{found['workspace_id']}#{batch_id}"},
        },
    )
    reset_settings()


# ---------------------------------------------------------------- random schedules
KINDS = {
    **common("throttle-transact", "conflict", "partial-send", "partial-write", "throttle-query"),
    "crash-end": lambda f, n: f.crash_after(
        "dynamodb", "TransactWriteItems", calls=[n], where=touches("batch.job_completed")
    ),
}
FAULTS = schedules(KINDS, max_call=12, max_size=6)


@schedule_settings(ci_examples=4)
@given(plan=FAULTS, duplicates=st.integers(0, 2), crash_every=st.sampled_from([0, 0, 3]), seed=st.integers(0, 99))
def test_any_schedule_of_faults_keeps_every_promise(
    plan: list[tuple[str, int]], duplicates: int, crash_every: int, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.conftest import fresh_aws

    with fresh_aws(), job_endpoints() as endpoints:
        monkeypatch.setenv("BATCHOPS_LOCAL_MODE", "true")
        pipeline = Pipeline(duplicates=duplicates, shuffle=random.Random(seed), crash_every=crash_every)
        pipeline.wire(monkeypatch)
        endpoints.script("/job", Reply(500), Reply(200, {"ok": True}))  # the first call fails: a retry
        create(endpoints, jobs=4, retry_failed=True, max_retries=2)
        with scheduled(KINDS, plan).installed():
            for _ in range(50):
                try:
                    pipeline.run_until_quiet()
                    break
                except SimulatedCrash:
                    continue
        broken = settled(pipeline, endpoints)
        assert not broken, "\n".join(broken)
