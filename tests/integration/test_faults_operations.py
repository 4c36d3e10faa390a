"""The Operations surface's stored jobs under injected AWS and delivery faults: async batches
(WorkQueue, its worker and the operations sweeper) and fail-fast transactions (the state machine
and its step function). Nothing is lost, no operation takes effect twice, every job ends once.

Each scenario ends with the invariant check (tests/invariants/operations.py) and the dead-letter
queues: empty, unless the scenario fed a true poison message (then exactly that one).

SQS shows a message again only once its visibility timeout has passed (WorkQueue: 540 s, longer
than a claim takes to go stale, 180 s). The Pipeline shows it at once, so `Clock` moves the
platform's clock on by the visibility timeout whenever a message is received again: the
redelivery then sees the time that would really have passed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend

from batchops.dal import clients
from batchops.settings import reset_settings
from batchops_local.aws import MOTO_CONFIG
from batchops_local.functions import install_lambda_bridge
from tests.faults import Faults, Injection, SimulatedCrash, common, schedule_settings, scheduled, schedules, touches
from tests.invariants.operations import effects, operation_jobs, operations_broken, result_of
from tests.invariants.table import table_items
from tests.job_endpoint import JobEndpoints, Reply, job_endpoints
from tests.pipeline import Pipeline
from tests.support import InProcessFunctions, LambdaContext, api_event, invoke, load_function
from tests.support import log_entry as entry
from tests.support import operation as op

WS = "ws-a"
VISIBILITY = timedelta(seconds=540)  # WorkQueue's VisibilityTimeout (template.yaml)
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:TransactionStateMachine"
RESULT_WRITE = touches("if_not_exists(#result")  # an operation's result being recorded
CLAIM = touches("SET claimed_at")
COMPLETE = touches("'S': 'COMPLETED'")  # PROCESSING -> COMPLETED with the summary
TAKE = touches("held_at = :at")


@dataclass
class Clock:
    """The platform's clock (batch_engine.now_utc), `offset` ahead of the real one."""

    offset: timedelta = field(default_factory=timedelta)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from batchops.services import batch_engine

    made = Clock()
    monkeypatch.setattr(batch_engine, "now_utc", made.now)
    return made


def redelivered_after_visibility(pipeline: Pipeline, clock: Clock) -> None:
    """A message received again arrives a visibility timeout after the last receive (a duplicate
    SQS sends of its own is a new receive, and may come at once). The run worker a triggered
    operation feeds hides a message it defers for the run's retry delay, at most 15 minutes."""
    for folder, later in (("batch_async_worker", VISIBILITY), ("run_worker", timedelta(minutes=15))):
        module = pipeline._modules[folder]
        real = getattr(module, "lambda_handler")  # noqa: B009 - set by load_function, unknown to mypy

        def handler(event: dict[str, Any], context: Any, real: Any = real, later: timedelta = later) -> Any:
            if any(int(r["attributes"].get("ApproximateReceiveCount", "1")) > 1 for r in event["Records"]):
                clock.offset += later
            return real(event, context)

        setattr(module, "lambda_handler", handler)  # noqa: B010


class ShiftedDatetime(datetime):
    """`datetime` for a module that reads the clock itself: now() is the test's Clock."""

    clock: Clock

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return datetime.now(tz) + cls.clock.offset


def make_pipeline(monkeypatch: pytest.MonkeyPatch, clock: Clock, **options: Any) -> Pipeline:
    from batchops.services import run_worker

    monkeypatch.setenv("BATCHOPS_LOCAL_MODE", "true")  # job endpoints on 127.0.0.1
    shifted = type("Shifted", (ShiftedDatetime,), {"clock": clock})
    monkeypatch.setattr(run_worker, "datetime", shifted)  # the run worker reads datetime.now itself
    made = Pipeline(**options)
    made.wire(monkeypatch)
    redelivered_after_visibility(made, clock)
    return made


@pytest.fixture
def pipeline(aws: None, monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Pipeline:
    return make_pipeline(monkeypatch, clock)


def call(name: str, **parts: Any) -> tuple[int, dict[str, str], Any]:
    return invoke(load_function(name), api_event(name, workspace=WS, **parts))


def logged(op_id: str, batch_id: str | None = None) -> dict[str, Any]:
    """An operation whose effect is observable: one event-log entry in its own batch."""
    return op(op_id, "/v1/events/batch", {"events": [entry(op_id)], "batchId": batch_id or f"b-{op_id}"})


def submit(*operations: dict[str, Any], **options: Any) -> str:
    status, _, answer = call("batch_async_submit", body={"operations": list(operations), **options})
    assert status == 202, answer
    return str(answer["data"]["jobId"])


def get(job_id: str) -> dict[str, Any]:
    status, _, answer = call("batch_async_get", path_params={"jobId": job_id})
    assert status == 200, answer
    return dict(answer["data"])


def settle(pipeline: Pipeline) -> list[str]:
    """Deliver and sweep until quiet; every broken promise of the path, and any dead letter."""
    pipeline.run_until_quiet()
    broken = operations_broken()
    dead = pipeline.dead_letters()
    return broken + ([f"dead letters: {dead}"] if dead else [])


def statuses(job: dict[str, Any]) -> list[tuple[int, str | None]]:
    return [
        (r["status"], (r["body"] or {}).get("code") if isinstance(r["body"], dict) else None) for r in job["results"]
    ]


def applied() -> dict[str, int]:
    return dict(effects(table_items()))


# ---------------------------------------------------------------- async jobs


def test_a_throttled_result_write_does_not_turn_a_success_into_interrupted(pipeline: Pipeline) -> None:
    job_id = submit(logged("a"), logged("b"))
    with Faults().throttle("dynamodb", "UpdateItem", where=RESULT_WRITE, calls=[1]).installed() as faults:
        assert settle(pipeline) == []
    assert [f[3] for f in faults.fired] == ["throttle"]
    job = get(job_id)
    assert job["status"] == "COMPLETED"
    assert statuses(job) == [(201, None), (201, None)]  # the first was applied: it says so
    assert applied() == {"b-a": 1, "b-b": 1}


def test_a_crash_between_claim_and_result_reports_the_operation_interrupted_and_never_reruns_it(
    pipeline: Pipeline,
) -> None:
    job_id = submit(logged("a"), logged("b"), continueOnError=True)
    # The worker dies right after claiming "a" (before it ran): the redelivery finds the stale claim.
    with Faults().crash_after("dynamodb", "UpdateItem", where=CLAIM, calls=[1]).installed():
        assert settle(pipeline) == []
    job = get(job_id)
    assert job["status"] == "COMPLETED" and statuses(job) == [(500, "INTERRUPTED"), (201, None)]
    assert applied() == {"b-b": 1}


def test_a_crash_after_a_result_write_reuses_the_result(pipeline: Pipeline) -> None:
    job_id = submit(logged("a"), logged("b"))
    with Faults().crash_after("dynamodb", "UpdateItem", where=RESULT_WRITE, calls=[1]).installed():
        assert settle(pipeline) == []
    assert statuses(get(job_id)) == [(201, None), (201, None)]
    assert applied() == {"b-a": 1, "b-b": 1}


def test_a_crash_after_the_job_completes_ends_it_once(pipeline: Pipeline) -> None:
    job_id = submit(logged("a"))
    with Faults().crash_after("dynamodb", "UpdateItem", where=COMPLETE, calls=[1]).installed():
        assert settle(pipeline) == []
    job = get(job_id)
    assert job["status"] == "COMPLETED" and job["summary"]["succeeded"] == 1
    assert applied() == {"b-a": 1}


def test_duplicate_and_out_of_order_deliveries_run_each_operation_once(
    aws: None, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    pipeline = make_pipeline(monkeypatch, clock, duplicates=2, shuffle=random.Random(7))
    jobs = [submit(logged(f"j{n}a"), logged(f"j{n}b"), parallel=bool(n % 2)) for n in range(4)]
    assert settle(pipeline) == []
    assert all(get(job_id)["summary"] == {"total": 2, "succeeded": 2, "failed": 0, "skipped": 0} for job_id in jobs)
    assert set(applied().values()) == {1} and len(applied()) == 8


def test_partial_writes_of_a_submitted_job_are_completed(pipeline: Pipeline) -> None:
    with Faults().partial("dynamodb", "BatchWriteItem", calls=[1]).installed() as faults:
        job_id = submit(*(logged(f"o{n}") for n in range(6)))
        assert settle(pipeline) == []
    assert faults.fired
    assert get(job_id)["summary"]["succeeded"] == 6


def test_throttled_takes_are_delivered_again(pipeline: Pipeline) -> None:
    job_id = submit(logged("a"))
    with Faults().throttle("dynamodb", "UpdateItem", where=TAKE, times=2).installed():
        assert settle(pipeline) == []
    assert get(job_id)["status"] == "COMPLETED" and applied() == {"b-a": 1}


def test_a_job_whose_message_cannot_be_queued_is_failed_not_left_queued(pipeline: Pipeline) -> None:
    with Faults().throttle("sqs", "SendMessage", where=touches("WorkQueue")).installed():
        status, _, answer = call("batch_async_submit", body={"operations": [logged("a")]})
    assert status == 503, answer
    [found] = operation_jobs().values()
    # The client was told it failed: it does not linger QUEUED for the four days its message
    # could have been delivered in, and a late delivery (the send may have gone through) runs nothing.
    assert found["job"]["status"] == "FAILED"
    assert settle(pipeline) == []
    assert applied() == {}


def test_only_a_poison_message_reaches_the_dead_letter_queue(pipeline: Pipeline) -> None:
    job_id = submit(logged("a"))
    sqs = boto3.client("sqs", region_name="us-east-1")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName="WorkQueue")["QueueUrl"], MessageBody="not json")
    pipeline.run_until_quiet()
    assert operations_broken() == []
    assert pipeline.dead_letters() == {"WorkDeadLetterQueue": ["not json"]}
    assert get(job_id)["status"] == "COMPLETED"


def test_a_job_whose_end_cannot_be_written_on_any_delivery_is_completed_with_its_results(
    pipeline: Pipeline,
) -> None:
    job_id = submit(logged("a"), logged("b"))
    # Every delivery (five) runs or reuses both operations, then cannot write the job's end. The
    # last one leaves the job to the sweeper: it succeeded, so it is not reported FAILED, and its
    # message, not a poison one, does not end in the dead-letter queue.
    with Faults().throttle("dynamodb", "UpdateItem", where=COMPLETE, times=5).installed() as faults:
        assert settle(pipeline) == []
    assert len(faults.fired) == 5
    job = get(job_id)
    assert job["status"] == "COMPLETED" and statuses(job) == [(201, None), (201, None)]
    assert job["summary"] == {"total": 2, "succeeded": 2, "failed": 0, "skipped": 0}
    assert applied() == {"b-a": 1, "b-b": 1}


def test_a_message_that_kills_every_delivery_is_the_one_dead_letter_and_its_job_fails_once(
    pipeline: Pipeline,
) -> None:
    job_id = submit(logged("a"))
    # Each delivery dies right after taking the job, before any operation: the message is truly
    # poison (it killed five workers), so it ends in the DLQ; the sweeper fails the job once no
    # delivery can hold it.
    with Faults().crash_after("dynamodb", "UpdateItem", where=TAKE, times=None).installed() as faults:
        pipeline.run_until_quiet()
    assert len(faults.fired) == 5
    assert operations_broken() == []
    assert pipeline.dead_letters() == {"WorkDeadLetterQueue": [json.dumps({"workspaceId": WS, "jobId": job_id})]}
    job = get(job_id)
    assert job["status"] == "FAILED" and job["completedAt"] and applied() == {}


# ---------------------------------------------------------------- operations that call out


@pytest.fixture
def endpoints() -> Iterator[JobEndpoints]:
    with job_endpoints() as found:
        yield found


@pytest.mark.parametrize(
    "replies",
    [
        [Reply(500), Reply(200, {"ok": True})],
        [Reply(429, headers={"Retry-After": "0"}), Reply(200, {"ok": True})],
        [Reply(200, {"ok": True}, delay=0.5)],
    ],
    ids=["500-then-200", "429-then-200", "slow"],
)
def test_a_triggered_run_whose_endpoint_fails_first_is_created_once_and_called_per_attempt(
    pipeline: Pipeline, endpoints: JobEndpoints, replies: list[Reply]
) -> None:
    endpoints.script("/hook", *replies)
    create = op("create", "/v1/jobs", {"name": "hook", "endpoint_url": endpoints.url("/hook"), "max_attempts": 3})
    trigger = op("run", "/v1/jobs/${create.body.id}/trigger", {"payload": {"n": 1}})
    with Faults().crash_after("dynamodb", "UpdateItem", where=RESULT_WRITE, calls=[2]).installed():
        job_id = submit(create, trigger)
        assert settle(pipeline) == []
    job = get(job_id)
    assert job["results"][0]["status"] == 201
    runs = [i for i in table_items() if i.get("type") == "run"]
    assert len(runs) == 1  # triggered once, though the worker died after triggering it
    assert runs[0]["status"] == "completed"
    assert len(endpoints.calls_to("/hook")) == len(replies)


# ---------------------------------------------------------------- transactions


@pytest.fixture
def step_functions(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Iterator[None]:
    original = LambdaSimpleBackend.invoke
    monkeypatch.setenv("BATCHOPS_TRANSACTION_STATE_MACHINE_ARN", MACHINE)
    clients.reset_clients()
    reset_settings()
    with mock_aws(config=cast(Any, MOTO_CONFIG)):
        from tests.support import create_template_resources

        create_template_resources(functions=True)
        install_lambda_bridge(InProcessFunctions())
        try:
            yield
        finally:
            LambdaSimpleBackend.invoke = original  # type: ignore[method-assign]
    clients.reset_clients()
    reset_settings()


def transaction(*operations: dict[str, Any]) -> tuple[int, Any]:
    status, _, answer = call("batch_transaction", body={"operations": list(operations)})
    return status, answer


def only_transaction() -> dict[str, Any]:
    [found] = operation_jobs().values()
    return found


@pytest.mark.usefixtures("step_functions")
def test_a_transaction_step_whose_result_write_is_throttled_still_reports_its_success() -> None:
    with Faults().throttle("dynamodb", "UpdateItem", where=RESULT_WRITE, calls=[1]).installed():
        status, answer = transaction(logged("a"), logged("b"))
    assert status == 200, answer
    assert [r["status"] for r in answer["results"]] == [201, 201]
    assert operations_broken() == [] and applied() == {"b-a": 1, "b-b": 1}


@pytest.mark.usefixtures("step_functions")
def test_a_transient_storage_error_in_a_step_is_retried_not_the_end_of_the_transaction() -> None:
    with Faults().throttle("dynamodb", "Query", where=touches("begins_with(sk, :op)"), calls=[2]).installed() as f:
        status, answer = transaction(logged("a"), logged("b"))
    assert f.fired
    assert status == 200, answer
    assert [r["status"] for r in answer["results"]] == [201, 201]
    assert operations_broken() == [] and applied() == {"b-a": 1, "b-b": 1}


@pytest.mark.usefixtures("step_functions")
def test_a_failed_execution_ends_the_job_with_completed_at() -> None:
    # A step that fails for good (its role refused, say): the execution ends FAILED.
    refused = touches("begins_with(sk, :op)")
    with Faults().fail("dynamodb", "Query", "AccessDeniedException", where=refused, calls=[2, 3, 4, 5]).installed():
        status, answer = transaction(logged("a"), logged("b"), logged("c"))
    assert status == 200, answer
    assert answer["results"][0]["status"] == 201
    assert operations_broken() == []
    assert applied() == {"b-a": 1}


def keyed(op_id: str) -> dict[str, Any]:
    """`logged`, with an idempotency key: its entry is written by a conditional transaction."""
    body = {"events": [entry(op_id, idempotencyKey=f"key-{op_id}")], "batchId": f"b-{op_id}"}
    return op(op_id, "/v1/events/batch", body)


@pytest.mark.usefixtures("step_functions")
def test_cancelled_transactions_inside_operations_are_retried_and_apply_once() -> None:
    with Faults().cancel_transaction("TransactionConflict", times=3).installed() as faults:
        status, answer = transaction(keyed("a"), keyed("b"))
    assert len(faults.fired) == 3
    assert status == 200 and [r["status"] for r in answer["results"]] == [201, 201], answer
    assert operations_broken() == [] and applied() == {"b-a": 1, "b-b": 1}


@pytest.mark.usefixtures("step_functions")
def test_an_operation_whose_write_is_always_cancelled_stops_the_transaction_fail_fast() -> None:
    with Faults().cancel_transaction("TransactionConflict").installed() as faults:
        status, answer = transaction(keyed("a"), keyed("b"))
    assert faults.fired
    assert status == 200, answer
    first, second = answer["results"]
    assert not 200 <= first["status"] < 300 and second["body"]["code"] == "SKIPPED"
    assert operations_broken() == [] and applied() == {}


@pytest.mark.usefixtures("step_functions")
def test_a_transaction_whose_status_cannot_be_read_for_a_while_is_answered_with_its_results() -> None:
    # The execution runs on while its status is throttled: a 5xx would make the client retry a
    # transaction that applied, and apply it twice.
    with Faults().throttle("stepfunctions", "DescribeExecution", calls=[1, 2, 3]).installed() as faults:
        status, answer = transaction(logged("a"), logged("b"))
    assert len(faults.fired) == 3
    assert status == 200 and [r["status"] for r in answer["results"]] == [201, 201], answer
    assert operations_broken() == [] and applied() == {"b-a": 1, "b-b": 1}


@pytest.mark.usefixtures("step_functions")
def test_a_transaction_stopped_at_its_deadline_is_answered_even_if_the_stop_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BATCHOPS_HTTP_DEADLINE_MS", "1")
    reset_settings()
    with Faults().throttle("stepfunctions", "StopExecution").installed() as faults:
        status, answer = transaction(logged("a"), logged("b"))
    assert faults.fired
    assert status == 200, answer
    assert answer["results"][-1]["body"]["code"] in ("TIMEOUT", "INTERRUPTED")
    [found] = operation_jobs().values()
    assert found["job"]["status"] == "FAILED" and found["job"]["completed_at"]
    assert operations_broken() == []


@pytest.mark.usefixtures("step_functions")
def test_a_transaction_whose_execution_cannot_start_is_failed_not_left_queued() -> None:
    with Faults().throttle("stepfunctions", "StartExecution").installed():
        status, answer = transaction(logged("a"))
    assert status == 503, answer
    assert only_transaction()["job"]["status"] == "FAILED"
    assert operations_broken() == []


def test_a_step_delivered_twice_runs_its_operation_once(aws: None, clock: Clock) -> None:
    from batchops.models.common import Caller, Plan
    from batchops.models.operations import BatchRequest
    from batchops.services import operation_jobs

    caller = Caller(workspace_id=WS, key_id="key_test", plan=Plan.PRO)
    request = BatchRequest.model_validate({"operations": [logged("a"), logged("b")]})
    job_id = operation_jobs.start_transaction(caller, request, 400)
    step = load_function("transaction_step")
    for index in (0, 0, 1, 0, 1):  # Lambda's retries after it ran; out of order
        out = step.lambda_handler({"workspaceId": WS, "jobId": job_id, "index": index}, LambdaContext())
        assert out["index"] == index + 1
    assert operations_broken() == [] and applied() == {"b-a": 1, "b-b": 1}
    assert [result_of(o).status for o in only_transaction()["operations"]] == [201, 201]  # type: ignore[union-attr]


# ---------------------------------------------------------------- random schedules

KINDS: dict[str, Injection] = {
    "throttle-result": lambda f, n: f.throttle("dynamodb", "UpdateItem", where=RESULT_WRITE, calls=[n]),
    "crash-claim": lambda f, n: f.crash_after("dynamodb", "UpdateItem", where=CLAIM, calls=[n]),
    "crash-result": lambda f, n: f.crash_after("dynamodb", "UpdateItem", where=RESULT_WRITE, calls=[n]),
    "crash-complete": lambda f, n: f.crash_after("dynamodb", "UpdateItem", where=COMPLETE, calls=[n]),
    "throttle-take": lambda f, n: f.throttle("dynamodb", "UpdateItem", where=TAKE, calls=[n]),
    **common("partial-write"),
}
FAULTS = schedules(KINDS, max_call=8, max_size=5)


@schedule_settings(ci_examples=4)
@given(plan=FAULTS, duplicates=st.integers(0, 2), crash_every=st.sampled_from([0, 0, 3]), seed=st.integers(0, 99))
def test_any_schedule_of_faults_keeps_every_promise_of_async_jobs(
    plan: list[tuple[str, int]], duplicates: int, crash_every: int, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchops.services import batch_engine
    from tests.integration.conftest import fresh_aws

    clock = Clock()
    with fresh_aws(), monkeypatch.context() as patched:
        patched.setattr(batch_engine, "now_utc", clock.now)
        pipeline = make_pipeline(
            patched, clock, duplicates=duplicates, shuffle=random.Random(seed), crash_every=crash_every
        )
        with scheduled(KINDS, plan).installed():
            jobs = [
                submit(logged(f"s{n}a"), logged(f"s{n}b"), logged(f"s{n}c"), continueOnError=n == 1, parallel=n == 2)
                for n in range(3)
            ]
            for _ in range(20):
                try:
                    pipeline.run_until_quiet()
                    break
                except SimulatedCrash:
                    continue  # a sweep died: the next one finds what it left
        broken = settle(pipeline)
        assert not broken, "\n".join(broken)
        for job_id in jobs:
            job = get(job_id)
            if job["status"] == "COMPLETED":
                assert len(job["results"]) == 3
        assert set(applied().values()) <= {1}  # no operation took effect twice
