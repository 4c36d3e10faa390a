"""Build a Powertools REST resolver over any set of routes from the route table."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchops.api.context import handling, require_caller
from batchops.api.errors import JSON_ONLY, as_proxy_result, register_error_handlers
from batchops.api.idempotency import idempotent
from batchops.api.raw_event import body_size, header_value
from batchops.api.router import Endpoint
from batchops.errors import BadRequestError, BatchopsError, PayloadTooLargeError, UnsupportedMediaTypeError
from batchops.settings import get_settings

SECURITY_SCHEME = "ApiKey"
JSON_CONTENT_TYPE = re.compile(r"^application/json$")
CORS = CORSConfig(
    allow_origin="*",
    allow_headers=["Authorization", "Content-Type", "Content-Encoding", "Idempotency-Key"],
    expose_headers=["Idempotent-Replayed", "Retry-After"],
)


def check_body(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """Refuse what no route can take before any parsing or validation work is spent on it;
    return the event with its media type in lower case (media types are case-insensitive,
    Powertools compares them as written)."""
    limit = get_settings().max_body_bytes
    if body_size(event) > limit:
        raise PayloadTooLargeError(f"Payload exceeds maximum allowed size ({limit} bytes).")
    content_type = (header_value(event, "content-type") or "").split(";")[0].strip().lower()
    # Every body batchops takes is JSON; a form or binary body is a client mistake (curl -d
    # without -H) that would otherwise surface as a puzzling "field is required".
    if event.get("body") and content_type and not JSON_CONTENT_TYPE.match(content_type):
        raise UnsupportedMediaTypeError(JSON_ONLY)
    if event.get("body") and event.get("isBase64Encoded"):
        # A body that is not UTF-8 reaches us base64-encoded; JSON must be UTF-8 (RFC 8259).
        try:
            base64.b64decode(event["body"]).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise BadRequestError("Malformed JSON body: not UTF-8 text", code="MALFORMED_JSON") from None
    headers = event.get("headers") or {}
    if any(k.lower() == "content-type" and v != v.lower() for k, v in headers.items()):
        lowered = {k: (v.lower() if k.lower() == "content-type" else v) for k, v in headers.items()}
        return {**event, "headers": lowered}
    return event


class BatchopsResolver(APIGatewayRestResolver):
    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        try:
            checked = check_body(event)
        except BatchopsError as error:
            return as_proxy_result(error)
        with handling(checked, context):
            return super().resolve(checked, context)


def powertools_rule(path: str) -> str:
    """API Gateway writes path parameters `{name}`; Powertools writes `<name>`."""
    return re.sub(r"\{(\w+)\}", r"<\1>", path)


def validated_only(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Stands in for the handler in dry runs: reached only when validation and auth passed."""
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=json.dumps({"valid": True}))


def build_resolver(endpoints: Iterable[Endpoint], *, validate_only: bool = False) -> BatchopsResolver:
    """A resolver over `endpoints`; `validate_only` answers 200 once a request has passed
    validation and auth, without running the handler (dry runs)."""
    app = BatchopsResolver(enable_validation=True, cors=CORS)
    register_error_handlers(app)
    for endpoint in endpoints:
        middlewares: list[Any] = []
        if endpoint.auth:
            middlewares.append(require_caller)
        if validate_only:
            middlewares.append(validated_only)
        elif endpoint.idempotent:
            middlewares.append(idempotent)
        app.route(
            powertools_rule(endpoint.path),
            endpoint.method,
            status_code=endpoint.status_code,
            summary=endpoint.summary or None,
            description=endpoint.description or None,
            responses=endpoint.responses,
            tags=[endpoint.surface],
            include_in_schema=endpoint.include_in_schema,
            security=[{SECURITY_SCHEME: []}] if endpoint.auth else None,
            middlewares=middlewares,
        )(endpoint.handler)
    return app
