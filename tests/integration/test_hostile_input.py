"""Hostile request bodies are 4xx on every route, through one parsing path (issue 13).

JSON text that cannot be a valid request anywhere (a lone UTF-16 surrogate, an integer past Python's
4,300-digit limit, NaN/Infinity, a number past a double) is 400 MALFORMED_JSON before any model sees
it; numbers a model takes are ones DynamoDB can store; and a property test posts hostile values into
the bodies of every POST/PATCH/DELETE route of the route table and asserts no answer is a 5xx, and
every refusal has our error shape. Each route runs as its template function, with its IAM role.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend

from batchops.api.dispatch import InProcessTarget
from batchops.api.router import Endpoint
from batchops.api.routes import route_table
from batchops.dal import clients
from batchops.models.common import Caller, Plan
from batchops.models.operations import Operation
from batchops.settings import reset_settings
from batchops_local.aws import MOTO_CONFIG
from batchops_local.functions import install_lambda_bridge
from batchops_local.template import load_template
from tests.support import (
    ROOT,
    InProcessFunctions,
    api_event,
    create_template_resources,
    fixture_event,
    invoke,
    load_function,
    log_entry,
    operation,
    wire_environment,
)

TEMPLATE = load_template(ROOT / "template.yaml")
FUNCTION_OF_ROUTE = {(route.method, route.path): route.function_name for route in TEMPLATE.routes}
# Every route that reads a body: validated as a model, or parsed by the route itself.
BODY_ROUTES = [e for e in route_table() if e.body_model is not None or e.check_body is not None]
ARRAY_ROUTES = {("POST", "/v1/bulk-track")}
STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:TransactionStateMachine"


@pytest.fixture(scope="module")
def wired() -> Iterator[dict[str, str]]:
    """moto with the template's resources and functions (transactions run on the state machine),
    every function's queues in the environment, and a job and a batch for routes that need one.
    One for the module: every test here only adds to it."""
    original = LambdaSimpleBackend.invoke
    clients.reset_clients()
    with mock_aws(config=MOTO_CONFIG), pytest.MonkeyPatch.context() as monkeypatch:
        create_template_resources(functions=True)
        install_lambda_bridge(InProcessFunctions())
        wire_environment(monkeypatch)
        monkeypatch.setenv("BATCHOPS_TRANSACTION_STATE_MACHINE_ARN", STATE_MACHINE)
        reset_settings()
        try:
            job = post("/v1/jobs", {"name": "hostile-job", "endpoint_url": "https://hooks.example.com/run"})
            batch = post(
                "/v1/batches",
                {"name": "b", "jobs": [{"id": "j", "type": "http", "config": {"url": "https://hooks.example.com/x"}}]},
            )
            yield {"jobID": job["id"], "batch_id": batch["data"]["batch_id"]}
        finally:
            LambdaSimpleBackend.invoke = original  # type: ignore[method-assign]
    clients.reset_clients()
    reset_settings()


def _folder(endpoint: Endpoint) -> str:
    return TEMPLATE.functions[FUNCTION_OF_ROUTE[endpoint.key]].code_dir.name


def send(endpoint: Endpoint, raw: str, ids: dict[str, str], workspace: str = "ws-a") -> tuple[int, Any]:
    """POST (PATCH, DELETE) `raw` as the body, to the function template.yaml routes it to."""
    folder = _folder(endpoint)
    names = re.findall(r"\{(\w+)\}", endpoint.path)
    parameters = {n: ids.get(n, "unknown") for n in names} or None
    event = api_event(folder, raw_body=raw, path_params=parameters, workspace=workspace)
    event["resource"] = endpoint.path  # a function serving two routes has one sample
    status, _, body = invoke(load_function(folder), event)
    return status, body


def post(path: str, body: Any, workspace: str = "ws-a") -> Any:
    endpoint = next(e for e in route_table() if e.key == ("POST", path))
    status, answer = send(endpoint, json.dumps(body), {}, workspace)
    assert 200 <= status < 300, answer
    return answer


def sample(endpoint: Endpoint) -> Any:
    found = fixture_event(_folder(endpoint)).get("body")
    return json.loads(found) if found else ([] if endpoint.key in ARRAY_ROUTES else {})


def assert_error_shape(status: int, body: Any) -> None:
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str) and isinstance(body.get("code"), str), body
    assert set(body) <= {"error", "code", "details"}, body


def test_the_walk_covers_every_route_that_reads_a_body() -> None:
    keys = {e.key for e in BODY_ROUTES}
    assert {("POST", "/v1/events"), ("PATCH", "/v1/jobs/{jobID}"), ("POST", "/v1/bulk-track")} <= keys
    assert {("POST", "/v1/batches"), ("DELETE", "/v1/batches/{batch_id}"), ("POST", "/v1/webhooks")} <= keys
    assert len(BODY_ROUTES) >= 16


# ---------------------------------------------------------------- the one parsing path

# (JSON text of a value, what the refusal says)
NOT_I_JSON = [
    ("1" * 4301, "more than 4,300 digits"),
    ("-" + "9" * 5000, "more than 4,300 digits"),
    ('"\\ud800"', "lone UTF-16 surrogate"),
    ('{"\\udfff": 1}', "lone UTF-16 surrogate"),
    ('"x\\ud83d"', "lone UTF-16 surrogate"),
    ("NaN", "NaN"),
    ("-Infinity", "-Infinity"),
    ("1e400", "too large"),
]


def hostile_body(endpoint: Endpoint, value: str) -> str:
    """The route's sample body with one more field holding `value` (its raw JSON text)."""
    base = sample(endpoint)
    mark = "__HOSTILE__"
    if isinstance(base, list):
        doc: Any = [{**base[0], "extra": mark}] if base else [{"extra": mark}]
    else:
        doc = {**base, "extra": mark}
    return json.dumps(doc).replace(json.dumps(mark), value)


@pytest.mark.parametrize(("value", "says"), NOT_I_JSON, ids=[s for _, s in NOT_I_JSON])
@pytest.mark.parametrize("endpoint", BODY_ROUTES, ids=lambda e: f"{e.method} {e.path}")
def test_a_body_no_route_can_take_is_400_malformed_json(
    wired: dict[str, str], endpoint: Endpoint, value: str, says: str
) -> None:
    status, body = send(endpoint, hostile_body(endpoint, value), wired)
    assert (status, body.get("code")) == (400, "MALFORMED_JSON"), body
    assert says in body["error"]
    assert_error_shape(status, body)


# The free-form objects the issue names: a lone surrogate inside is refused with the whole request
# (the body is not I-JSON), where it was a 500 or stored where DynamoDB could not hold it.
FREE_FORM = [
    ("/v1/events", lambda: log_entry("meta", metadata={"note": "M"})),
    ("/v1/events/batch", lambda: {"events": [log_entry("ok"), log_entry("meta", identifiers={"M": 1})]}),
    (
        "/v1/jobs",
        lambda: {"name": "j-" + uuid.uuid4().hex, "endpoint_url": "https://a.example.com", "headers": {"X": "M"}},
    ),
    ("/v1/batch/async", lambda: {"operations": [operation("a", "/v1/events", log_entry("op", summary="M"))]}),
    ("/v1/batch", lambda: {"operations": [operation("a", "/v1/events", log_entry("op"), headers={"X-Note": "M"})]}),
    ("/v1/batch/transaction", lambda: {"operations": [operation("a", "/v1/events", {"M": "x"})]}),
]


@pytest.mark.parametrize(("path", "make"), FREE_FORM, ids=[p for p, _ in FREE_FORM])
def test_a_lone_surrogate_inside_a_free_form_object_refuses_the_request(wired, path, make) -> None:
    endpoint = next(e for e in route_table() if e.key == ("POST", path))
    raw = json.dumps(make()).replace('"M"', '"\\udc00"')
    assert "\\udc00" in raw
    status, body = send(endpoint, raw, wired)
    assert (status, body["code"]) == (400, "MALFORMED_JSON"), body


def test_an_operation_carrying_a_lone_surrogate_is_refused_by_the_dispatcher_too(wired) -> None:
    # Defence in depth: the outer request is refused first (above), but an operation reaching the
    # in-process dispatcher (an async job read back from DynamoDB) goes through the same path.
    caller = Caller(workspace_id="ws-a", key_id="key_test", plan=Plan.PRO)
    bad = Operation.model_construct(id="x", method="POST", path="/v1/events", body=log_entry("op", summary="a\ud800"))
    status, body = InProcessTarget().call(caller, bad)
    assert (status, body["code"]) == (400, "MALFORMED_JSON"), body


# ---------------------------------------------------------------- headers batchops must send

HEADER_CARRIERS = [
    (
        "/v1/jobs",
        lambda value: {
            "name": "j-" + uuid.uuid4().hex,
            "endpoint_url": "https://a.example.com",
            "headers": {"X-A": value},
        },
        "headers",
    ),
    (
        "/v1/batches",
        lambda value: {
            "name": "b",
            "jobs": [
                {"id": "j", "type": "http", "config": {"url": "https://a.example.com", "headers": {"X-A": value}}}
            ],
        },
        "config.headers",
    ),
    (
        "/v1/batch",
        lambda value: {"operations": [operation("a", "/v1/events", log_entry("h"), headers={"X-A": value})]},
        "operations.0.headers",
    ),
]


@pytest.mark.parametrize(("path", "make", "field"), HEADER_CARRIERS, ids=[p for p, _, _ in HEADER_CARRIERS])
@pytest.mark.parametrize("value", ["a\r\nInjected: 1", "euro \u20ac", "nul\x00"])
def test_a_header_value_http_cannot_carry_is_422_naming_the_field(wired, path, make, field, value) -> None:
    endpoint = next(e for e in route_table() if e.key == ("POST", path))
    status, body = send(endpoint, json.dumps(make(value)), wired, workspace=f"ws-{uuid.uuid4().hex[:12]}")
    assert status == 422, body
    [detail] = body["details"]
    assert field in json.dumps(detail) and "X-A" in detail["error"], detail


# ---------------------------------------------------------------- numbers DynamoDB must store


@pytest.mark.parametrize("minutes", ["1e-300", "0.0001", "1e-7", "NaN", "Infinity", "1441"])
def test_timeout_minutes_outside_what_a_batch_can_mean_is_422(wired, minutes) -> None:
    endpoint = next(e for e in route_table() if e.key == ("POST", "/v1/batches"))
    body = {"name": "b", "jobs": [{"id": "j", "type": "http", "config": {"url": "https://hooks.example.com/x"}}]}
    raw = json.dumps({**body, "options": {"timeout_minutes": "T"}}).replace('"T"', minutes)
    # a workspace of its own: a plan runs only so many batches at once
    status, answer = send(endpoint, raw, wired, workspace=f"ws-{uuid.uuid4().hex[:12]}")
    assert status in (400, 422), answer
    if minutes in ("1e-300", "0.0001", "1e-7", "1441"):
        assert (status, answer["details"][0]["field"]) == (422, "options.timeout_minutes"), answer


def test_the_shortest_timeout_is_one_second_and_is_stored(wired) -> None:
    body = {"name": "b", "jobs": [{"id": "j", "type": "http", "config": {"url": "https://hooks.example.com/x"}}]}
    created = post("/v1/batches", {**body, "options": {"timeout_minutes": 1 / 60}}, f"ws-{uuid.uuid4().hex[:12]}")
    assert created["success"] is True


@pytest.mark.parametrize(
    "field", ["max_concurrency", "rate_limit_window_secs", "batch_max_size", "debounce_window_secs"]
)
def test_stored_only_job_settings_are_bounded_to_what_strait_and_dynamodb_hold(wired, field) -> None:
    endpoint = next(e for e in route_table() if e.key == ("POST", "/v1/jobs"))
    base = {"endpoint_url": "https://hooks.example.com/run"}
    status, answer = send(endpoint, json.dumps({**base, "name": f"n-{field}", field: 10**40}), wired)
    assert (status, answer["code"]) == (422, "VALIDATION_FAILED"), answer
    # the largest Strait itself can hold (a Go int64) is taken, stored and answered back
    created = post("/v1/jobs", {**base, "name": f"max-{field}", field: 2**63 - 1})
    assert created[field] == 2**63 - 1


# ---------------------------------------------------------------- every route, hostile values

# Raw JSON text put where a client's value belongs.
_hostile_leaves = st.sampled_from(
    [
        "1" * 4301,
        "-" + "9" * 4400,
        "9" * 39,  # past DynamoDB's 38 digits
        "1e-300",
        "1e-131",
        "1e126",
        "1e400",
        "-1e400",
        "NaN",
        "Infinity",
        "-Infinity",
        "0",
        "-1",
        "0.5",
        "true",
        "null",
        '""',
        '"\\ud800"',
        '"x\\udfff"',
        '"\\ud83d\\ude00"',
        '"a\\r\\nInjected: 1"',
        '"\\u00e9\\u20ac"',
        '{"\\udbff": 1}',
        "[]",
        "{}",
        '"' + "x" * 5000 + '"',
        "[" * 3000 + "]" * 3000,
        '{"a":' * 40 + "1" + "}" * 40,
    ]
)


def _paths(value: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*here, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*here, index))


def _with(document: Any, path: tuple[Any, ...], mark: str) -> Any:
    if not path:
        return mark
    copied = json.loads(json.dumps(document))
    node = copied
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = mark
    return copied


def _places(endpoint: Endpoint) -> list[tuple[Any, ...]]:
    """Where a hostile value may go: anywhere in the route's sample body, and every top-level
    field of its model (most samples leave optional fields out)."""
    places = list(_paths(sample(endpoint)))
    if endpoint.body_model is not None:
        places += [(name,) for name in endpoint.body_model.model_fields]
    return places


@settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data())
def test_no_hostile_value_anywhere_in_any_body_is_a_server_error(wired, data) -> None:
    key = data.draw(st.sampled_from([e.key for e in BODY_ROUTES]), label="route")
    endpoint = next(e for e in BODY_ROUTES if e.key == key)
    path = data.draw(st.sampled_from(_places(endpoint)), label="where")
    leaf = data.draw(_hostile_leaves, label="value")
    base = sample(endpoint)
    if path and isinstance(base, dict) and path[0] not in base and len(path) == 1:
        base = {**base, path[0]: None}
    mark = "__HOSTILE__"
    raw = json.dumps(_with(base, path, mark)).replace(json.dumps(mark), leaf)
    status, body = send(endpoint, raw, wired)
    assert status < 500, (endpoint.key, path, leaf[:40], body)
    if status >= 400:
        assert_error_shape(status, body)
