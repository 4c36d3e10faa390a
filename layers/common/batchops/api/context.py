"""The request being handled and its caller, set by the resolver around each request."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from batchops.api.raw_event import body_size, header_value
from batchops.errors import UnauthorizedError
from batchops.models.common import Caller

_caller: ContextVar[Caller | None] = ContextVar("batchops_caller", default=None)
_event: ContextVar[Mapping[str, Any] | None] = ContextVar("batchops_event", default=None)
_lambda_context: ContextVar[LambdaContext | None] = ContextVar("batchops_lambda_context", default=None)


@contextmanager
def handling(event: Mapping[str, Any], context: LambdaContext | None, caller: Caller | None = None) -> Iterator[None]:
    """Marks the request being handled and its caller (set by the resolver around each request)."""
    event_token = _event.set(event)
    context_token = _lambda_context.set(context)
    caller_token = _caller.set(caller)
    try:
        yield
    finally:
        _event.reset(event_token)
        _lambda_context.reset(context_token)
        _caller.reset(caller_token)


def current_lambda_context() -> LambdaContext | None:
    return _lambda_context.get()


def current_body_size() -> int:
    """Bytes of the request body being handled (decoded when it came base64-encoded)."""
    return body_size(_event.get() or {})


# Both names are in use: Stripe-style clients send Idempotency-Key, Strait's documentation shows
# X-Idempotency-Key (its server reads either, preferring Idempotency-Key).
IDEMPOTENCY_HEADERS = ("Idempotency-Key", "X-Idempotency-Key")


def idempotency_key_of(event: Mapping[str, Any]) -> str | None:
    """The request's idempotency key, from either header name (Idempotency-Key first)."""
    for name in IDEMPOTENCY_HEADERS:
        value = header_value(event, name)
        if value is not None:
            return value
    return None


def current_idempotency_key() -> str | None:
    """The idempotency key of the request being handled, if it sent one."""
    return idempotency_key_of(_event.get() or {})


def current_body() -> str:
    """The request body being handled as text: the resolver has already inflated a compressed
    body and checked that it is UTF-8. Routes that parse their own body (for speed) read it here."""
    event = _event.get() or {}
    body = event.get("body") or ""
    return base64.b64decode(body).decode("utf-8") if event.get("isBase64Encoded") else str(body)


def base_path() -> str:
    """The URL prefix the client used in front of our routes: `/prod` on the execute-api
    endpoint, `` on a custom domain mapped at the root or in the local stack."""
    event = _event.get() or {}
    sent = str((event.get("requestContext") or {}).get("path") or "")
    route = str(event.get("path") or "")
    return sent[: len(sent) - len(route)] if route and sent.endswith(route) else ""


def caller_from_event(event: Mapping[str, Any]) -> Caller:
    """The authorizer's context of a proxy event as a Caller; anything missing is a 401, never a 500."""
    context = (event.get("requestContext") or {}).get("authorizer")
    try:
        return Caller.model_validate(dict(context or {}))
    except (ValidationError, TypeError, ValueError):
        raise UnauthorizedError("Unauthorized") from None


def current_caller() -> Caller:
    caller = _caller.get()
    if caller is None:
        raise UnauthorizedError("Unauthorized")
    return caller
