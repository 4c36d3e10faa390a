"""The REQUEST authorizer: `Authorization: Bearer <key>` -> an allow policy with the caller's context.

A refusal raises `Exception("Unauthorized")`: API Gateway turns exactly that into its
UNAUTHORIZED gateway response (401 with our error body). The policy allows every
route of the stage, because API Gateway caches it per key for all routes.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchops.api.handler import LambdaHandler, LazyHandler
from batchops.errors import UnauthorizedError
from batchops.observability import logger, tracer
from batchops.services import api_keys


class Unauthorized(Exception):
    def __init__(self) -> None:
        super().__init__("Unauthorized")


def _header(event: dict[str, Any], name: str) -> str | None:
    # Header names arrive in the client's case; a REQUEST event may carry no headers at all.
    return next((v for k, v in (event.get("headers") or {}).items() if k.lower() == name), None)


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    request = APIGatewayAuthorizerRequestEvent(event)
    try:
        caller = api_keys.authenticate(_header(event, "authorization"))
    except UnauthorizedError:
        raise Unauthorized() from None
    arn = request.parsed_arn
    policy = APIGatewayAuthorizerResponse(
        principal_id=caller.workspace_id,
        region=arn.region,
        aws_account_id=arn.aws_account_id,
        api_id=arn.api_id,
        stage=arn.stage,
        context={"workspace_id": caller.workspace_id, "key_id": caller.key_id, "plan": caller.plan.value},
    )
    policy.allow_all_routes()
    return policy.asdict()


def authorizer_handler() -> LazyHandler:
    def build() -> LambdaHandler:
        @logger().inject_lambda_context
        @tracer().capture_lambda_handler(capture_response=False)
        def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
            return authorize(event)

        handler: LambdaHandler = handle
        return handler

    return LazyHandler(build)
