"""Threat-model checks that no other suite makes as a whole (docs/threat-model.md).

API1 (BOLA): one workspace's ids, sent by another workspace to every route of the route table
that takes an id in its path, are 404 and change nothing; the walk is over the route table, so a
new id route cannot be left out. Each route runs as its template function, with its IAM role.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from batchops.api.router import Endpoint
from batchops.api.routes import route_table
from tests.integration.test_hostile_input import _folder, sample
from tests.integration.test_hostile_input import wired as _wired_stack
from tests.support import api_event, invoke, load_function, log_entry

ID_ROUTES = [e for e in route_table() if "{" in e.path]
OWNER, INTRUDER = "ws-a", "ws-b"
EVENT_BATCH = "tm-bola-batch"
MESSAGE_ID = "tm-bola-message"

wired = _wired_stack  # the hostile-input suite's moto stack: template resources, functions, queues


def _endpoint(method: str, path: str) -> Endpoint:
    return next(e for e in route_table() if e.key == (method, path))


def _call(endpoint: Endpoint, ids: dict[str, str], workspace: str, body: Any = None) -> tuple[int, Any]:
    """The route as `workspace`, its path ids from `ids`, its body `body` or the route's sample, and
    no query: a sample's query (a project_id) would make a refusal that has nothing to do with the id."""
    folder = _folder(endpoint)
    names = re.findall(r"\{(\w+)\}", endpoint.path)
    chosen = sample(endpoint) if body is None else body
    event = api_event(
        folder,
        raw_body=json.dumps(chosen) if endpoint.method != "GET" else "",
        query={},
        path_params={n: ids[n] for n in names} or None,
        workspace=workspace,
    )
    event["resource"] = endpoint.path  # a function serving two routes has one sample
    event["httpMethod"] = endpoint.method
    status, _, answer = invoke(load_function(folder), event)
    return status, answer


def _created(method: str, path: str, body: Any, ids: dict[str, str] | None = None) -> Any:
    status, answer = _call(_endpoint(method, path), ids or {}, OWNER, body)
    assert 200 <= status < 300, answer
    return answer


def _get(path: str, ids: dict[str, str], workspace: str) -> tuple[int, Any]:
    return _call(_endpoint("GET", path), ids, workspace)


@pytest.fixture(scope="module")
def owned(wired: dict[str, str]) -> Iterator[dict[str, str]]:
    """One resource of every kind an id route names, all in OWNER's workspace: path parameter -> id."""
    job = _created("POST", "/v1/jobs", {"name": "tm-bola-job", "endpoint_url": "https://hooks.example.com/run"})
    run = _created("POST", "/v1/jobs/{jobID}/trigger", {"payload": {"n": 1}}, {"jobID": job["id"]})
    bulk = _created("POST", "/v1/jobs/{jobID}/trigger-bulk", {"items": [{"payload": {}}]}, {"jobID": job["id"]})
    _created("POST", "/v1/events/batch", {"batchId": EVENT_BATCH, "events": [log_entry()]})
    submitted = _created("POST", "/v1/batch/async", sample(_endpoint("POST", "/v1/batch/async")))
    _created("POST", "/v1/track", {**sample(_endpoint("POST", "/v1/track")), "messageId": MESSAGE_ID})
    upload = _created("POST", "/v1/bulk-track/uploads", {})
    webhook = _created("POST", "/v1/webhooks", {"url": "https://hooks.example.com/tm", "events": ["batch.completed"]})
    yield {
        "jobID": job["id"],
        "runID": run["id"],
        "batchID": bulk["batch_id"],
        "batchId": EVENT_BATCH,
        "jobId": submitted["data"]["jobId"],
        "messageId": MESSAGE_ID,
        "uploadId": upload["uploadId"],
        "batch_id": wired["batch_id"],
        "webhook_id": webhook["data"]["id"],
    }


def _owner_view(ids: dict[str, str]) -> dict[str, Any]:
    """What OWNER reads of its resources: every GET id route, plus the lists a write would change."""
    view: dict[str, Any] = {}
    for endpoint in ID_ROUTES:
        if endpoint.method == "GET":
            status, body = _get(endpoint.path, ids, OWNER)
            assert status == 200, (endpoint.path, body)
            view[endpoint.path] = body
    for path in ("/v1/runs", "/v1/batch-operations", "/v1/webhooks"):
        status, body = _call(_endpoint("GET", path), {}, OWNER)
        assert status == 200, body
        view[path] = body
    return view


def test_the_walk_covers_every_route_with_an_id_in_its_path(owned: dict[str, str]) -> None:
    names = {n for e in ID_ROUTES for n in re.findall(r"\{(\w+)\}", e.path)}
    assert names == set(owned), "a new id route needs a resource of its kind in `owned`"
    assert len(ID_ROUTES) >= 19


def _unknown(ids: dict[str, str]) -> dict[str, str]:
    """Ids of the same shape that name nothing: the last character changed."""
    return {name: value[:-1] + ("1" if value[-1] != "1" else "2") for name, value in ids.items()}


def test_another_workspaces_ids_are_404_on_every_id_route_and_change_nothing(owned: dict[str, str]) -> None:
    before = _owner_view(owned)
    unknown = _unknown(owned)
    # Mutating routes last, so a change made by one of them cannot hide behind a read that ran after it.
    for endpoint in sorted(ID_ROUTES, key=lambda e: e.method != "GET"):
        status, body = _call(endpoint, owned, INTRUDER)
        assert status == 404, (endpoint.method, endpoint.path, status, body)
        # Someone else's id must look exactly like an id nobody has, or the answer tells which ids exist.
        _, never = _call(endpoint, unknown, INTRUDER)
        for name in owned:
            never = json.loads(json.dumps(never).replace(unknown[name], owned[name]))
        assert body == never, (endpoint.method, endpoint.path)
        assert "tm-bola-job" not in json.dumps(body) and "hooks.example.com" not in json.dumps(body), body
    after = _owner_view(owned)
    # Reads may refresh time-dependent fields (estimated completion); the resources themselves must not move.
    assert after.keys() == before.keys()
    for path in ("/v1/jobs/{jobID}", "/v1/runs/{runID}", "/v1/webhooks", "/v1/track/events/{messageId}"):
        assert after[path] == before[path], path
    assert after["/v1/runs"]["data"] == before["/v1/runs"]["data"]
    assert after["/v1/batch-operations"]["data"] == before["/v1/batch-operations"]["data"]
    assert after["/v1/batches/{batch_id}"]["data"]["status"] == before["/v1/batches/{batch_id}"]["data"]["status"]


def test_a_missing_caller_is_401_on_every_authenticated_route(wired: dict[str, str]) -> None:
    """API2 behind the gateway: a function reached without the authorizer's context (a route wired
    without the authorizer, a test event) answers 401 before it reads anything."""
    checked = 0
    for endpoint in route_table():
        if not endpoint.auth:
            continue
        folder = _folder(endpoint)
        names = re.findall(r"\{(\w+)\}", endpoint.path)
        event = api_event(folder, path_params={n: "x" for n in names} or None, workspace=None)
        event["resource"] = endpoint.path
        event["httpMethod"] = endpoint.method
        status, _, body = invoke(load_function(folder), event)
        assert (status, body["code"]) == (401, "UNAUTHORIZED"), (endpoint.method, endpoint.path, body)
        checked += 1
    assert checked == len([e for e in route_table() if e.auth]) >= 35


def test_an_unexpected_exception_is_a_500_that_tells_the_client_nothing(
    owned: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """API8: a bug's text (an ARN, a path, a stack) goes to the log, never to the client."""
    from batchops.services import jobs

    leak = "arn:aws:dynamodb:us-east-1:123456789012:table/Secret-DomainTable at /opt/python/batchops"

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(leak)

    monkeypatch.setattr(jobs, "get_job", broken)
    status, body = _get("/v1/jobs/{jobID}", owned, OWNER)
    assert (status, body) == (500, {"error": "Internal server error", "code": "INTERNAL_ERROR"})


def test_a_workspace_has_at_most_20_webhook_subscriptions(wired: dict[str, str]) -> None:
    """API4/API6: each subscription multiplies every batch event into one more delivery."""
    create = _endpoint("POST", "/v1/webhooks")
    for n in range(20):
        body = {"url": f"https://hooks.example.com/limit/{n}", "events": ["batch.completed"]}
        status, answer = _call(create, {}, "ws-limit", body)
        assert status == 201, answer
    status, answer = _call(create, {}, "ws-limit", {"url": "https://hooks.example.com/21", "events": ["batch.failed"]})
    assert (status, answer["code"]) == (409, "WEBHOOK_LIMIT_REACHED"), answer
    listed = _call(_endpoint("GET", "/v1/webhooks"), {}, "ws-limit")[1]
    assert len(listed["data"]) == 20
