"""The caller of the request being handled, set by the auth middleware."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from pydantic import ValidationError

from batchops.errors import UnauthorizedError
from batchops.models.common import Caller

_caller: ContextVar[Caller | None] = ContextVar("batchops_caller", default=None)


def caller_from_authorizer(context: Mapping[str, Any] | None) -> Caller:
    """The authorizer's context as a Caller; anything missing is a 401, never a 500."""
    try:
        return Caller.model_validate(dict(context or {}))
    except ValidationError:
        raise UnauthorizedError("Unauthorized") from None


def current_caller() -> Caller:
    caller = _caller.get()
    if caller is None:
        raise UnauthorizedError("Unauthorized")
    return caller


def require_caller(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    caller = caller_from_authorizer(app.current_event.request_context.authorizer.get_context())
    token = _caller.set(caller)
    try:
        return next_middleware(app)
    finally:
        _caller.reset(token)
