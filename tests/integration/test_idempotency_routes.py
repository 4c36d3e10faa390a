"""Every creating POST honours an idempotency key, under either header name.

The test walks the route table: every POST but the dry run must honour the key, and each needs a
recipe here (a request that succeeds, and a different body), so a creating route added later fails
this test until it is covered. For each route and header name:
- the same key again replays the first answer, marked Idempotent-Replayed: true, and changes
  nothing (no item stored, no message queued);
- the same key with another body is 422 IDEMPOTENCY_KEY_REUSED.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend

from batchops.api.router import Endpoint
from batchops.api.routes import route_table
from batchops.dal import clients
from batchops.settings import reset_settings
from batchops_local.aws import MOTO_CONFIG
from batchops_local.functions import install_lambda_bridge
from batchops_local.template import load_template
from tests.support import (
    ROOT,
    InProcessFunctions,
    api_event,
    create_template_resources,
    invoke,
    load_function,
    log_entry,
    operation,
    wire_environment,
)

TEMPLATE = load_template(ROOT / "template.yaml")
FUNCTION_OF_ROUTE = {(route.method, route.path): route.function_name for route in TEMPLATE.routes}
NOT_CREATING = {("POST", "/v1/batch/dry-run")}
CREATING = [e for e in route_table() if e.method == "POST" and e.key not in NOT_CREATING]
HEADERS = ("Idempotency-Key", "X-Idempotency-Key")


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto with the template's resources, Step Functions executing (for the transaction route),
    and every function's queue and bucket in the environment."""
    original = LambdaSimpleBackend.invoke
    clients.reset_clients()
    with mock_aws(config=MOTO_CONFIG):
        create_template_resources(functions=True)
        install_lambda_bridge(InProcessFunctions())
        wire_environment(monkeypatch, "BatchFunction")
        monkeypatch.setenv(
            "BATCHOPS_TRANSACTION_STATE_MACHINE_ARN",
            "arn:aws:states:us-east-1:123456789012:stateMachine:TransactionStateMachine",
        )
        reset_settings()
        try:
            yield
        finally:
            LambdaSimpleBackend.invoke = original  # type: ignore[method-assign]
    clients.reset_clients()
    reset_settings()


def call(endpoint: Endpoint, body: Any, headers: dict[str, str], path_params: dict[str, str] | None = None) -> Any:
    folder = TEMPLATE.functions[FUNCTION_OF_ROUTE[endpoint.key]].code_dir.name
    event = api_event(folder, body=body, headers=headers, path_params=path_params)
    event["resource"] = endpoint.path  # a function serving two routes has one sample
    if body is None:
        event["body"] = None
    return invoke(load_function(folder), event)


def created(path: str, body: Any) -> dict[str, Any]:
    endpoint = next(e for e in route_table() if e.key == ("POST", path))
    status, _, answer = call(endpoint, body, {})
    assert 200 <= status < 300, answer
    return dict(answer)


def new_job() -> dict[str, str]:
    job = created("/v1/jobs", {"name": f"job-{uuid.uuid4().hex}", "endpoint_url": "https://hooks.example.com/run"})
    return {"jobID": job["id"]}


def cancelled_batch() -> dict[str, str]:
    batch = created(
        "/v1/batches",
        {"name": "b", "jobs": [{"id": "j", "type": "http", "config": {"url": "https://hooks.example.com/x"}}]},
    )
    batch_id = batch["data"]["batch_id"]
    status, _, answer = invoke(
        load_function("cancel_batch"), api_event("cancel_batch", path_params={"batch_id": batch_id})
    )
    assert status == 200, answer
    return {"batch_id": batch_id}


def tracked(message: str) -> dict[str, Any]:
    return {"event": "signup", "properties": {"plan": "pro"}, "timestamp": "2026-10-29T22:00:00Z", "messageId": message}


@dataclass(frozen=True)
class Recipe:
    body: Any
    other_body: Any  # None: the route takes no body, so no other body can be sent
    setup: Callable[[], dict[str, str]] = field(default=lambda: {})


OPERATIONS = {"operations": [operation("a", "/v1/events", log_entry("idem-op"))]}
RECIPES: dict[tuple[str, str], Recipe] = {
    ("POST", "/v1/events"): Recipe(log_entry("idem-1"), log_entry("idem-2")),
    ("POST", "/v1/events/batch"): Recipe({"events": [log_entry("idem-3")]}, {"events": [log_entry("idem-4")]}),
    ("POST", "/v1/batch"): Recipe(OPERATIONS, {"operations": [operation("b", "/v1/events", log_entry("idem-5"))]}),
    ("POST", "/v1/batch/transaction"): Recipe(
        OPERATIONS, {"operations": [operation("c", "/v1/events", log_entry("x"))]}
    ),
    ("POST", "/v1/batch/async"): Recipe(OPERATIONS, {"operations": [operation("d", "/v1/events", log_entry("y"))]}),
    ("POST", "/v1/jobs"): Recipe(
        {"name": "idempotent-job", "endpoint_url": "https://hooks.example.com/a"},
        {"name": "another-job", "endpoint_url": "https://hooks.example.com/a"},
    ),
    ("POST", "/v1/jobs/{jobID}/trigger"): Recipe({"payload": {"n": 1}}, {"payload": {"n": 2}}, new_job),
    ("POST", "/v1/jobs/{jobID}/trigger-bulk"): Recipe(
        {"items": [{"payload": {"n": 1}}]}, {"items": [{"payload": {"n": 2}}]}, new_job
    ),
    ("POST", "/v1/jobs/{jobID}/trigger/bulk"): Recipe(
        {"items": [{"payload": {"n": 1}}]}, {"items": [{"payload": {"n": 2}}]}, new_job
    ),
    ("POST", "/v1/bulk-track"): Recipe([tracked("m-1")], [tracked("m-2")]),
    ("POST", "/v1/track"): Recipe(tracked("m-3"), tracked("m-4")),
    ("POST", "/v1/bulk-track/uploads"): Recipe(None, None),
    ("POST", "/v1/batches"): Recipe(
        {"name": "once", "jobs": [{"id": "j", "type": "http", "config": {"url": "https://hooks.example.com/x"}}]},
        {"name": "twice", "jobs": [{"id": "j", "type": "http", "config": {"url": "https://hooks.example.com/x"}}]},
    ),
    ("POST", "/v1/batches/{batch_id}/retry"): Recipe({}, {"max_retries": 1}, cancelled_batch),
    ("POST", "/v1/webhooks"): Recipe(
        {"url": "https://hooks.example.com/a", "events": ["batch.completed"]},
        {"url": "https://hooks.example.com/a", "events": ["batch.failed"]},
    ),
}


def state() -> tuple[frozenset[tuple[str, str]], int]:
    """Domain items (but request-budget buckets) and queued messages: what a replay must not change."""
    items = boto3.client("dynamodb").scan(TableName="DomainTable")["Items"]
    stored = frozenset((i["pk"]["S"], i["sk"]["S"]) for i in items if "#RATE#" not in i["pk"]["S"])
    sqs = boto3.client("sqs")
    queued = sum(
        int(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
                "ApproximateNumberOfMessages"
            ]
        )
        for url in sqs.list_queues().get("QueueUrls", [])
    )
    return stored, queued


def test_every_creating_route_honours_the_key_and_has_a_recipe() -> None:
    assert [e.path for e in CREATING if not e.idempotent] == []
    assert sorted(e.key for e in CREATING if e.key not in RECIPES) == []
    # The dry run creates nothing: it is the one POST without the key.
    assert [e.idempotent for e in route_table() if e.key in NOT_CREATING] == [False]


@pytest.mark.parametrize("header", HEADERS)
@pytest.mark.parametrize("endpoint", CREATING, ids=lambda e: f"{e.method} {e.path}")
def test_a_retry_replays_the_first_answer_and_a_new_body_is_refused(endpoint: Endpoint, header: str) -> None:
    recipe = RECIPES[endpoint.key]
    params = recipe.setup() or None
    key = {header: f"key-{endpoint.path}"}
    first = call(endpoint, recipe.body, key, params)
    assert 200 <= first[0] < 300, first
    assert "Idempotent-Replayed" not in first[1]
    before = state()
    again = call(endpoint, recipe.body, key, params)
    assert (again[0], again[2]) == (first[0], first[2])
    assert again[1]["Idempotent-Replayed"] == "true"
    assert state() == before, "a replay must not store or queue anything"
    if recipe.other_body is not None:
        status, _, answer = call(endpoint, recipe.other_body, key, params)
        assert (status, answer["code"]) == (422, "IDEMPOTENCY_KEY_REUSED"), answer
    # Another key is another request.
    fresh = call(
        endpoint, recipe.other_body if recipe.other_body is not None else recipe.body, {header: "other"}, params
    )
    assert 200 <= fresh[0] < 300, fresh
    assert json.dumps(fresh[2]) != json.dumps(first[2])
