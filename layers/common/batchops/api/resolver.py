"""Build a Powertools REST resolver over any set of routes from the route table."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchops.api.context import require_caller
from batchops.api.errors import error_body, register_error_handlers
from batchops.api.idempotency import idempotent
from batchops.api.router import Endpoint
from batchops.settings import get_settings

SECURITY_SCHEME = "ApiKey"
CORS = CORSConfig(
    allow_origin="*",
    allow_headers=["Authorization", "Content-Type", "Content-Encoding", "Idempotency-Key"],
    expose_headers=["Idempotent-Replayed", "Retry-After"],
)


def body_size(event: Mapping[str, Any]) -> int:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return len(body) * 3 // 4
    return len(body.encode()) if isinstance(body, str) else len(body)


class BatchopsResolver(APIGatewayRestResolver):
    """Refuses oversized bodies before any parsing or validation work is spent on them."""

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        limit = get_settings().max_body_bytes
        if body_size(event) > limit:
            return {
                "statusCode": 413,
                "headers": {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"},
                "body": json.dumps(
                    error_body(f"Payload exceeds maximum allowed size ({limit} bytes).", "PAYLOAD_TOO_LARGE")
                ),
                "isBase64Encoded": False,
            }
        return super().resolve(event, context)


def powertools_rule(path: str) -> str:
    """API Gateway writes path parameters `{name}`; Powertools writes `<name>`."""
    return re.sub(r"\{(\w+)\}", r"<\1>", path)


def build_resolver(endpoints: Iterable[Endpoint]) -> BatchopsResolver:
    app = BatchopsResolver(enable_validation=True, cors=CORS)
    register_error_handlers(app)
    for endpoint in endpoints:
        middlewares: list[Any] = []
        if endpoint.auth:
            middlewares.append(require_caller)
        if endpoint.idempotent:
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
