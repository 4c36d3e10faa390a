"""Runs (seed 001) under injected AWS and delivery faults: trigger, trigger-bulk, the run worker
with its retries, priority queues and ttl expiry, and the batch operations that track a bulk
trigger. Nothing lost, an endpoint called at most once per attempt, every batch closed once.

Each scenario ends with the invariant check (tests/invariants/runs.py) once the system settled;
a property-based run then throws random fault schedules at bulk triggers.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from tests.faults import Faults, Injection, SimulatedCrash, common, schedule_settings, scheduled, schedules, touches
from tests.invariants.runs import batch_operations, runs, runs_broken
from tests.job_endpoint import JobEndpoints, Reply, job_endpoints
from tests.pipeline import Pipeline
from tests.support import LambdaContext, api_event, invoke, load_function, sqs_event

WS = "ws-a"
# The run code reads the time as `datetime.now(UTC)` in these modules.
CLOCKED = ("batchops.services.runs", "batchops.services.run_worker", "batchops.dal.runs")
URGENT = 5  # runs of this priority and above go through RunUrgentQueue


@dataclass
class Clock:
    """Time as the run code sees it: real time plus `offset` (leases, backoffs, rechecks and
    ttls run out without the test waiting)."""

    offset: timedelta = field(default_factory=timedelta)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    @contextmanager
    def installed(self) -> Iterator[Clock]:
        clock = self

        class Shifted(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Any:
                return datetime.now(tz) + clock.offset

        with ExitStack() as stack:
            for module in CLOCKED:
                stack.enter_context(patch(f"{module}.datetime", Shifted))
            yield self


@dataclass
class RunPipeline(Pipeline):
    """The pipeline, with each sweep `run_sweep_ahead` later for the run code too (the shared
    pipeline moves only the Batches engine's clock)."""

    clock: Clock = field(default_factory=Clock)
    run_sweep_ahead: timedelta = timedelta(minutes=10)

    def sweep(self) -> None:
        self.clock.offset += self.run_sweep_ahead
        super().sweep()

    def settle(self) -> None:
        """Deliver until quiet, then let hours of sweeps pass (rechecks of runs stored but never
        queued come an hour later), and deliver what they send."""
        for _ in range(2):
            self.run_until_quiet()
            self.clock.offset += timedelta(hours=2)
            self.sweep()
        self.run_until_quiet()


@pytest.fixture
def endpoints() -> Iterator[JobEndpoints]:
    with job_endpoints() as found:
        yield found


@pytest.fixture
def pipeline(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunPipeline]:
    monkeypatch.setenv("BATCHOPS_LOCAL_MODE", "true")  # the endpoint is on 127.0.0.1
    made = RunPipeline()
    made.wire(monkeypatch)
    with made.clock.installed():
        yield made


def call(name: str, **parts: Any) -> tuple[int, dict[str, str], Any]:
    return invoke(load_function(name), api_event(name, workspace=WS, **parts))


def create_job(endpoints: JobEndpoints, **fields: Any) -> str:
    body = {
        "name": "faults",
        "endpoint_url": endpoints.url("/job"),
        "timeout_secs": 5,
        "max_attempts": 3,
        "retry_backoff_secs": 1,
        **fields,
    }
    status, _, job = call("create_job", body=body)
    assert status == 201, job
    endpoints.verify_with("/job", job["signing_secret"])
    return str(job["id"])


def bulk(job_id: str, items: list[dict[str, Any]]) -> tuple[int, Any]:
    status, _, answer = call("trigger_job_bulk", body={"items": items}, path_params={"jobID": job_id})
    return status, answer


def trigger(job_id: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any]:
    status, _, answer = call("trigger_job", body=body, path_params={"jobID": job_id}, headers=headers)
    return status, answer


def items(n: int, **options: Any) -> list[dict[str, Any]]:
    """`n` distinct items, every third one urgent (its own queue)."""
    return [{"payload": {"n": i}, "priority": URGENT if i % 3 == 0 else 0, **options} for i in range(n)]


def endpoint_calls(endpoints: JobEndpoints) -> Counter[str]:
    """Calls to the job endpoint by run (webhook-id is the run id on every attempt)."""
    return Counter(c.headers.get("webhook-id", "") for c in endpoints.calls_to("/job"))


def settled(pipeline: RunPipeline, endpoints: JobEndpoints) -> list[str]:
    pipeline.settle()
    return runs_broken(endpoint_calls=endpoint_calls(endpoints))


def no_dead_letters(pipeline: Pipeline) -> None:
    assert pipeline.dead_letters() == {}


def crash_before(faults: Faults, service: str, operation: str, *, where: Callable[..., bool], times: int = 1) -> Faults:
    """The function dies just before this call (nothing of it is written): the window between an
    endpoint call and the write that records its outcome."""

    def apply(method: Callable[..., Any], kwargs: dict[str, Any], op: str) -> Any:
        raise SimulatedCrash(f"crashed before {service}.{op}")

    return faults._add(service, operation, "crash-before", apply, None, times, where)


def deliver_crashing(pipeline: RunPipeline, rounds: int = 50) -> None:
    """Deliver until quiet while faults may crash a sweep (a scheduled Lambda that dies simply
    runs again at its next tick)."""
    for _ in range(rounds):
        try:
            pipeline.run_until_quiet()
            return
        except (SimulatedCrash, ClientError):
            continue  # a sweep died or hit a storage error: the schedule runs it again
    raise AssertionError("never settled")


def sweep_tolerantly(pipeline: RunPipeline) -> None:
    """One scheduled sweep that may fail on a storage error: EventBridge runs it again at the next
    tick, which is what the following sweeps are."""
    with suppress(ClientError):
        pipeline.sweep()


# ---------------------------------------------------------------- baseline and delivery faults
def test_a_bulk_trigger_with_retries_duplicates_and_shuffling_keeps_every_promise(
    pipeline: RunPipeline, endpoints: JobEndpoints
) -> None:
    pipeline.duplicates, pipeline.shuffle = 2, random.Random(7)
    endpoints.script("/job", Reply(500), Reply(429, headers={"Retry-After": "1"}), Reply(200, {"ok": True}))
    job_id = create_job(endpoints)
    status, answer = bulk(job_id, items(9))
    assert status == 201, answer
    assert settled(pipeline, endpoints) == []
    [operation] = batch_operations().values()
    assert int(operation["batch"]["rc_completed"]) + int(operation["batch"]["rc_failed"]) == 9
    no_dead_letters(pipeline)


def test_a_consumer_that_dies_mid_batch_loses_no_run(pipeline: RunPipeline, endpoints: JobEndpoints) -> None:
    pipeline.crash_every = 2
    job_id = create_job(endpoints)
    assert bulk(job_id, items(12))[0] == 201
    assert settled(pipeline, endpoints) == []
    assert {run["status"] for run in runs().values()} == {"completed"}
    no_dead_letters(pipeline)


# ---------------------------------------------------------------- bulk trigger: partial writes and sends
def test_a_bulk_trigger_whose_batch_write_is_partial_stores_every_run(
    pipeline: RunPipeline, endpoints: JobEndpoints
) -> None:
    job_id = create_job(endpoints)
    with Faults().partial("dynamodb", "BatchWriteItem", times=3).installed() as faults:
        status, answer = bulk(job_id, items(30))
    assert status == 201, answer
    assert [f[3] for f in faults.fired] == ["partial"] * 3
    assert answer["created"] == 30 and len(runs()) == 30
    assert settled(pipeline, endpoints) == []
    no_dead_letters(pipeline)


def test_a_bulk_trigger_whose_sends_are_partial_queues_every_run(
    pipeline: RunPipeline, endpoints: JobEndpoints
) -> None:
    job_id = create_job(endpoints)
    with Faults().partial("sqs", "SendMessageBatch", times=4).installed():
        status, answer = bulk(job_id, items(25))
    assert status == 201, answer
    assert settled(pipeline, endpoints) == []
    assert sorted(endpoint_calls(endpoints).values()) == [1] * 25
    no_dead_letters(pipeline)


def test_a_bulk_trigger_whose_runs_are_stored_but_cannot_be_queued_answers_201_and_runs_each_once(
    pipeline: RunPipeline, endpoints: JobEndpoints
) -> None:
    job_id = create_job(endpoints)
    # SQS refuses every send (six attempts each), and marking the runs for the sweeper is
    # throttled too: the runs are stored, and the sweeper's hourly recheck still finds them.
    faults = (
        Faults()
        .fail("sqs", "SendMessageBatch", "ServiceUnavailable", status=503)
        .throttle("dynamodb", "UpdateItem", where=touches("SET gsi2sk = :check"))
    )
    with faults.installed():
        status, answer = bulk(job_id, items(4))
    assert status == 201, answer  # the runs exist and will run: a retry must not create more
    assert len(runs()) == 4
    assert settled(pipeline, endpoints) == []
    assert sorted(endpoint_calls(endpoints).values()) == [1] * 4
    no_dead_letters(pipeline)


def test_a_single_trigger_that_cannot_be_queued_answers_201_and_runs_once(
    pipeline: RunPipeline, endpoints: JobEndpoints
) -> None:
    job_id = create_job(endpoints)
    faults = (
        Faults()
        .fail("sqs", "SendMessageBatch", "ServiceUnavailable", status=503)
        .throttle("dynamodb", "UpdateItem", where=touches("SET gsi2sk = :check"))
    )
    with faults.installed():
        status, answer = trigger(job_id, {"payload": {"one": 1}})
    assert status == 201, answer
    assert settled(pipeline, endpoints) == []
    assert list(endpoint_calls(endpoints).values()) == [1]


# ---------------------------------------------------------------- the worker: transactions, crashes
def test_transaction_conflicts_and_throttles_on_run_changes_lose_nothing(
    pipeline: RunPipeline, endpoints: JobEndpoints
) -> None:
    job_id = create_job(endpoints)
    assert bulk(job_id, items(6))[0] == 201
    faults = (
        Faults()
        .cancel_transaction("TransactionConflict", calls=[1, 2, 3, 5, 8])
        .throttle("dynamodb", "TransactWriteItems", calls=[4, 9, 10, 11, 12])
    )
    with faults.installed():
        assert settled(pipeline, endpoints) == []
    assert len(faults.fired) == 10
    assert sorted(endpoint_calls(endpoints).values())[-1] <= 2
    no_dead_letters(pipeline)


def test_a_crash_between_claiming_a_run_and_calling_its_endpoint_is_taken_over_after_the_lease(
    pipeline: RunPipeline, endpoints: JobEndpoints
) -> None:
    job_id = create_job(endpoints)
    assert bulk(job_id, items(3))[0] == 201
    claiming = touches("':to': {'S': 'running'}")
    with Faults().crash_after("dynamodb", "TransactWriteItems", where=claiming, times=2).installed() as faults:
        assert settled(pipeline, endpoints) == []
    assert [f[3] for f in faults.fired] == ["crash", "crash"]
    found = runs().values()
    assert {run["status"] for run in found} == {"completed"}
    assert sorted(int(run["attempts"]) for run in found) == [1, 2, 2]  # the crashed claims spent an attempt
    assert sorted(endpoint_calls(endpoints).values()) == [1, 1, 1]
    no_dead_letters(pipeline)


def test_a_crash_between_the_endpoint_call_and_its_status_write_calls_again_in_a_new_attempt(
    pipeline: RunPipeline, endpoints: JobEndpoints
) -> None:
    """The documented at-least-once window: the call went out, its outcome was never written."""
    job_id = create_job(endpoints)
    status, answer = trigger(job_id, {"payload": {"one": 1}})
    assert status == 201, answer
    ending = touches("':to': {'S': 'completed'}")
    with crash_before(Faults(), "dynamodb", "UpdateItem", where=ending).installed() as faults:
        assert settled(pipeline, endpoints) == []
    assert [f[3] for f in faults.fired] == ["crash-before"]
    [run] = runs().values()
    assert run["status"] == "completed" and int(run["attempts"]) == 2
    assert endpoint_calls(endpoints)[run["id"]] == 2  # once per attempt, never more
    no_dead_letters(pipeline)


def test_a_crash_after_the_last_run_ends_still_closes_its_batch(pipeline: RunPipeline, endpoints: JobEndpoints) -> None:
    job_id = create_job(endpoints)
    assert bulk(job_id, items(2))[0] == 201
    ending = touches("':to': {'S': 'completed'}")
    with Faults().crash_after("dynamodb", "TransactWriteItems", where=ending, times=2).installed():
        assert settled(pipeline, endpoints) == []
    [operation] = batch_operations().values()
    assert operation["batch"]["finished_at"]
    assert sorted(endpoint_calls(endpoints).values()) == [1, 1]


def test_endpoint_errors_and_a_slow_endpoint_end_every_run_within_its_attempts(
    pipeline: RunPipeline, endpoints: JobEndpoints
) -> None:
    endpoints.script(
        "/job",
        Reply(500),
        Reply(429, headers={"Retry-After": "2"}),
        Reply(200, delay=2.0),  # past timeout_secs=1: a timeout, retried
        Reply(503),
        Reply(200, {"ok": True}),
    )
    job_id = create_job(endpoints, timeout_secs=1, max_attempts=2)
    assert bulk(job_id, items(4))[0] == 201
    assert settled(pipeline, endpoints) == []
    statuses = Counter(run["status"] for run in runs().values())
    assert sum(statuses.values()) == 4 and set(statuses) <= {"completed", "failed", "timed_out"}
    no_dead_letters(pipeline)


# ---------------------------------------------------------------- retries keep their backoff
def deliver_once(pipeline: RunPipeline, queue: str = "RunQueue") -> None:
    """One invocation of the run worker with what the queue has visible now."""
    sqs = pipeline._sqs
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    got: list[dict[str, Any]] = list(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []))  # type: ignore[arg-type]
    assert got
    load_function("run_worker").lambda_handler(
        sqs_event("run_worker", got), LambdaContext(function_name="run_worker", remaining_ms=900_000)
    )


def test_a_duplicate_delivery_during_a_retry_backoff_does_not_run_the_retry_early(
    pipeline: RunPipeline, endpoints: JobEndpoints
) -> None:
    endpoints.script("/job", Reply(500), Reply(200, {"ok": True}))
    job_id = create_job(endpoints, retry_backoff_secs=600, retry_strategy="fixed")
    status, answer = trigger(job_id, {"payload": {"one": 1}})
    assert status == 201, answer
    run_id = answer["id"]
    deliver_once(pipeline)  # attempt 1: 500, the retry waits about ten minutes
    assert runs()[run_id]["status"] == "queued"
    # SQS delivers the same message again (at least once) long before the backoff is over.
    url = pipeline._sqs.get_queue_url(QueueName="RunQueue")["QueueUrl"]
    pipeline._sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"workspace_id": WS, "run_id": run_id}))
    deliver_once(pipeline)
    assert endpoint_calls(endpoints)[run_id] == 1, "the retry ran before its backoff"
    assert (runs()[run_id]["status"], int(runs()[run_id]["attempts"])) == ("queued", 1)


# ---------------------------------------------------------------- ttl expiry
def test_a_sweep_that_dies_after_expiring_the_last_run_of_a_batch_still_closes_the_batch(
    pipeline: RunPipeline, endpoints: JobEndpoints
) -> None:
    job_id = create_job(endpoints)
    # SQS is down when the runs are triggered: nothing is queued, the sweeper owns them.
    with Faults().fail("sqs", "SendMessageBatch", "ServiceUnavailable", status=503).installed():
        status, answer = bulk(job_id, items(3, ttl_secs=60))
    assert status == 201, answer
    pipeline.clock.offset += timedelta(minutes=5)  # past every run's ttl before any sweep
    closing = touches("attribute_not_exists(finished_at)")
    with Faults().crash_after("dynamodb", "TransactWriteItems", calls=[3]).installed(), pytest.raises(SimulatedCrash):
        pipeline.sweep()  # dies right after the third expiry commits, before the batch is closed
    assert {run["status"] for run in runs().values()} == {"expired"}
    with Faults().throttle("dynamodb", "UpdateItem", where=closing, times=1).installed():
        sweep_tolerantly(pipeline)  # the next tick fails to close the batch too
    assert settled(pipeline, endpoints) == []
    assert endpoint_calls(endpoints) == Counter()
    no_dead_letters(pipeline)


# ---------------------------------------------------------------- random schedules
KINDS: dict[str, Injection] = {
    **common("partial-write", "partial-send", "conflict", "throttle-transact", "throttle-update"),
    "crash-claim": lambda f, n: f.crash_after("dynamodb", "*", calls=[n], where=touches("':to': {'S': 'running'}")),
    "crash-before-end": lambda f, n: crash_before(f, "dynamodb", "*", where=touches("':to': {'S': 'completed'}")),
}
FAULTS = schedules(KINDS, max_call=10, max_size=6)


@schedule_settings(ci_examples=3)
@given(plan=FAULTS, duplicates=st.integers(0, 1), crash_every=st.sampled_from([0, 0, 4]), seed=st.integers(0, 99))
def test_any_schedule_of_faults_keeps_every_promise_of_runs(
    plan: list[tuple[str, int]], duplicates: int, crash_every: int, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.conftest import fresh_aws

    with fresh_aws(), job_endpoints() as endpoints:
        monkeypatch.setenv("BATCHOPS_LOCAL_MODE", "true")
        pipeline = RunPipeline(duplicates=duplicates, shuffle=random.Random(seed), crash_every=crash_every)
        pipeline.wire(monkeypatch)
        endpoints.script("/job", Reply(500), Reply(200, {"ok": True}))  # the first call fails: a retry
        with pipeline.clock.installed():
            job_id = create_job(endpoints)
            with scheduled(KINDS, plan).installed():
                status, answer = bulk(job_id, items(4))
                assert status in (201, 503), answer  # 503: nothing of it runs (checked below)
                single, _ = trigger(job_id, {"payload": {"single": True}})
                assert single in (201, 503)
                deliver_crashing(pipeline)
            broken = settled(pipeline, endpoints)
            assert not broken, "\n".join(broken)
            no_dead_letters(pipeline)


# ---------------------------------------------------------------- an outcome whose write is refused once
@pytest.mark.parametrize("in_batch", [False, True], ids=["trigger", "bulk"])
def test_a_throttled_outcome_write_keeps_the_outcome_instead_of_calling_again(
    pipeline: RunPipeline, endpoints: JobEndpoints, in_batch: bool
) -> None:
    """One refused write after the call used to throw the call's outcome away: the redelivery
    found the run leased, the sweeper sent it again after the lease, and the next attempt called
    the endpoint again; with no attempt left the run ended failed INTERRUPTED after a 200."""
    job_id = create_job(endpoints, max_attempts=1)
    if in_batch:
        assert bulk(job_id, items(1, priority=0))[0] == 201
    else:
        assert trigger(job_id, {"payload": {"one": 1}})[0] == 201
    operation = "TransactWriteItems" if in_batch else "UpdateItem"
    ending = touches("':to': {'S': 'completed'}")
    with Faults().throttle("dynamodb", operation, where=ending, times=1).installed() as faults:
        assert settled(pipeline, endpoints) == []
    assert [f[3] for f in faults.fired] == ["throttle"]
    [run] = runs().values()
    assert (run["status"], int(run["attempts"])) == ("completed", 1)
    assert endpoint_calls(endpoints)[run["id"]] == 1


def test_only_a_true_poison_message_reaches_the_dead_letter_queue(
    pipeline: RunPipeline, endpoints: JobEndpoints
) -> None:
    job_id = create_job(endpoints)
    assert bulk(job_id, items(3))[0] == 201
    url = pipeline._sqs.get_queue_url(QueueName="RunQueue")["QueueUrl"]
    pipeline._sqs.send_message(QueueUrl=url, MessageBody="not a run message")
    assert settled(pipeline, endpoints) == []
    assert pipeline.dead_letters() == {"RunDeadLetterQueue": ["not a run message"]}


def test_the_run_and_job_consumers_take_ten_records() -> None:
    """These suites run the workers as template.yaml configures them: 10 records per invocation,
    side by side (the copies that forced 10 before the template did are gone)."""
    import tests.pipeline

    sizes = {c.folder: c.event.batch_size for c in tests.pipeline.consumers()}
    assert sizes["run_worker"] == sizes["batch_job_worker"] == sizes["batch_urgent_job_worker"] == 10
