"""API Gateway gateway responses: the answers API Gateway itself gives (auth, routing, limits, 5XX).

A type the template does not customise falls back to DEFAULT_4XX or DEFAULT_5XX (by its default
status), and then to API Gateway's built-in `{"message": $context.error.messageString}`. The status
is the type's own StatusCode, else the type's default status (a DEFAULT_4XX body does not change
a 401 into a 400).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from batchops_local.template import GatewayResponseSpec

DEFAULT_STATUS: dict[str, int] = {
    "ACCESS_DENIED": 403,
    "API_CONFIGURATION_ERROR": 500,
    "AUTHORIZER_CONFIGURATION_ERROR": 500,
    "AUTHORIZER_FAILURE": 500,
    "BAD_REQUEST_PARAMETERS": 400,
    "BAD_REQUEST_BODY": 400,
    "DEFAULT_4XX": 400,
    "DEFAULT_5XX": 500,
    "EXPIRED_TOKEN": 403,
    "INTEGRATION_FAILURE": 504,
    "INTEGRATION_TIMEOUT": 504,
    "INVALID_API_KEY": 403,
    "INVALID_SIGNATURE": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "QUOTA_EXCEEDED": 429,
    "REQUEST_TOO_LARGE": 413,
    "RESOURCE_NOT_FOUND": 404,
    "THROTTLED": 429,
    "UNAUTHORIZED": 401,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "WAF_FILTERED": 403,
}

# The x-amzn-ErrorType header API Gateway sends with each type.
ERROR_TYPE_HEADER: dict[str, str] = {
    "ACCESS_DENIED": "AccessDeniedException",
    "AUTHORIZER_CONFIGURATION_ERROR": "AuthorizerConfigurationException",
    "AUTHORIZER_FAILURE": "AuthorizerFailureException",
    "MISSING_AUTHENTICATION_TOKEN": "MissingAuthenticationTokenException",
    "REQUEST_TOO_LARGE": "BadRequestException",
    "THROTTLED": "ThrottledException",
    "UNAUTHORIZED": "UnauthorizedException",
    "INTEGRATION_TIMEOUT": "InternalServerErrorException",
    "DEFAULT_5XX": "InternalServerErrorException",
}

BUILTIN_TEMPLATE = '{"message":$context.error.messageString}'


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def render_template(template: str, response_type: str, message: str | None, request_id: str) -> str:
    """Substitute the $context variables API Gateway offers in gateway response templates.
    messageString is the message as a JSON string literal (quotes included); message is raw."""
    replacements = {
        "$context.error.messageString": json.dumps(message),
        "$context.error.message": "" if message is None else message,
        "$context.error.responseType": response_type,
        "$context.requestId": request_id,
        "$context.extendedRequestId": request_id,
    }
    out = template
    # Longest names first, so $context.error.message does not eat the start of messageString.
    for name in sorted(replacements, key=len, reverse=True):
        value = replacements[name]
        out = out.replace("${" + name[1:] + "}", value).replace(name, value)
    return out


def gateway_response(
    responses: Mapping[str, GatewayResponseSpec],
    response_type: str,
    message: str | None,
    request_id: str,
    *,
    status: int | None = None,
) -> HttpReply:
    """Render `response_type` from the template's GatewayResponses (with API Gateway's fallbacks)."""
    default_status = status or DEFAULT_STATUS.get(response_type, 500)
    spec = responses.get(response_type)
    if spec is None:
        spec = responses.get("DEFAULT_4XX" if default_status < 500 else "DEFAULT_5XX")
        chosen_status = default_status
    else:
        chosen_status = spec.status_code or default_status
    template = BUILTIN_TEMPLATE
    headers: dict[str, str] = {}
    if spec is not None:
        template = spec.templates.get("application/json", BUILTIN_TEMPLATE)
        headers = dict(spec.headers)
    body = render_template(template, response_type, message, request_id).encode()
    out = list(headers.items())
    if not any(k.lower() == "content-type" for k in headers):
        out.insert(0, ("Content-Type", "application/json"))
    out.append(("x-amzn-RequestId", request_id))
    if response_type in ERROR_TYPE_HEADER:
        out.append(("x-amzn-ErrorType", ERROR_TYPE_HEADER[response_type]))
    return HttpReply(chosen_status, out, body)
