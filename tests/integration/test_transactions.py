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
