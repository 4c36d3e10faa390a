"""The gateway's request flow without sockets: route, authorizer, proxy event, gateway responses."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from batchops_local.functions import FunctionRegistry
from batchops_local.gateway import GatewayApp
from batchops_local.proxy import IncomingRequest
from batchops_local.template import Function, Route, load_template

FIXTURE = Path(__file__).parent / "fixtures" / "template.yaml"


class CountingRegistry(FunctionRegistry):
    """Counts invocations per function (the handlers run in sandbox processes of their own)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: Counter[str] = Counter()

    def invoke(self, name_or_arn: str, event: Any, **kwargs: Any) -> Any:
        self.calls[self.get(name_or_arn).name] += 1
        return super().invoke(name_or_arn, event, **kwargs)


@pytest.fixture()
def registry() -> Iterator[CountingRegistry]:
    registry = CountingRegistry(load_template(FIXTURE).functions.values(), log=lambda line: None)
    yield registry
    registry.close()


@pytest.fixture()
def app(registry: CountingRegistry) -> GatewayApp:
    return GatewayApp(load_template(FIXTURE), registry, log=lambda _: None)


def get(app: GatewayApp, target: str, headers: list[tuple[str, str]] | None = None, method: str = "GET"):
    return app.handle(IncomingRequest(method, target, headers or [], b""))


def test_allowed_request_reaches_the_function_with_authorizer_context(app: GatewayApp) -> None:
    reply = get(app, "/items/5?x=1", [("X-Token", "tok-allow")])
    assert reply.status == 200
    body = json.loads(reply.body)
    assert body["function"] == "ApiFunction"
    event = body["event"]
    assert event["pathParameters"] == {"id": "5"}
    authorizer = event["requestContext"]["authorizer"]
    assert (authorizer["workspace_id"], authorizer["n"], authorizer["ok"], authorizer["principalId"]) == (
        "ws-9",
        "3",
        "true",
        "p-1",
    )


def test_unauthorized_paths(app: GatewayApp) -> None:
    for headers in ([], [("X-Token", "nope")], [("X-Token", "tok-bad")]):
        reply = get(app, "/items/5", headers)
        assert reply.status == 401
        assert json.loads(reply.body) == {"error": "Unauthorized", "type": "UNAUTHORIZED"}
        assert dict(reply.headers)["WWW-Authenticate"] == "Bearer"


def test_denied_and_failing_authorizers(app: GatewayApp) -> None:
    denied = get(app, "/items/5", [("X-Token", "tok-deny")])
    assert denied.status == 403
    assert json.loads(denied.body) == {
        "error": "User is not authorized to access this resource with an explicit deny",
        "code": "CLIENT",
    }
    for token in ("tok-crash", "tok-malformed"):
        reply = get(app, "/items/5", [("X-Token", token)])
        assert reply.status == 500
        assert json.loads(reply.body) == {"error": None, "code": "SERVER"}
        assert dict(reply.headers)["x-amzn-ErrorType"] == "AuthorizerConfigurationException"


def test_cached_method_scoped_policy_denies_the_next_route(app: GatewayApp, registry: CountingRegistry) -> None:
    assert get(app, "/items/1", [("X-Token", "tok-allow")]).status == 200
    calls = registry.calls["AuthFunction"]
    # Cached for 60 s: the next path reuses the policy, which only allowed GET /items/1.
    assert get(app, "/items/1", [("X-Token", "tok-allow")]).status == 200
    assert get(app, "/items/2", [("X-Token", "tok-allow")]).status == 403
    assert registry.calls["AuthFunction"] == calls == 1


def test_request_authorizer_needs_all_identity_sources(app: GatewayApp) -> None:
    headers = [("Authorization", "Bearer ok")]
    assert get(app, "/req", headers, method="POST").status == 401  # no ?tenant=
    assert get(app, "/req?tenant=t1", headers, method="POST").status == 200


def test_route_without_authorizer(app: GatewayApp) -> None:
    reply = get(app, "/proxy/a/b", method="PATCH")
    assert reply.status == 200
    assert json.loads(reply.body)["event"]["pathParameters"] == {"proxy": "a/b"}


def test_unknown_route_is_missing_authentication_token(app: GatewayApp) -> None:
    for method, target in (("GET", "/nowhere"), ("DELETE", "/items/1"), ("GET", "/")):
        reply = get(app, target, [("X-Token", "tok-allow")], method=method)
        assert reply.status == 403
        assert json.loads(reply.body) == {"error": "Missing Authentication Token", "code": "CLIENT"}


def test_stage_prefix_is_accepted(app: GatewayApp) -> None:
    reply = get(app, "/v9/proxy/x")
    assert reply.status == 200
    assert json.loads(reply.body)["event"]["path"] == "/proxy/x"


def test_cors_preflight_uses_the_api_settings(app: GatewayApp) -> None:
    reply = get(app, "/items/1", method="OPTIONS")
    assert reply.status == 204
    headers = dict(reply.headers)
    assert headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert headers["Access-Control-Allow-Methods"] == "GET,POST"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert get(app, "/nowhere", method="OPTIONS").status == 403


def test_too_large_reply(app: GatewayApp) -> None:
    reply = app.too_large()
    assert reply.status == 413
    assert json.loads(reply.body) == {"error": "Request Too Long", "code": "CLIENT"}


def test_integration_timeout_is_504_and_a_function_timeout_is_502(request: pytest.FixtureRequest) -> None:
    base = load_template(FIXTURE)
    slow = base.functions["ApiFunction"]
    handlers = slow.code_dir
    patient = Function("Patient", handlers, "app.slow", 5.0, 128, {}, ())
    impatient = Function("Impatient", handlers, "app.slow", 0.1, 128, {}, ())
    routes = (
        Route("/patient", "GET", "Patient", None),
        Route("/impatient", "GET", "Impatient", None),
    )
    template = replace(base, functions={"Patient": patient, "Impatient": impatient}, routes=routes)
    registry = FunctionRegistry(template.functions.values(), log=lambda line: None)
    request.addfinalizer(registry.close)
    app = GatewayApp(template, registry, log=lambda line: None, integration_timeout=0.2)
    # Over the (shortened) integration timeout while the function still runs: 504.
    timed_out = app.handle(IncomingRequest("GET", "/patient", [], b""))
    assert timed_out.status == 504
    assert json.loads(timed_out.body) == {"error": "Endpoint request timed out", "code": "SERVER"}
    # The function's own Timeout comes first: a Lambda error, 502.
    failed = app.handle(IncomingRequest("GET", "/impatient", [], b""))
    assert failed.status == 502
    assert json.loads(failed.body) == {"error": "Internal server error", "code": "SERVER"}
