"""Operations run in-process through the route table, as synthetic API Gateway proxy events.

An operation therefore behaves exactly like the direct call: the same validation, auth
context, idempotency and error mapping. Batch routes themselves are not reachable (no batch
inside a batch).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, cast
from urllib.parse import parse_qsl

from aws_lambda_powertools.utilities.typing import LambdaContext

from batchops.api.context import current_lambda_context
from batchops.api.resolver import BatchopsResolver, build_resolver
from batchops.api.router import Endpoint
from batchops.api.routes import route_table, surface_endpoints, surface_of
from batchops.executors.operations import forwarded_headers
from batchops.models.common import Caller, error_body
from batchops.models.operations import ALLOWED_METHODS, Operation
from batchops.observability import tracer

_PARAMETER = re.compile(r"\{(\w+)\}")


def is_batch_route(path: str) -> bool:
    return path == "/v1/batch" or path.startswith(("/v1/batch/", "/v1/batches"))


def is_operation_route(endpoint: Endpoint) -> bool:
    return endpoint.method in ALLOWED_METHODS and not is_batch_route(endpoint.path)


def operation_endpoints() -> list[Endpoint]:
    """Every route an operation may call: the table's POST/PATCH/DELETE routes, minus batch routes."""
    return [e for e in route_table() if is_operation_route(e)]


@dataclass(frozen=True)
class _Pattern:
    template: str
    regex: re.Pattern[str]

    @classmethod
    def of(cls, template: str) -> _Pattern:
        regex = "^" + _PARAMETER.sub(r"(?P<\1>[^/]+)", re.escape(template).replace(r"\{", "{").replace(r"\}", "}"))
        return cls(template, re.compile(regex + "$"))


def _error(status: int, message: str, code: str) -> tuple[int, Any]:
    return status, error_body(message, code)


class _Routes:
    """A set of operation routes: their path patterns, and a resolver per thread and mode (a
    Powertools resolver keeps the request it handles on itself; parallel batches dispatch from a
    pool)."""

    def __init__(self, endpoints: Sequence[Endpoint]):
        self.endpoints = list(endpoints)
        self.patterns = [_Pattern.of(path) for path in dict.fromkeys(e.path for e in self.endpoints)]
        self.methods = {(e.path, e.method) for e in self.endpoints}
        self._local = threading.local()

    def match(self, method: str, path: str) -> tuple[str, dict[str, str]] | tuple[int, Any]:
        for pattern in self.patterns:
            found = pattern.regex.match(path)
            if found:
                if (pattern.template, method) not in self.methods:
                    return _error(405, f"{method} is not allowed on {path}", "METHOD_NOT_ALLOWED")
                return pattern.template, found.groupdict()
        return _error(404, f"No operation route matches {path}", "NOT_FOUND")

    def resolver(self, validate_only: bool) -> BatchopsResolver:
        name = "checker" if validate_only else "runner"
        resolver: BatchopsResolver | None = getattr(self._local, name, None)
        if resolver is None:
            resolver = build_resolver(self.endpoints, validate_only=validate_only, limit_requests=False)
            setattr(self._local, name, resolver)
        return resolver


@cache
def _surface_routes(surface: str) -> _Routes:
    """One surface's operation routes, built on its first operation and kept for the process:
    a dispatcher imports only the surfaces its operations call (all six cost ~0.8 s of CPU on a
    cold start), and a worker's many InProcessTargets share patterns and resolvers."""
    return _Routes([e for e in surface_endpoints(surface) if is_operation_route(e)])


class InProcessTarget:
    """Runs operations through a resolver over the operation routes (`operation_endpoints()`),
    built per surface as operations need them, or over the `endpoints` given."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint] | None = None,
        request_id: str | None = None,
        context: LambdaContext | None = None,
    ):
        self._routes = _Routes(endpoints) if endpoints is not None else None
        self._request_id = request_id or str(uuid.uuid4())
        self._context = context

    def allowed_paths(self) -> list[str]:
        routes = self._routes or _Routes(operation_endpoints())
        return [p.template for p in routes.patterns]

    def _routes_for(self, path: str) -> _Routes | None:
        if self._routes is not None:
            return self._routes
        try:
            return _surface_routes(surface_of(path))
        except LookupError:
            return None

    def call(self, caller: Caller, operation: Operation) -> tuple[int, Any]:
        return self._dispatch(caller, operation, validate_only=False)

    def check(self, caller: Caller, operation: Operation) -> tuple[int, Any]:
        return self._dispatch(caller, operation, validate_only=True)

    def _dispatch(self, caller: Caller, operation: Operation, *, validate_only: bool) -> tuple[int, Any]:
        # Split by hand: urlsplit would read "//host/x" as a host and choke on "//[".
        path, _, query = operation.path.partition("?")
        if not path.startswith("/") or path.startswith("//"):
            return _error(404, f"No operation route matches {operation.path}", "NOT_FOUND")
        routes = self._routes_for(path)
        if routes is None:
            return _error(404, f"No operation route matches {operation.path}", "NOT_FOUND")
        matched = routes.match(operation.method, path)
        if isinstance(matched[0], int):
            return matched
        template, parameters = matched
        event = self._event(caller, operation, template, path, parameters, query)
        context = self._context or current_lambda_context() or cast(LambdaContext, _SyntheticContext())
        with tracer().provider.in_subsegment(f"## operation {operation.method} {template}") as subsegment:
            subsegment.put_annotation(key="operation_id", value=operation.id)
            return _parse(routes.resolver(validate_only).resolve(event, context))

    def _event(
        self,
        caller: Caller,
        operation: Operation,
        template: str,
        path: str,
        parameters: dict[str, str],
        query: str,
    ) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", **forwarded_headers(operation.headers)}
        pairs = parse_qsl(query, keep_blank_values=True)
        return {
            "resource": template,
            "path": path,
            "httpMethod": operation.method,
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": dict(pairs) or None,
            "multiValueQueryStringParameters": {k: [v for kk, v in pairs if kk == k] for k, _ in pairs} or None,
            "pathParameters": parameters or None,
            "stageVariables": None,
            "body": None if operation.body is None else json.dumps(operation.body),
            "isBase64Encoded": False,
            "requestContext": {
                "resourcePath": template,
                "httpMethod": operation.method,
                "path": path,
                "requestId": f"{self._request_id}:{operation.id}",
                "authorizer": {
                    "workspace_id": caller.workspace_id,
                    "key_id": caller.key_id,
                    "plan": caller.plan.value,
                    "principalId": caller.workspace_id,
                },
            },
        }


def _parse(result: dict[str, Any]) -> tuple[int, Any]:
    body = result.get("body")
    if result.get("isBase64Encoded") and body:
        body = base64.b64decode(body).decode("utf-8", errors="replace")
    if not body:
        return int(result["statusCode"]), None
    try:
        return int(result["statusCode"]), json.loads(body)
    except ValueError:
        return int(result["statusCode"]), body


class _SyntheticContext:
    """Context for operations dispatched outside a Lambda invocation (tests, scripts)."""

    function_name = "batchops-operations"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:batchops-operations"
    memory_limit_in_mb = 512
    aws_request_id = "synthetic"
    log_group_name = ""
    log_stream_name = ""

    def get_remaining_time_in_millis(self) -> int:
        return 60_000
