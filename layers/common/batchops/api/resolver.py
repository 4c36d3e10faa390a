"""Build a Powertools REST resolver over any set of routes from the route table."""

from __future__ import annotations

import base64
import functools
import inspect
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchops.api.context import IDEMPOTENCY_HEADERS, caller_from_event, current_body, handling
from batchops.api.errors import JSON_ONLY, as_proxy_result, register_error_handlers
from batchops.api.idempotency import idempotent
from batchops.api.openapi import AUTHENTICATED_ERRORS
from batchops.api.openapi import errors as openapi_errors
from batchops.api.raw_event import body_size, header_value
from batchops.api.router import Endpoint
from batchops.encoding import decoded_body, parse_json, refuse_lone_surrogates, too_large
from batchops.errors import (
    BadRequestError,
    BatchopsError,
    StorageError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from batchops.models.common import Caller
from batchops.observability import logger, metrics
from batchops.settings import get_settings

SECURITY_SCHEME = "ApiKey"
JSON_CONTENT_TYPE = re.compile(r"^application/json$")
RATE_LIMIT_HEADERS = ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]
CORS = CORSConfig(
    allow_origin="*",
    allow_headers=["Authorization", "Content-Type", "Content-Encoding", *IDEMPOTENCY_HEADERS],
    expose_headers=["Idempotent-Replayed", "Retry-After", *RATE_LIMIT_HEADERS],
)


def check_body(event: Mapping[str, Any], limit: int | None = None, *, object_body: bool = False) -> Mapping[str, Any]:
    """Refuse what the route cannot take before any parsing or validation work is spent on it, and
    hand it on as plain JSON text: a compressed body inflated (bounded by `limit`, uncompressed),
    a base64 one decoded, the media type in lower case (media types are case-insensitive,
    Powertools compares them as written). `object_body`: the route's body is a JSON object.
    A body no route could take as JSON text (a lone UTF-16 surrogate) is 400 MALFORMED_JSON here,
    for every route; what only parsing finds is refused where the body is parsed (`parse_json`)."""
    checked = _decoded(event, limit)
    body = checked.get("body")
    if isinstance(body, str):
        refuse_lone_surrogates(body)
    if object_body and _is_array(checked.get("body")):
        # Powertools' validation would take a non-empty array as its first element (it unwraps
        # lists meant for multi-value query parameters): [A, B] would store A and drop B.
        raise ValidationFailedError(
            "The request body must be a JSON object, not an array",
            details=[{"field": "body", "error": "must be a JSON object, not an array"}],
        )
    return checked


def _is_array(body: Any) -> bool:
    return isinstance(body, str) and body.lstrip(" \t\r\n").startswith("[")


def _decoded(event: Mapping[str, Any], limit: int | None) -> Mapping[str, Any]:
    limit = limit or get_settings().max_body_bytes
    if body_size(event) > limit:
        raise too_large(limit)
    content_type = (header_value(event, "content-type") or "").split(";")[0].strip().lower()
    # Every body batchops takes is JSON; a form or binary body is a client mistake (curl -d
    # without -H) that would otherwise surface as a puzzling "field is required".
    if event.get("body") and content_type and not JSON_CONTENT_TYPE.match(content_type):
        raise UnsupportedMediaTypeError(JSON_ONLY)
    headers = dict(event.get("headers") or {})
    encoding = header_value(event, "content-encoding")
    if not event.get("body"):
        return event
    if not event.get("isBase64Encoded") and not encoding:
        if any(k.lower() == "content-type" and v != v.lower() for k, v in headers.items()):
            return {**event, "headers": _lowered_content_type(headers)}
        return event
    raw = base64.b64decode(event["body"]) if event.get("isBase64Encoded") else str(event["body"]).encode()
    try:
        # JSON must be UTF-8 (RFC 8259); a body that is not reaches us base64-encoded.
        text = decoded_body(raw, encoding, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("Malformed JSON body: not UTF-8 text", code="MALFORMED_JSON") from None
    # Downstream (validation, idempotency, handlers) sees the JSON as if it had been sent plain.
    plain = {k: v for k, v in _lowered_content_type(headers).items() if k.lower() != "content-encoding"}
    multi = {k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-encoding"}
    return {**event, "body": text, "isBase64Encoded": False, "headers": plain, "multiValueHeaders": multi}


def _lowered_content_type(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: (v.lower() if k.lower() == "content-type" else v) for k, v in headers.items()}


def _with_headers(result: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
    """Add headers a response does not already carry (a 429 keeps the budget that refused it)."""
    if not headers:
        return result
    if "multiValueHeaders" in result:
        multi = result["multiValueHeaders"] = dict(result["multiValueHeaders"] or {})
        present = {k.lower() for k in multi} | {k.lower() for k in result.get("headers") or {}}
        multi.update({k: [v] for k, v in headers.items() if k.lower() not in present})
    else:
        plain = result["headers"] = dict(result.get("headers") or {})
        present = {k.lower() for k in plain}
        plain.update({k: v for k, v in headers.items() if k.lower() not in present})
    return result


class _PerThread:
    """An attribute each thread of each resolver holds on its own (in the resolver's `_request`);
    with a `default` factory, a thread that has not set it yet starts from a new default."""

    def __init__(self, default: Callable[[], Any] | None = None) -> None:
        self.default = default

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, resolver: Any, owner: type | None = None) -> Any:
        if resolver is None:
            return self
        if self.default is not None and not hasattr(resolver._request, self.name):
            setattr(resolver._request, self.name, self.default())
        return getattr(resolver._request, self.name)

    def __set__(self, resolver: Any, value: Any) -> None:
        setattr(resolver._request, self.name, value)


class BatchopsResolver(APIGatewayRestResolver):
    """A REST resolver that, before any route code runs, authenticates the caller (401 before the
    body is read), spends the workspace's request budget (429) and checks the body (413, 415,
    400), then adds the RateLimit-* headers to every authenticated response.

    Powertools keeps the request being handled on the BaseRouter class, shared by every resolver
    in the process; a parallel batch resolves operations on several threads at once (and a
    sequential one inside the batch request), so each resolver keeps its own, per thread: the
    event, the Lambda context and the routing context."""

    current_event: APIGatewayProxyEvent = _PerThread()  # type: ignore[assignment]
    lambda_context: LambdaContext = _PerThread()  # type: ignore[assignment]
    # The routing context holds the matched route, whose status code a plain answer takes: shared,
    # one thread's clear_context() made another's 201 a 200 (4 racing creates, 1 in 12 runs).
    context: dict[str, Any] = _PerThread(default=dict)  # type: ignore[assignment]

    def __init__(self, endpoints: Iterable[Endpoint], *, limit_requests: bool = True, **kwargs: Any):
        self._request = threading.local()
        super().__init__(**kwargs)
        self._endpoints = {endpoint.key: endpoint for endpoint in endpoints}
        self._limit_requests = limit_requests

    def _to_proxy_event(self, event: dict[str, Any]) -> BaseProxyEvent:
        # resolve() assigns the result to the shared class attribute; this is where it is made.
        proxy = super()._to_proxy_event(event)
        self.current_event = proxy  # type: ignore[assignment]
        return proxy

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        endpoint = self._endpoints.get((str(event.get("httpMethod") or "").upper(), str(event.get("resource") or "")))
        caller: Caller | None = None
        budget: dict[str, str] = {}
        cors = CORS.to_dict(header_value(event, "origin") or "*")
        try:
            if endpoint is not None and endpoint.auth:
                caller = caller_from_event(event)
                if self._limit_requests:
                    budget = _spend_request(caller)
            checked = check_body(
                event,
                endpoint.max_body_bytes if endpoint else None,
                object_body=endpoint is not None and endpoint.body_model is not None,
            )
        except BatchopsError as error:
            return _with_headers(as_proxy_result(error, cors), budget)
        self.lambda_context = context
        with handling(checked, context, caller):
            return _with_headers(super().resolve(checked, context), budget)


def _spend_request(caller: Caller) -> dict[str, str]:
    """The caller's request budget after this request, as RateLimit-* headers; raises
    RateLimitedError (429) when it is spent. A budget store that fails lets the request through:
    the stage throttle still guards the API, and an outage of the limiter must not become one of
    the API."""
    # Imported here: routes without auth (health, the OpenAPI document) never load boto3.
    from batchops.services import rate_limits

    try:
        return rate_limits.spend_request(caller.workspace_id, caller.plan).headers()
    except StorageError:
        logger().warning("Rate limit not checked: the budget store failed", extra={"workspace": caller.workspace_id})
        metrics().add_metric(name="RateLimitUnchecked", unit=MetricUnit.Count, value=1)
        return {}


def _documented_responses(endpoint: Endpoint) -> dict[int, Any]:
    """Every status the route can answer, whether or not its declaration names it: what the
    resolver itself answers before the handler runs is the same for every route, so it is
    documented here, once. Errors are our one shape (`ErrorResponse`), 422 included: Powertools
    would otherwise document its own `{"detail": [...]}`, which batchops never sends."""
    declared = dict(endpoint.responses or {})
    if endpoint.status_code not in declared:
        # Declaring any response replaces Powertools' default success entry: keep one.
        declared[endpoint.status_code] = {"description": "Success"}
    if 204 in declared:
        # No Content has no body, so no media type; Powertools would give it the handler's.
        declared[204] = {"description": declared[204].get("description", "No Content"), "content": {}}
    implied = [422]  # every route validates its parameters
    if endpoint.auth:
        implied += [*AUTHENTICATED_ERRORS, 503]  # the key is read and the budget spent in DynamoDB
    if "{" in endpoint.path:
        implied.append(404)  # an id that is not there (or another workspace's)
    if endpoint.body_model is not None or endpoint.request_body is not None:
        implied += [400, 413, 415]  # check_body: malformed JSON, too large, not JSON
    return {**openapi_errors(*implied), **declared}


def powertools_rule(path: str) -> str:
    """API Gateway writes path parameters `{name}`; Powertools writes `<name>`."""
    return re.sub(r"\{(\w+)\}", r"<\1>", path)


def validated_only(endpoint: Endpoint) -> Callable[[APIGatewayRestResolver, NextMiddleware], Response[Any]]:
    """Stands in for the handler in dry runs: reached only when validation and auth passed. A
    route that parses its own body checks it here too, so a dry run refuses what the run would."""

    def answer(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
        if endpoint.check_body is not None:
            endpoint.check_body(current_body())
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=json.dumps({"valid": True}))

    return answer


def _answering_files(handler: Callable[..., Any]) -> Callable[..., Any]:
    """The handler without its return annotation. With one, Powertools' validation serializes
    every body through pydantic's JSON mode, which decodes bytes as UTF-8: an XLSX or PDF answer
    would fail. Without one, a non-JSON response passes untouched and a JSON one is encoded.
    Annotations are resolved here, in the handler's module, for Powertools reads them from the
    callable it is given."""

    @functools.wraps(handler)
    def route(*args: Any, **kwargs: Any) -> Any:
        return handler(*args, **kwargs)

    signature = inspect.signature(handler, eval_str=True)
    route.__signature__ = signature.replace(return_annotation=inspect.Signature.empty)  # type: ignore[attr-defined]
    return route


def build_resolver(
    endpoints: Iterable[Endpoint], *, validate_only: bool = False, limit_requests: bool = True
) -> BatchopsResolver:
    """A resolver over `endpoints`; `validate_only` answers 200 once a request has passed
    validation and auth, without running the handler (dry runs); `limit_requests=False` spends
    no request budget (operations run inside a batch request, which has paid for itself)."""
    endpoints = list(endpoints)
    app = BatchopsResolver(
        endpoints,
        limit_requests=limit_requests,
        enable_validation=True,
        cors=CORS,
        # The one parser of request bodies: what Python's parser takes but no route can (an
        # integer past 4,300 digits was a plain ValueError, a 500) is 400 MALFORMED_JSON.
        json_body_deserializer=parse_json,
    )
    register_error_handlers(app)
    for endpoint in endpoints:
        middlewares: list[Any] = []
        if validate_only:
            middlewares.append(validated_only(endpoint))
        elif endpoint.idempotent:
            middlewares.append(idempotent)
        app.route(
            powertools_rule(endpoint.path),
            endpoint.method,
            status_code=endpoint.status_code,
            summary=endpoint.summary or None,
            description=endpoint.description or None,
            responses=_documented_responses(endpoint),
            tags=[endpoint.surface],
            include_in_schema=endpoint.include_in_schema,
            security=[{SECURITY_SCHEME: []}] if endpoint.auth else None,
            middlewares=middlewares,
            openapi_extensions={"requestBody": endpoint.request_body} if endpoint.request_body else None,
        )(_answering_files(endpoint.handler) if endpoint.returns_files else endpoint.handler)
    return app
