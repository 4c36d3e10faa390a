"""Job and run workers take up to 10 records per invocation (issue 14): the records run side by side,
each reported on its own (a failed record stays, the others are deleted), none sees another's log
keys; and emitted webhook events read the workspace's subscriptions once per invocation.

The template's BatchSize is not assumed: these tests give the consumers 10 records themselves."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

import tests.pipeline
from batchops.dal import keys
from batchops.models.webhooks import WebhookCreate
from batchops.services import webhooks
from tests.batch_size_ten import consumers_taking
from tests.invariants.batches import batches, batches_broken
from tests.job_endpoint import JobEndpoints, Reply, job_endpoints
from tests.pipeline import Pipeline
from tests.support import LambdaContext, api_event, invoke, load_function, sqs_event

WS = "ws-a"


@pytest.fixture
def endpoints() -> Iterator[JobEndpoints]:
    with job_endpoints() as found:
        yield found


@pytest.fixture
def pipeline(aws: None, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    monkeypatch.setenv("BATCHOPS_LOCAL_MODE", "true")  # receivers on 127.0.0.1
    monkeypatch.setattr(tests.pipeline, "consumers", lambda: consumers_taking(10))
    made = Pipeline(sweeps=())
    made.wire(monkeypatch)
    return made


def call(name: str, **parts: Any) -> tuple[int, dict[str, str], Any]:
    return invoke(load_function(name), api_event(name, workspace=WS, **parts))


def create_batch(endpoints: JobEndpoints, jobs: int, path: str = "/job") -> str:
    body = {
        "name": "ten",
        "jobs": [{"id": f"j{i}", "type": "http", "config": {"url": endpoints.url(path)}} for i in range(jobs)],
        "options": {"max_parallel": jobs},
    }
    status, _, answer = call("create_batch", body=body)
    assert status == 201, answer
    return str(answer["data"]["batch_id"])


def take(queue: str, at_most: int = 10) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    found: list[dict[str, Any]] = []
    while len(found) < at_most:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
        if not got:
            break
        found += got
    return found


def delete(queue: str, messages: list[dict[str, Any]]) -> None:
    """What the event source mapping does with the records an invocation did not report."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def subscription_queries(counts: list[dict[str, Any]]) -> int:
    partition = keys.webhooks_of_workspace(WS)
    return sum(1 for params in counts if params.get("ExpressionAttributeValues", {}).get(":pk") == {"S": partition})


def recording_queries() -> tuple[list[dict[str, Any]], Any]:
    from batchops.dal import clients

    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        seen.append(params)

    clients.dynamodb().meta.events.register("provide-client-params.dynamodb.Query", record)
    return seen, record


def test_ten_job_records_run_side_by_side_in_one_invocation(pipeline: Pipeline, endpoints: JobEndpoints) -> None:
    endpoints.script("/slow", *[Reply(200, {"ok": True}, delay=0.4) for _ in range(10)])
    batch_id = create_batch(endpoints, 10, "/slow")
    messages = take("BatchJobQueue")
    assert len(messages) == 10
    worker = load_function("batch_job_worker")
    result = worker.lambda_handler(sqs_event("batch_job_worker", messages), LambdaContext(remaining_ms=60_000))
    assert result == {"batchItemFailures": []}
    assert len(endpoints.calls_to("/slow")) == 10
    assert endpoints.peak("/slow") >= 5  # one at a time before: each waited for the one ahead
    delete("BatchJobQueue", messages)
    pipeline.run_until_quiet()
    assert batches()[batch_id]["batch"]["status"] == "completed"
    assert batches_broken(endpoint_calls=Counter(c.headers.get("webhook-id", "") for c in endpoints.calls)) == []


def test_a_record_that_fails_is_the_only_one_reported(
    pipeline: Pipeline, endpoints: JobEndpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchops.services import batch_worker

    create_batch(endpoints, 6)
    messages = take("BatchJobQueue")
    real = batch_worker.run
    poisoned = json.loads(messages[2]["Body"])["index"]

    def run(workspace_id: str, batch_id: str, index: int, **options: Any) -> Any:
        if index == poisoned:
            raise RuntimeError("this record's work failed")
        return real(workspace_id, batch_id, index, **options)

    monkeypatch.setattr(batch_worker, "run", run)
    worker = load_function("batch_job_worker")
    result = worker.lambda_handler(sqs_event("batch_job_worker", messages), LambdaContext(remaining_ms=60_000))
    assert result == {"batchItemFailures": [{"itemIdentifier": messages[2]["MessageId"]}]}
    assert len(endpoints.calls_to("/job")) == 5


def test_a_record_started_without_time_for_its_job_is_reported_unclaimed(
    pipeline: Pipeline, endpoints: JobEndpoints
) -> None:
    batch_id = create_batch(endpoints, 3)
    messages = take("BatchJobQueue")
    worker = load_function("batch_job_worker")
    result = worker.lambda_handler(sqs_event("batch_job_worker", messages), LambdaContext(remaining_ms=5_500))
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == sorted(m["MessageId"] for m in messages)
    assert endpoints.calls_to("/job") == []
    jobs = batches()[batch_id]["jobs"]
    assert {(str(j["status"]), int(j["attempts"])) for j in jobs} == {("queued", 0)}


def test_records_side_by_side_keep_their_own_log_keys(
    pipeline: Pipeline, endpoints: JobEndpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchops.observability import logger
    from batchops.services import batch_worker

    create_batch(endpoints, 8)
    messages = take("BatchJobQueue")
    real = batch_worker.run
    seen: dict[int, Any] = {}

    def run(workspace_id: str, batch_id: str, index: int, **options: Any) -> Any:
        delivery = real(workspace_id, batch_id, index, **options)  # the endpoint call lets the others start
        keys_now = {**logger().get_current_keys(), **logger().thread_safe_get_current_keys()}
        seen[index] = keys_now.get("job_index")
        return delivery

    monkeypatch.setattr(batch_worker, "run", run)
    worker = load_function("batch_job_worker")
    result = worker.lambda_handler(sqs_event("batch_job_worker", messages), LambdaContext(remaining_ms=60_000))
    assert result == {"batchItemFailures": []}
    assert seen == {index: index for index in range(8)}
    after = {**logger().get_current_keys(), **logger().thread_safe_get_current_keys()}
    assert "job_index" not in after and "batch_id" not in after


def test_a_worker_invocation_reads_the_subscriptions_once_and_a_later_subscription_gets_the_next_ones(
    pipeline: Pipeline, endpoints: JobEndpoints
) -> None:
    from batchops.dal import clients

    first = webhooks.create_subscription(WS, WebhookCreate(url=endpoints.url("/first"), events=["batch.job_completed"]))
    create_batch(endpoints, 6)
    messages = take("BatchJobQueue")
    worker = load_function("batch_job_worker")
    seen, hook = recording_queries()
    try:
        result = worker.lambda_handler(sqs_event("batch_job_worker", messages), LambdaContext(remaining_ms=60_000))
        assert result == {"batchItemFailures": []}
        assert subscription_queries(seen) == 1  # 6 job_completed events (and progress), one read

        second = webhooks.create_subscription(
            WS, WebhookCreate(url=endpoints.url("/second"), events=["batch.job_completed"])
        )
        create_batch(endpoints, 4)
        later = take("BatchJobQueue")
        seen.clear()
        result = worker.lambda_handler(sqs_event("batch_job_worker", later), LambdaContext(remaining_ms=60_000))
        assert result == {"batchItemFailures": []}
        assert subscription_queries(seen) == 1
    finally:
        clients.dynamodb().meta.events.unregister("provide-client-params.dynamodb.Query", hook)
    # The first subscription got the events of both invocations; the second, created between
    # them, those of the second only.
    assert len(webhooks.list_deliveries(WS, str(first["id"]))) == 10
    assert len(webhooks.list_deliveries(WS, str(second["id"]))) == 4


def test_outside_a_worker_invocation_every_emission_reads_the_subscriptions(aws: None) -> None:
    """An HTTP function (a batch's create or cancel) has no invocation scope: it reads them each time."""
    seen, hook = recording_queries()
    from batchops.dal import clients

    try:
        for n in range(3):
            webhooks.emit(WS, "batch.completed", "b1", {}, event_key=f"b1:{n}")
    finally:
        clients.dynamodb().meta.events.unregister("provide-client-params.dynamodb.Query", hook)
    assert subscription_queries(seen) == 3
