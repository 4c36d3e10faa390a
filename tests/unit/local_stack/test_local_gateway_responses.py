"""Gateway responses: the template's entries, DEFAULT_4XX/5XX fallbacks, API Gateway's defaults."""

from __future__ import annotations

import json

from batchops_local.gateway_responses import gateway_response, render_template
from batchops_local.template import GatewayResponseSpec

UNAUTHORIZED_TEMPLATE = '{"error": $context.error.messageString, "type": "$context.error.responseType"}'
RESPONSES = {
    "UNAUTHORIZED": GatewayResponseSpec(
        401,
        {"application/json": UNAUTHORIZED_TEMPLATE},
        {"Access-Control-Allow-Origin": "*"},
    ),
    "MISSING_AUTHENTICATION_TOKEN": GatewayResponseSpec(
        404, {"application/json": '{"error": "Not found", "code": "NOT_FOUND"}'}, {}
    ),
    "DEFAULT_4XX": GatewayResponseSpec(None, {"application/json": '{"error": $context.error.messageString}'}, {}),
    "DEFAULT_5XX": GatewayResponseSpec(
        None,
        {"application/json": '{"error": $context.error.messageString, "code": "INTERNAL"}'},
        {"X-Five": "5"},
    ),
}


def test_message_string_is_a_json_string_literal() -> None:
    rendered = render_template(
        '{"m": $context.error.messageString, "t": "${context.error.responseType}"}',
        "UNAUTHORIZED",
        'say "hi"',
        "r",
    )
    assert json.loads(rendered) == {"m": 'say "hi"', "t": "UNAUTHORIZED"}
    assert render_template("[$context.error.message]", "X", "raw text", "r") == "[raw text]"
    assert render_template("$context.error.messageString", "X", None, "r") == "null"
    assert render_template("$context.requestId", "X", None, "req-9") == "req-9"


def test_a_customised_type() -> None:
    reply = gateway_response(RESPONSES, "UNAUTHORIZED", "Unauthorized", "req-1")
    assert reply.status == 401
    assert json.loads(reply.body) == {"error": "Unauthorized", "type": "UNAUTHORIZED"}
    headers = dict(reply.headers)
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Content-Type"] == "application/json"
    assert headers["x-amzn-ErrorType"] == "UnauthorizedException"
    assert headers["x-amzn-RequestId"] == "req-1"


def test_status_code_override_and_static_body() -> None:
    reply = gateway_response(RESPONSES, "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", "r")
    assert reply.status == 404
    assert json.loads(reply.body) == {"error": "Not found", "code": "NOT_FOUND"}


def test_fallback_to_default_4xx_keeps_the_types_status() -> None:
    reply = gateway_response(RESPONSES, "ACCESS_DENIED", "User is not authorized to access this resource", "r")
    assert reply.status == 403
    assert json.loads(reply.body) == {"error": "User is not authorized to access this resource"}
    reply = gateway_response(RESPONSES, "REQUEST_TOO_LARGE", "Request Too Long", "r")
    assert reply.status == 413


def test_fallback_to_default_5xx_with_its_headers() -> None:
    reply = gateway_response(RESPONSES, "INTEGRATION_TIMEOUT", "Endpoint request timed out", "r")
    assert reply.status == 504
    assert json.loads(reply.body) == {"error": "Endpoint request timed out", "code": "INTERNAL"}
    assert dict(reply.headers)["X-Five"] == "5"
    bad_gateway = gateway_response(RESPONSES, "DEFAULT_5XX", "Internal server error", "r", status=502)
    assert bad_gateway.status == 502


def test_api_gateway_defaults_without_any_template_entry() -> None:
    reply = gateway_response({}, "THROTTLED", "Too Many Requests", "r")
    assert reply.status == 429
    assert json.loads(reply.body) == {"message": "Too Many Requests"}
    reply = gateway_response({}, "AUTHORIZER_CONFIGURATION_ERROR", None, "r")
    assert reply.status == 500
    assert json.loads(reply.body) == {"message": None}
