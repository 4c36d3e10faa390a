"""API Gateway REST (v1) Lambda proxy: request -> event, and the function's result -> HTTP reply.

The event mirrors what API Gateway sends: headers in the case the client used, the last value in
`headers` and all values in `multiValueHeaders`, null (not {}) for absent query and path
parameters, a null body for an empty one, and base64 with isBase64Encoded for a binary body.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from batchops_local.gateway_responses import HttpReply
from batchops_local.routing import RouteMatch
from batchops_local.template import ACCOUNT_ID, API_ID, REGION

# Headers the gateway computes itself; a function's value for them would corrupt the framing.
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}


@dataclass(frozen=True)
class IncomingRequest:
    method: str
    target: str  # the request target as sent: path plus optional ?query
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"

    @property
    def path(self) -> str:
        return urlsplit(self.target).path or "/"

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    def header(self, name: str) -> str | None:
        found = None
        for key, value in self.headers:
            if key.lower() == name.lower():
                found = value
        return found


def header_maps(headers: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in headers:
        single[key] = value  # API Gateway keeps the last value of a repeated header
        multi.setdefault(key, []).append(value)
    return single, multi


def query_maps(query: str) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single[key] = value
        multi.setdefault(key, []).append(value)
    return single, multi


def is_binary(request: IncomingRequest, binary_media_types: Iterable[str]) -> bool:
    """Whether API Gateway would hand the body to Lambda base64-encoded.

    A Content-Type listed in BinaryMediaTypes is binary in API Gateway. Locally a compressed body
    (any Content-Encoding but identity, e.g. gzip), or bytes that are not UTF-8, are treated as
    binary too, since they could not be passed as text anyway; in AWS the same request needs its
    Content-Type in BinaryMediaTypes."""
    if not request.body:
        return False
    encoding = (request.header("Content-Encoding") or "").strip().lower()
    if encoding and encoding != "identity":
        return True
    # Without a Content-Type API Gateway assumes application/json.
    content_type = (request.header("Content-Type") or "application/json").split(";")[0].strip().lower()
    if any(fnmatch.fnmatchcase(content_type, t.lower()) for t in binary_media_types):
        return True
    try:
        request.body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def method_arn(stage: str, method: str, path: str) -> str:
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{API_ID}/{stage}/{method.upper()}{path}"


def request_context(
    request: IncomingRequest, match: RouteMatch, path: str, stage: str, request_id: str, now: datetime
) -> dict[str, Any]:
    return {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "resourceId": "local",
        "resourcePath": match.route.path,
        "stage": stage,
        "requestId": request_id,
        "extendedRequestId": request_id,
        "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "requestTimeEpoch": int(now.timestamp() * 1000),
        "httpMethod": request.method.upper(),
        # The path as the client sent it, as API Gateway gives it: with the stage when the URL
        # carried one (/prod/v1/...), without it otherwise. Links built from it (the OpenAPI
        # document's server URL) then point where the client came from.
        "path": request.path,
        "protocol": request.protocol,
        "domainName": request.header("Host") or "127.0.0.1",
        "domainPrefix": (request.header("Host") or "127").split(".")[0],
        "identity": {
            "sourceIp": request.source_ip,
            "userAgent": request.header("User-Agent"),
            "accessKey": None,
            "accountId": None,
            "apiKey": None,
            "apiKeyId": None,
            "caller": None,
            "cognitoAuthenticationProvider": None,
            "cognitoAuthenticationType": None,
            "cognitoIdentityId": None,
            "cognitoIdentityPoolId": None,
            "principalOrgId": None,
            "user": None,
            "userArn": None,
        },
    }


def build_authorizer_event(
    request: IncomingRequest, match: RouteMatch, path: str, stage: str, request_id: str, now: datetime
) -> dict[str, Any]:
    """The REQUEST authorizer event API Gateway sends (a TOKEN one is derived from it)."""
    headers, multi_headers = header_maps(request.headers)
    query, multi_query = query_maps(request.query)
    return {
        "type": "REQUEST",
        "methodArn": method_arn(stage, request.method, path),
        "resource": match.route.path,
        "path": path,
        "httpMethod": request.method.upper(),
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query or {},
        "multiValueQueryStringParameters": multi_query or {},
        "pathParameters": match.path_parameters,
        "stageVariables": {},
        "requestContext": request_context(request, match, path, stage, request_id, now),
    }


def build_proxy_event(
    request: IncomingRequest,
    match: RouteMatch,
    *,
    path: str,
    stage: str,
    request_id: str,
    now: datetime | None = None,
    binary_media_types: Iterable[str] = (),
    authorizer: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    headers, multi_headers = header_maps(request.headers)
    query, multi_query = query_maps(request.query)
    binary = is_binary(request, binary_media_types)
    body: str | None
    if not request.body:
        body = None
    elif binary:
        body = base64.b64encode(request.body).decode("ascii")
    else:
        body = request.body.decode("utf-8")
    context = request_context(request, match, path, stage, request_id, now)
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    return {
        "resource": match.route.path,
        "path": path,
        "httpMethod": request.method.upper(),
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": match.path_parameters or None,
        "stageVariables": None,
        "requestContext": context,
        "body": body,
        "isBase64Encoded": binary,
    }


def proxy_reply(result: Any, request_id: str) -> HttpReply:
    """The HTTP reply for a Lambda proxy result; ValueError for what API Gateway calls a
    'Malformed Lambda proxy response' (answered with a 502)."""
    if not isinstance(result, dict):
        raise ValueError(f"proxy result is {type(result).__name__}, not an object")
    status = result.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError(f"statusCode {result.get('statusCode')!r} is not an HTTP status")
    headers = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    if not isinstance(headers, dict) or not isinstance(multi, dict):
        raise ValueError("headers and multiValueHeaders must be objects")
    out: list[tuple[str, str]] = []
    multi_names = {k.lower() for k in multi}
    for key, values in multi.items():
        if not isinstance(values, list):
            raise ValueError(f"multiValueHeaders[{key!r}] is not a list")
        out.extend((str(key), _header_value(v)) for v in values)
    # A header in both maps: API Gateway keeps the multiValueHeaders values.
    out.extend((str(k), _header_value(v)) for k, v in headers.items() if k.lower() not in multi_names)
    out = [(k, v) for k, v in out if k.lower() not in _HOP_BY_HOP]
    if not any(k.lower() == "content-type" for k, _ in out):
        out.append(("Content-Type", "application/json"))
    out.append(("x-amzn-RequestId", request_id))
    body = result.get("body")
    if body is None:
        raw = b""
    elif not isinstance(body, str):
        raise ValueError(f"body is {type(body).__name__}, not a string")
    elif result.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"isBase64Encoded body is not base64: {exc}") from exc
    else:
        raw = body.encode("utf-8")
    return HttpReply(status, out, raw)


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)
