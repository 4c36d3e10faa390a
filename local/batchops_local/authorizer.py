"""Lambda authorizers as API Gateway REST runs them: identity check, invoke, policy, cache.

- A missing or empty identity source answers 401 without invoking the authorizer.
- `raise Exception("Unauthorized")` in the authorizer is a 401; any other error, a timeout or a
  malformed result is a 500 AuthorizerConfigurationException with a null message.
- The returned policy is evaluated against the request's methodArn: an explicit Deny wins, then
  an Allow, otherwise an implicit deny (both 403).
- Results are cached per identity-source value for ReauthorizeEvery seconds and the *cached*
  policy is re-evaluated against each new methodArn. That is the classic production surprise of a
  policy scoped to one method, and reproducing it locally is the point.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from batchops_local.functions import HandlerError, InvocationError
from batchops_local.template import Authorizer

Outcome = Literal["allow", "unauthorized", "denied", "error"]

EXPLICIT_DENY = "User is not authorized to access this resource with an explicit deny"
IMPLICIT_DENY = "User is not authorized to access this resource"


@dataclass(frozen=True)
class AuthResult:
    outcome: Outcome
    message: str | None = None
    # requestContext.authorizer for an allowed request: the context plus principalId.
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def response_type(self) -> str:
        return {
            "unauthorized": "UNAUTHORIZED",
            "denied": "ACCESS_DENIED",
            "error": "AUTHORIZER_CONFIGURATION_ERROR",
        }.get(self.outcome, "")


def identity_values(
    authorizer: Authorizer, headers: Mapping[str, str], query: Mapping[str, str]
) -> tuple[str, ...] | None:
    """The identity-source values in order, or None when one is missing or empty."""
    lowered = {k.lower(): v for k, v in headers.items()}
    values: list[str] = []
    for name in authorizer.identity_headers:
        value = lowered.get(name.lower(), "")
        if not value.strip():
            return None
        values.append(value)
    for name in authorizer.identity_query_strings:
        value = query.get(name, "")
        if not value:
            return None
        values.append(value)
    return tuple(values)


def arn_matches(pattern: str, arn: str) -> bool:
    """IAM-style resource match: `*` is any run of characters (also across `/`), `?` one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, arn) is not None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _action_matches(action: Any) -> bool:
    return any(arn_matches(str(a).lower(), "execute-api:invoke") for a in _as_list(action))


def evaluate_policy(document: Mapping[str, Any], method_arn: str) -> Literal["allow", "explicit_deny", "implicit_deny"]:
    allowed = False
    for statement in _as_list(document.get("Statement") or []):
        if not isinstance(statement, Mapping) or not _action_matches(statement.get("Action", "")):
            continue
        if not any(arn_matches(str(r), method_arn) for r in _as_list(statement.get("Resource", []))):
            continue
        effect = str(statement.get("Effect", ""))
        if effect == "Deny":
            return "explicit_deny"
        if effect == "Allow":
            allowed = True
    return "allow" if allowed else "implicit_deny"


def _check_output(output: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(policyDocument, requestContext.authorizer) or ValueError for what API Gateway rejects."""
    if not isinstance(output, dict):
        raise ValueError("authorizer result is not an object")
    policy = output.get("policyDocument")
    if not isinstance(policy, dict) or "Statement" not in policy:
        raise ValueError("authorizer result has no policyDocument.Statement")
    context = output.get("context") or {}
    if not isinstance(context, dict):
        raise ValueError("authorizer context is not an object")
    exposed: dict[str, Any] = {}
    for key, value in context.items():
        # API Gateway accepts only primitive context values and hands them on as strings.
        if isinstance(value, bool):
            exposed[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            exposed[key] = str(value)
        elif value is not None:
            raise ValueError(f"authorizer context value {key!r} is not a string, number or boolean")
    principal = output.get("principalId")
    exposed["principalId"] = None if principal is None else str(principal)
    return policy, exposed


class AuthorizerCache:
    """Authorizer results by (authorizer, identity values) for ReauthorizeEvery seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[tuple[str, tuple[str, ...]], tuple[float, dict[str, Any], dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, key: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]] | None:
        with self._lock:
            entry = self._entries.get((name, key))
            if entry is None:
                return None
            expires, policy, context = entry
            if self._clock() >= expires:
                del self._entries[(name, key)]
                return None
            return policy, context

    def put(self, name: str, key: tuple[str, ...], ttl: float, policy: dict[str, Any], context: dict[str, Any]) -> None:
        if ttl <= 0:
            return
        with self._lock:
            self._entries[(name, key)] = (self._clock() + ttl, policy, context)


# API Gateway stops waiting for an authorizer after 29 seconds, like for any integration.
AUTHORIZER_TIMEOUT_SECONDS = 29.0


def authorize(
    authorizer: Authorizer,
    event: dict[str, Any],
    headers: Mapping[str, str],
    query: Mapping[str, str],
    invoke: Callable[[str, Any, float], Any],
    cache: AuthorizerCache,
    log: Callable[[str], None],
) -> AuthResult:
    """Decide one request. `event` is the REQUEST authorizer event (a TOKEN event is derived)."""
    key = identity_values(authorizer, headers, query)
    # A TOKEN authorizer's ValidationExpression is checked by API Gateway before any invoke.
    if key is None or (
        authorizer.payload_type == "TOKEN"
        and authorizer.validation_expression
        and re.fullmatch(authorizer.validation_expression, key[0]) is None
    ):
        return AuthResult("unauthorized", "Unauthorized")
    method_arn = str(event["methodArn"])
    cacheable = bool(key) and authorizer.reauthorize_every > 0
    cached = cache.get(authorizer.name, key) if cacheable else None
    if cached is None:
        if authorizer.payload_type == "TOKEN":
            event = {"type": "TOKEN", "methodArn": method_arn, "authorizationToken": key[0]}
        started = time.monotonic()
        try:
            output = invoke(authorizer.function_name, event, AUTHORIZER_TIMEOUT_SECONDS)
        except HandlerError as exc:
            if exc.message == "Unauthorized":
                return AuthResult("unauthorized", "Unauthorized")
            return AuthResult("error", None)
        except InvocationError:
            return AuthResult("error", None)
        try:
            policy, context = _check_output(output)
        except ValueError as exc:
            log(f"[{authorizer.function_name}] AuthorizerConfigurationException: {exc}")
            return AuthResult("error", None)
        context["integrationLatency"] = int((time.monotonic() - started) * 1000)
        if cacheable:
            cache.put(authorizer.name, key, authorizer.reauthorize_every, policy, context)
    else:
        policy, context = cached
        context = {**context, "integrationLatency": 0}
    decision = evaluate_policy(policy, method_arn)
    if decision == "explicit_deny":
        return AuthResult("denied", EXPLICIT_DENY)
    if decision == "implicit_deny":
        return AuthResult("denied", IMPLICIT_DENY)
    return AuthResult("allow", None, dict(context))
