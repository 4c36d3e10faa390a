"""Authorizer decisions, policy evaluation and the result cache."""

from __future__ import annotations

from typing import Any

import pytest

from batchops_local.authorizer import (
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    AuthorizerCache,
    arn_matches,
    authorize,
    evaluate_policy,
    identity_values,
)
from batchops_local.functions import HandlerError, InvocationTimeout
from batchops_local.template import Authorizer

API = "arn:aws:execute-api:us-east-1:123456789012:local"
GET_JOBS = f"{API}/v1/GET/jobs"
POST_JOBS = f"{API}/v1/POST/jobs"


def policy(effect: str, resource: Any, action: Any = "execute-api:Invoke") -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Action": action, "Effect": effect, "Resource": resource}],
    }


def test_arn_wildcards() -> None:
    assert arn_matches(f"{API}/*", GET_JOBS)
    assert arn_matches(f"{API}/v1/*/jobs", POST_JOBS)
    assert arn_matches(f"{API}/v1/GET/*", f"{API}/v1/GET/jobs/1/runs")  # * crosses "/"
    assert arn_matches(f"{API}/v?/GET/jobs", GET_JOBS)
    assert not arn_matches(f"{API}/v1/GET/jobs", POST_JOBS)
    assert not arn_matches(f"{API}/v1/GET/job", GET_JOBS)  # whole-string match
    assert arn_matches("*", GET_JOBS)


def test_policy_evaluation() -> None:
    assert evaluate_policy(policy("Allow", GET_JOBS), GET_JOBS) == "allow"
    assert evaluate_policy(policy("Allow", GET_JOBS), POST_JOBS) == "implicit_deny"
    assert evaluate_policy(policy("Allow", [POST_JOBS, f"{API}/*/GET/*"]), GET_JOBS) == "allow"
    assert evaluate_policy(policy("Allow", GET_JOBS, action="s3:GetObject"), GET_JOBS) == "implicit_deny"
    assert evaluate_policy(policy("Allow", GET_JOBS, action="execute-api:*"), GET_JOBS) == "allow"
    both = {"Statement": [*policy("Allow", f"{API}/*")["Statement"], *policy("Deny", GET_JOBS)["Statement"]]}
    assert evaluate_policy(both, GET_JOBS) == "explicit_deny"  # an explicit Deny always wins
    assert evaluate_policy(both, POST_JOBS) == "allow"
    single = {"Statement": {"Action": "*", "Effect": "Allow", "Resource": "*"}}  # one statement, not a list
    assert evaluate_policy(single, GET_JOBS) == "allow"


REQUEST_AUTH = Authorizer("Req", "Auth", "REQUEST", ("Authorization",), ("tenant",), 300)
TOKEN_AUTH = Authorizer("Tok", "Auth", "TOKEN", ("Authorization",), (), 0, r"Bearer [a-z]+")


def test_identity_values() -> None:
    assert identity_values(REQUEST_AUTH, {"authorization": "Bearer x"}, {"tenant": "t1"}) == (
        "Bearer x",
        "t1",
    )
    assert identity_values(REQUEST_AUTH, {"Authorization": "Bearer x"}, {}) is None
    assert identity_values(REQUEST_AUTH, {"Authorization": "  "}, {"tenant": "t1"}) is None
    assert identity_values(REQUEST_AUTH, {}, {"tenant": "t1"}) is None


def test_cache_expires_after_its_ttl() -> None:
    now = [100.0]
    cache = AuthorizerCache(clock=lambda: now[0])
    cache.put("A", ("k",), 10, {"p": 1}, {"c": 1})
    assert cache.get("A", ("k",)) == ({"p": 1}, {"c": 1})
    assert cache.get("B", ("k",)) is None
    now[0] = 109.9
    assert cache.get("A", ("k",)) is not None
    now[0] = 110.0
    assert cache.get("A", ("k",)) is None
    cache.put("A", ("k",), 0, {"p": 1}, {})  # ReauthorizeEvery 0: never cached
    assert cache.get("A", ("k",)) is None


class FakeAuthorizer:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome
        self.events: list[dict[str, Any]] = []

    def __call__(self, name: str, event: Any, timeout: float) -> Any:
        self.events.append(event)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def request_event(method_arn: str) -> dict[str, Any]:
    return {"type": "REQUEST", "methodArn": method_arn, "headers": {"Authorization": "Bearer x"}}


def run(auth: Authorizer, invoke: FakeAuthorizer, cache: AuthorizerCache, method_arn: str = GET_JOBS, **kw: Any):
    headers = kw.get("headers", {"Authorization": "Bearer x"})
    query = kw.get("query", {"tenant": "t1"})
    return authorize(auth, request_event(method_arn), headers, query, invoke, cache, lambda line: None)


def allow(resource: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"principalId": "user-1", "policyDocument": policy("Allow", resource), "context": context or {}}


def test_missing_identity_is_401_without_invoking() -> None:
    invoke = FakeAuthorizer(allow(GET_JOBS))
    result = run(REQUEST_AUTH, invoke, AuthorizerCache(), headers={})
    assert (result.outcome, result.response_type, result.message) == (
        "unauthorized",
        "UNAUTHORIZED",
        "Unauthorized",
    )
    assert invoke.events == []


def test_allow_passes_context_as_strings_with_principal() -> None:
    invoke = FakeAuthorizer(allow(GET_JOBS, {"workspace_id": "ws1", "n": 3, "admin": True}))
    result = run(REQUEST_AUTH, invoke, AuthorizerCache())
    assert result.outcome == "allow"
    assert result.context["workspace_id"] == "ws1"
    assert result.context["n"] == "3"
    assert result.context["admin"] == "true"
    assert result.context["principalId"] == "user-1"
    assert invoke.events[0]["type"] == "REQUEST"


@pytest.mark.parametrize(
    ("outcome", "expected", "response_type"),
    [
        (HandlerError("Auth", "Exception", "Unauthorized"), "unauthorized", "UNAUTHORIZED"),
        (HandlerError("Auth", "RuntimeError", "database down"), "error", "AUTHORIZER_CONFIGURATION_ERROR"),
        (InvocationTimeout("Auth", "Sandbox.Timedout", "late"), "error", "AUTHORIZER_CONFIGURATION_ERROR"),
        ("not a policy", "error", "AUTHORIZER_CONFIGURATION_ERROR"),
        ({"principalId": "p"}, "error", "AUTHORIZER_CONFIGURATION_ERROR"),
        ({**allow(GET_JOBS), "context": {"nested": {"a": 1}}}, "error", "AUTHORIZER_CONFIGURATION_ERROR"),
        ({"principalId": "p", "policyDocument": policy("Deny", GET_JOBS)}, "denied", "ACCESS_DENIED"),
        (allow(POST_JOBS), "denied", "ACCESS_DENIED"),
    ],
)
def test_authorizer_outcomes(outcome: Any, expected: str, response_type: str) -> None:
    result = run(REQUEST_AUTH, FakeAuthorizer(outcome), AuthorizerCache())
    assert (result.outcome, result.response_type) == (expected, response_type)


def test_deny_messages() -> None:
    explicit = run(REQUEST_AUTH, FakeAuthorizer({"policyDocument": policy("Deny", "*")}), AuthorizerCache())
    implicit = run(REQUEST_AUTH, FakeAuthorizer(allow(POST_JOBS)), AuthorizerCache())
    assert (explicit.message, implicit.message) == (EXPLICIT_DENY, IMPLICIT_DENY)


def test_cached_policy_is_evaluated_against_each_new_method_arn() -> None:
    cache = AuthorizerCache()
    invoke = FakeAuthorizer(allow(GET_JOBS))  # scoped to GET /jobs only
    assert run(REQUEST_AUTH, invoke, cache, GET_JOBS).outcome == "allow"
    # Same identity, another method: API Gateway reuses the cached policy, which denies it.
    assert run(REQUEST_AUTH, invoke, cache, POST_JOBS).outcome == "denied"
    assert len(invoke.events) == 1
    # A different identity value is a different cache entry.
    run(REQUEST_AUTH, invoke, cache, GET_JOBS, headers={"Authorization": "Bearer y"})
    assert len(invoke.events) == 2


def test_wildcard_policy_from_cache_allows_other_methods() -> None:
    cache = AuthorizerCache()
    invoke = FakeAuthorizer(allow(f"{API}/v1/*"))
    assert run(REQUEST_AUTH, invoke, cache, GET_JOBS).outcome == "allow"
    assert run(REQUEST_AUTH, invoke, cache, POST_JOBS).outcome == "allow"
    assert len(invoke.events) == 1


def test_cache_ttl_zero_invokes_every_time() -> None:
    no_cache = Authorizer("Req0", "Auth", "REQUEST", ("Authorization",), (), 0)
    invoke = FakeAuthorizer(allow(GET_JOBS))
    cache = AuthorizerCache()
    for _ in range(3):
        assert run(no_cache, invoke, cache).outcome == "allow"
    assert len(invoke.events) == 3


def test_cache_expiry_reinvokes() -> None:
    now = [0.0]
    cache = AuthorizerCache(clock=lambda: now[0])
    invoke = FakeAuthorizer(allow(GET_JOBS))
    run(REQUEST_AUTH, invoke, cache)
    now[0] = 299.0
    run(REQUEST_AUTH, invoke, cache)
    assert len(invoke.events) == 1
    now[0] = 300.0
    run(REQUEST_AUTH, invoke, cache)
    assert len(invoke.events) == 2


def test_token_authorizer_event_and_validation_expression() -> None:
    invoke = FakeAuthorizer(allow(GET_JOBS))
    result = run(TOKEN_AUTH, invoke, AuthorizerCache(), headers={"Authorization": "Bearer abc"})
    assert result.outcome == "allow"
    assert invoke.events == [{"type": "TOKEN", "methodArn": GET_JOBS, "authorizationToken": "Bearer abc"}]
    # A token that fails ValidationExpression never reaches the function.
    result = run(TOKEN_AUTH, invoke, AuthorizerCache(), headers={"Authorization": "Basic 123"})
    assert result.outcome == "unauthorized"
    assert len(invoke.events) == 1
