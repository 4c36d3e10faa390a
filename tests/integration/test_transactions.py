"""Fail-fast transactions: the real ASL file executed by moto's Step Functions, each task
routed to the real TransactionStepFunction handler, driven by the real endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend

from batchops.dal import clients
from batchops.settings import reset_settings
from batchops_local.aws import MOTO_CONFIG
from batchops_local.functions import install_lambda_bridge
from tests.support import InProcessFunctions, api_event, events_in, invoke, load_function
from tests.support import log_entry as event
from tests.support import operation as op

TRANSACTION = load_function("batch_transaction")
GET_EVENTS = load_function("get_event_batch")
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:TransactionStateMachine"


@pytest.fixture
def step_functions(monkeypatch) -> Iterator[None]:
    original = LambdaSimpleBackend.invoke
    monkeypatch.setenv("BATCHOPS_TRANSACTION_STATE_MACHINE_ARN", MACHINE)
    clients.reset_clients()
    reset_settings()
    with mock_aws(config=MOTO_CONFIG):
        from tests.support import create_template_resources

        create_template_resources(functions=True)
        install_lambda_bridge(InProcessFunctions())
        try:
            yield
        finally:
            LambdaSimpleBackend.invoke = original  # type: ignore[method-assign]
    clients.reset_clients()
    reset_settings()


def transaction(body, workspace="ws-a"):
    return invoke(TRANSACTION, api_event("batch_transaction", body=body, workspace=workspace))


@pytest.mark.usefixtures("step_functions")
def test_all_operations_succeed_in_order_through_the_state_machine():
    status, _, body = transaction(
        {
            "operations": [
                op("create", "/v1/events/batch", {"events": [event("t1")], "batchId": "txn"}),
                op(
                    "follow",
                    "/v1/events/batch",
                    {"events": [event("${create.body.correlationIds.0}")], "batchId": "txn"},
                ),
            ]
        }
    )
    assert status == 200
    assert [(r["id"], r["status"]) for r in body["results"]] == [("create", 201), ("follow", 201)]
    assert body["summary"] == {"total": 2, "succeeded": 2, "failed": 0, "skipped": 0}
    assert events_in("txn") == 2
    executions = boto3.client("stepfunctions").list_executions(stateMachineArn=MACHINE)["executions"]
    assert [e["status"] for e in executions] == ["SUCCEEDED"]


@pytest.mark.usefixtures("step_functions")
def test_stops_at_the_first_failure_and_skips_the_rest_without_rollback():
    status, _, body = transaction(
        {
            "operations": [
                op("first", "/v1/events/batch", {"events": [event()], "batchId": "fail-fast"}),
                op("broken", body={"eventStatus": "SUCCESS"}),
                op("never", "/v1/events/batch", {"events": [event()], "batchId": "never"}),
            ],
            "continueOnError": True,  # a transaction is fail-fast whatever this says
        }
    )
    assert status == 200
    assert [r["status"] for r in body["results"]] == [201, 422, 424]
    assert body["results"][2]["body"] == {"error": "Skipped: a previous operation failed", "code": "SKIPPED"}
    assert body["summary"] == {"total": 3, "succeeded": 1, "failed": 1, "skipped": 1}
    assert events_in("fail-fast") == 1  # no rollback of what already ran
    assert events_in("never") == 0


@pytest.mark.usefixtures("step_functions")
def test_whole_batch_validation_happens_before_any_execution():
    status, _, _ = transaction({"operations": [op("x", body=event()), op("x", body=event())]})
    assert status == 422
    assert boto3.client("stepfunctions").list_executions(stateMachineArn=MACHINE)["executions"] == []


@pytest.mark.usefixtures("step_functions")
def test_operations_not_reached_by_the_deadline_are_504(monkeypatch):
    monkeypatch.setenv("BATCHOPS_HTTP_DEADLINE_MS", "1")
    reset_settings()
    _, _, body = transaction({"operations": [op("a", body=event()), op("b", body=event())]})
    assert len(body["results"]) == 2
    assert body["results"][-1]["status"] == 504
    assert all(r["body"]["code"] == "TIMEOUT" for r in body["results"] if r["status"] == 504)
    # (moto cannot stop an execution that has just started, so its final state is not asserted)


@pytest.mark.usefixtures("step_functions")
def test_references_work_even_when_parallel_is_sent():
    status, _, body = transaction(
        {
            "operations": [
                op("a", body=event("ref-1")),
                op("b", body=event("${a.body.correlationId}", "SUCCESS")),
            ],
            "parallel": True,
        }
    )
    assert status == 200 and [r["status"] for r in body["results"]] == [201, 201]
    assert body["results"][1]["body"]["correlationId"] == event("ref-1")["correlationId"]


@pytest.mark.usefixtures("step_functions")
def test_a_failed_execution_reports_the_broken_operation_and_skips_the_rest(monkeypatch):
    from batchops.services import operations

    real = operations.run_one

    def crash_on_second(caller, operation, earlier, target):
        if operation.id == "second":
            raise RuntimeError("the step crashed")
        return real(caller, operation, earlier, target)

    monkeypatch.setattr(operations, "run_one", crash_on_second)
    _, _, body = transaction(
        {"operations": [op("first", body=event("f1")), op("second", body=event("f2")), op("third", body=event("f3"))]}
    )
    assert [r["status"] for r in body["results"]] == [201, 500, 424]
    assert body["results"][1]["body"]["code"] == "INTERRUPTED"
    assert body["summary"] == {"total": 3, "succeeded": 1, "failed": 1, "skipped": 1}


@pytest.mark.usefixtures("step_functions")
def test_a_step_reads_its_own_operation_and_only_the_results_it_references(monkeypatch):
    from batchops.dal.operation_jobs import OperationJobRepository

    reads = []
    real = OperationJobRepository.get

    def spy(self, workspace_id, job_id, only=None):
        reads.append(None if only is None else sorted(only))
        return real(self, workspace_id, job_id, only)

    monkeypatch.setattr(OperationJobRepository, "get", spy)
    operations = [op(f"o{i}", body=event(f"c{i}")) for i in range(5)]
    operations[4]["body"] = event("${o1.body.correlationId}")
    _, _, body = transaction({"operations": operations})
    assert [r["status"] for r in body["results"]] == [201] * 5
    assert body["results"][4]["body"]["correlationId"] == event("c1")["correlationId"]
    partial = [r for r in reads if r is not None]
    assert partial == [[0], [1], [2], [3], [4], [1]]
    assert reads.count(None) == 2  # the summary at the end, and the endpoint's answer


# ---------------------------------------------------------------- the deadline (issue 13)
def poll(condition, seconds=30.0):
    """Poll with a deadline: the execution runs in moto's own thread."""
    import time

    give_up = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < give_up, "condition not reached"
        time.sleep(0.02)


@pytest.mark.usefixtures("step_functions")
def test_at_the_deadline_a_running_operation_is_reported_interrupted_and_none_starts_after(monkeypatch):
    import threading

    from batchops.api import operations as api_operations
    from batchops.services import operation_jobs, operations

    in_flight, release = threading.Event(), threading.Event()
    active = []
    real_run_one, real_step = operations.run_one, operation_jobs.run_transaction_step

    def slow(caller, operation, earlier, target):
        if operation.id == "slow":
            in_flight.set()
            release.wait(30)  # still running when the endpoint gives up
        return real_run_one(caller, operation, earlier, target)

    def counted_step(*args, **kwargs):
        active.append(1)
        try:
            return real_step(*args, **kwargs)
        finally:
            active.pop()

    class UntilInFlight:
        """The HTTP deadline passes while "slow" runs."""

        def remaining(self):
            return 0.0 if in_flight.is_set() else 0.05

        def passed(self):
            return in_flight.is_set()

    monkeypatch.setattr(operations, "run_one", slow)
    monkeypatch.setattr(operation_jobs, "run_transaction_step", counted_step)
    monkeypatch.setattr(api_operations, "sync_deadline", UntilInFlight)
    try:
        status, _, body = transaction(
            {
                "operations": [
                    op("first", "/v1/events/batch", {"events": [event("a")], "batchId": "before-deadline"}),
                    op("slow", "/v1/events/batch", {"events": [event("b")], "batchId": "at-deadline"}),
                    op("after", "/v1/events/batch", {"events": [event("c")], "batchId": "after-deadline"}),
                ]
            }
        )
    finally:
        release.set()
    assert status == 200
    codes = [(r["status"], r["body"].get("code")) for r in body["results"]]
    assert codes == [(201, None), (500, "INTERRUPTED"), (504, "TIMEOUT")]
    assert body["summary"] == {"total": 3, "succeeded": 1, "failed": 2, "skipped": 0}
    executions = boto3.client("stepfunctions").list_executions(stateMachineArn=MACHINE)["executions"]
    arn = executions[0]["executionArn"]
    poll(lambda: boto3.client("stepfunctions").describe_execution(executionArn=arn)["status"] != "RUNNING")
    poll(lambda: not active)
    # "Its effect is unknown" was the truth: it took effect after the answer.
    assert events_in("at-deadline") == 1
    # The operation reported as not run never ran.
    assert events_in("after-deadline") == 0


def test_a_step_that_claimed_its_operation_as_the_transaction_stopped_does_not_run_it(aws, monkeypatch):
    from batchops.dal.operation_jobs import OperationJobRepository
    from batchops.models.common import Caller, Plan
    from batchops.models.operations import BatchRequest, JobStatus
    from batchops.services import operation_jobs
    from tests.support import LambdaContext

    caller = Caller(workspace_id="ws-a", key_id="key_test", plan=Plan.PRO)
    request = BatchRequest.model_validate(
        {"operations": [op("late", "/v1/events/batch", {"events": [event()], "batchId": "late"})]}
    )
    job_id = operation_jobs.start_transaction(caller, request, 200)
    repository = OperationJobRepository("DomainTable")
    real_claim = OperationJobRepository.claim_operation

    def claim_as_the_deadline_passes(self, *args):
        claimed = real_claim(self, *args)
        # The endpoint's deadline passes now: it closes the job before it reads the results.
        repository.transition(
            "ws-a", job_id, (JobStatus.QUEUED, JobStatus.PROCESSING), JobStatus.FAILED, error="stopped"
        )
        return claimed

    monkeypatch.setattr(OperationJobRepository, "claim_operation", claim_as_the_deadline_passes)
    step = load_function("transaction_step")
    out = step.lambda_handler({"workspaceId": "ws-a", "jobId": job_id, "index": 0}, LambdaContext())
    assert out["done"] is True
    assert events_in("late") == 0
    answer = operation_jobs.transaction_results("ws-a", job_id, execution_status="RUNNING")
    assert [(r.status, r.body["code"]) for r in answer.results] == [(504, "TIMEOUT")]
