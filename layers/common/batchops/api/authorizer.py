"""The REQUEST authorizer: `Authorization: Bearer <key>` -> an allow policy with the caller's context.

A refused key gets a Deny policy, which API Gateway answers with its ACCESS_DENIED gateway
response (401 with our error body, see template.yaml). Denying rather than raising keeps a
bad key from counting as a Lambda error, which would set off the function-errors alarm.
Both policies cover every route of the stage, because API Gateway caches the decision per
Authorization value for all routes.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchops.api.lazy import LambdaHandler, LazyHandler
from batchops.api.raw_event import header_value
from batchops.errors import UnauthorizedError
from batchops.observability import logger, tracer
from batchops.services import api_keys

ANONYMOUS = "anonymous"


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    arn = APIGatewayAuthorizerRequestEvent(event).parsed_arn
    try:
        caller = api_keys.authenticate(header_value(event, "authorization"))
    except UnauthorizedError:
        caller = None
    policy = APIGatewayAuthorizerResponse(
        principal_id=caller.workspace_id if caller else ANONYMOUS,
        region=arn.region,
        aws_account_id=arn.aws_account_id,
        api_id=arn.api_id,
        stage=arn.stage,
        context={"workspace_id": caller.workspace_id, "key_id": caller.key_id, "plan": caller.plan.value}
        if caller
        else None,
    )
    if caller:
        policy.allow_all_routes()
    else:
        policy.deny_all_routes()
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
