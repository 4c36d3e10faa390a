"""Building API Gateway REST proxy events and turning proxy results into HTTP replies."""

from __future__ import annotations

import base64
import gzip
from datetime import UTC, datetime

import pytest

from batchops_local.proxy import (
    IncomingRequest,
    build_authorizer_event,
    build_proxy_event,
    method_arn,
    proxy_reply,
)
from batchops_local.routing import RouteMatch
from batchops_local.template import Route

MATCH = RouteMatch(Route("/items/{id}", "POST", "Fn", "auth"), {"id": "7"})
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def event_for(request: IncomingRequest, **kw):
    return build_proxy_event(request, MATCH, path=request.path, stage="v1", request_id="req-1", now=NOW, **kw)


def test_headers_query_and_context() -> None:
    request = IncomingRequest(
        "POST",
        "/items/7?tag=a&tag=b&q=x%20y",
        [("Host", "127.0.0.1:3000"), ("X-Multi", "1"), ("X-Multi", "2"), ("content-type", "text/plain")],
        b"hello",
        "10.0.0.9",
    )
    event = event_for(request, authorizer={"workspace_id": "ws1", "principalId": "p"})
    assert event["resource"] == "/items/{id}"
    assert event["path"] == "/items/7"
    assert event["httpMethod"] == "POST"
    assert event["headers"] == {"Host": "127.0.0.1:3000", "X-Multi": "2", "content-type": "text/plain"}
    assert event["multiValueHeaders"]["X-Multi"] == ["1", "2"]
    assert event["queryStringParameters"] == {"tag": "b", "q": "x y"}
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b"], "q": ["x y"]}
    assert event["pathParameters"] == {"id": "7"}
    assert event["stageVariables"] is None
    assert (event["body"], event["isBase64Encoded"]) == ("hello", False)
    ctx = event["requestContext"]
    assert ctx["path"] == "/items/7"
    assert ctx["stage"] == "v1"
    assert ctx["resourcePath"] == "/items/{id}"
    assert ctx["requestTimeEpoch"] == int(NOW.timestamp() * 1000)
    assert ctx["requestTime"] == "02/Jan/2026:03:04:05 +0000"
    assert ctx["identity"]["sourceIp"] == "10.0.0.9"
    assert ctx["authorizer"] == {"workspace_id": "ws1", "principalId": "p"}


def test_absent_parts_are_null() -> None:
    request = IncomingRequest("GET", "/items/7", [], b"")
    event = build_proxy_event(
        request, RouteMatch(Route("/x", "GET", "Fn", None), {}), path="/x", stage="v1", request_id="r"
    )
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    assert "authorizer" not in event["requestContext"]


@pytest.mark.parametrize(
    ("headers", "body", "binary_types"),
    [
        ([("Content-Type", "application/json"), ("Content-Encoding", "gzip")], gzip.compress(b"{}", mtime=0), ()),
        ([("Content-Type", "image/png")], b"text-looking bytes", ("image/png",)),
        ([("Content-Type", "application/vnd.thing+json; charset=utf-8")], b"{}", ("application/*",)),
        ([("Content-Type", "text/plain")], b"\xff\xfe\x00", ()),
        ([], b"abc", ("*/*",)),
    ],
)
def test_binary_bodies_are_base64(headers, body, binary_types) -> None:
    event = event_for(IncomingRequest("POST", "/items/7", headers, body), binary_media_types=binary_types)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_text_body_with_other_binary_types_stays_text() -> None:
    request = IncomingRequest("POST", "/items/7", [("Content-Type", "application/json")], '{"é": 1}'.encode())
    event = event_for(request, binary_media_types=("image/png",))
    assert (event["body"], event["isBase64Encoded"]) == ('{"é": 1}', False)


def test_authorizer_event() -> None:
    request = IncomingRequest("POST", "/items/7?tenant=t", [("Authorization", "Bearer x")], b"{}")
    event = build_authorizer_event(request, MATCH, "/items/7", "v1", "r", NOW)
    assert event["type"] == "REQUEST"
    assert event["methodArn"] == "arn:aws:execute-api:us-east-1:123456789012:local/v1/POST/items/7"
    assert event["resource"] == "/items/{id}"
    assert event["headers"] == {"Authorization": "Bearer x"}
    assert event["queryStringParameters"] == {"tenant": "t"}
    assert event["pathParameters"] == {"id": "7"}
    assert event["requestContext"]["resourcePath"] == "/items/{id}"
    assert method_arn("Prod", "get", "/") == "arn:aws:execute-api:us-east-1:123456789012:local/Prod/GET/"


def test_proxy_reply_merges_headers_and_decodes_base64() -> None:
    reply = proxy_reply(
        {
            "statusCode": 201,
            "headers": {
                "Content-Type": "image/png",
                "X-One": 1,
                "Set-Cookie": "ignored",
                "Content-Length": "999",
            },
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": base64.b64encode(b"\x89PNG").decode(),
            "isBase64Encoded": True,
        },
        "req-1",
    )
    assert reply.status == 201
    assert reply.body == b"\x89PNG"
    assert [v for k, v in reply.headers if k == "Set-Cookie"] == ["a=1", "b=2"]
    headers = dict(reply.headers)
    assert headers["X-One"] == "1"
    assert headers["Content-Type"] == "image/png"
    assert "Content-Length" not in headers  # the gateway computes it
    assert headers["x-amzn-RequestId"] == "req-1"


def test_proxy_reply_defaults() -> None:
    reply = proxy_reply({"statusCode": 204}, "r")
    assert (reply.status, reply.body) == (204, b"")
    assert dict(reply.headers)["Content-Type"] == "application/json"
    assert proxy_reply({"statusCode": "200", "body": "ok"}, "r").body == b"ok"


@pytest.mark.parametrize(
    "result",
    [
        None,
        "text",
        {"body": "no status"},
        {"statusCode": True},
        {"statusCode": 99},
        {"statusCode": 200, "body": {"a": 1}},
        {"statusCode": 200, "headers": ["X-A"]},
        {"statusCode": 200, "multiValueHeaders": {"A": "not-a-list"}},
        {"statusCode": 200, "body": "***", "isBase64Encoded": True},
    ],
)
def test_malformed_proxy_results(result) -> None:
    with pytest.raises(ValueError):
        proxy_reply(result, "r")
