"""Every route whose body is a JSON object refuses a JSON array, and stores nothing.

Powertools' request validation takes a non-empty list as its first element (it unwraps lists meant
for multi-value query parameters), so `[A, B]` was validated and handled as `A`, and `B` was lost.
The test walks the whole route table: a route added later is covered without a change here.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from batchops.api.router import Endpoint
from batchops.api.routes import route_table
from batchops_local.template import load_template
from tests.support import ROOT, api_event, fixture_event, invoke, load_function

pytestmark = pytest.mark.usefixtures("aws")

TEMPLATE = load_template(ROOT / "template.yaml")
FUNCTION_OF_ROUTE = {(route.method, route.path): route.function_name for route in TEMPLATE.routes}
OBJECT_ROUTES = [e for e in route_table() if e.body_model is not None]


def _serving(endpoint: Endpoint) -> str:
    """The folder of the function template.yaml routes this endpoint to (its events/ sample too)."""
    return TEMPLATE.functions[FUNCTION_OF_ROUTE[endpoint.key]].code_dir.name


def _stored() -> set[tuple[str, str]]:
    """Every item of the domain table but the request-budget buckets (spent before the body is read)."""
    table = boto3.client("dynamodb")
    items = table.scan(TableName="DomainTable")["Items"]
    return {(i["pk"]["S"], i["sk"]["S"]) for i in items if "#RATE#" not in i["pk"]["S"]}


def _queued() -> int:
    sqs = boto3.client("sqs")
    total = 0
    for url in sqs.list_queues().get("QueueUrls", []):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        total += int(attributes["Attributes"]["ApproximateNumberOfMessages"])
    return total


def test_the_walk_covers_every_object_route() -> None:
    # The routes whose bodies Powertools validates as a model; if this list shrinks to nothing,
    # the walk below would prove nothing.
    paths = {e.path for e in OBJECT_ROUTES}
    assert {"/v1/events", "/v1/events/batch", "/v1/jobs/{jobID}", "/v1/batches", "/v1/webhooks"} <= paths
    assert all(e.key in FUNCTION_OF_ROUTE for e in OBJECT_ROUTES)


@pytest.mark.parametrize("endpoint", OBJECT_ROUTES, ids=lambda e: f"{e.method} {e.path}")
def test_a_top_level_array_is_422_and_nothing_is_stored(endpoint: Endpoint) -> None:
    folder = _serving(endpoint)
    sample = fixture_event(folder)
    body: Any = json.loads(sample["body"]) if sample.get("body") else {}
    event = api_event(folder, body=[body, body], path_params=sample.get("pathParameters") or None)
    # A function serving two routes has one sample: point it at this route.
    event["resource"] = endpoint.path
    before, queued = _stored(), _queued()
    status, _, answer = invoke(load_function(folder), event)
    assert status == 422, answer
    assert answer["code"] == "VALIDATION_FAILED"
    assert answer["details"] == [{"field": "body", "error": "must be a JSON object, not an array"}]
    assert _stored() == before
    assert _queued() == queued


@pytest.mark.parametrize("body", ["[]", " \n[{}]", "[1, 2]"])
def test_any_array_even_empty_or_padded(body: str) -> None:
    status, _, answer = invoke(load_function("create_event"), api_event("create_event", raw_body=body))
    assert (status, answer["code"]) == (422, "VALIDATION_FAILED")
