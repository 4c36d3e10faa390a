"""The local API Gateway over real HTTP: proxy events, authorizer, gateway responses, limits."""

from __future__ import annotations

import base64
import gzip
import json
import socket
from urllib.parse import urlsplit

import httpx

from tests.e2e.harness import RunningStack


def echo(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def test_echo_gets_a_rest_proxy_event(stack: RunningStack) -> None:
    response = httpx.get(
        f"{stack.api}/echo/42?a=1&a=2&empty=",
        headers=[("Authorization", "Bearer good"), ("X-Multi", "one"), ("X-Multi", "two")],
    )
    body = echo(response)
    event, context = body["event"], body["context"]
    assert event["resource"] == "/echo/{id}"
    assert event["path"] == "/echo/42"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"id": "42"}
    assert event["queryStringParameters"] == {"a": "2", "empty": ""}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "empty": [""]}
    assert event["headers"]["X-Multi"] == "two"
    assert event["multiValueHeaders"]["X-Multi"] == ["one", "two"]
    assert event["headers"]["Authorization"] == "Bearer good"
    assert event["stageVariables"] is None
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["stage"] == "test"
    assert ctx["path"] == "/echo/42"
    assert ctx["resourcePath"] == "/echo/{id}"
    assert ctx["httpMethod"] == "GET"
    assert ctx["accountId"] == "123456789012"
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert ctx["requestId"] == response.headers["x-amzn-RequestId"]
    assert isinstance(ctx["requestTimeEpoch"], int)
    authorizer = ctx["authorizer"]
    assert authorizer["workspace_id"] == "ws1"
    assert authorizer["principalId"] == "user-1"
    # API Gateway hands context values on as strings.
    assert authorizer["admin"] == "false"
    assert authorizer["limit"] == "10"
    assert context["function_name"] == "EchoFunction"
    assert context["memory_limit_in_mb"] == 256
    assert 0 < context["remaining_ms"] <= 5000
    # The proxy result's headers and multiValueHeaders both reach the client.
    assert response.headers["X-Echo"] == "1"
    assert response.headers.get_list("Set-Cookie") == ["a=1", "b=2"]


def test_route_without_authorizer_and_without_parameters(stack: RunningStack) -> None:
    event = echo(httpx.get(f"{stack.api}/public"))["event"]
    assert event["resource"] == "/public"
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None
    assert "authorizer" not in event["requestContext"]


def test_greedy_proxy_path(stack: RunningStack, auth: dict[str, str]) -> None:
    event = echo(httpx.delete(f"{stack.api}/files/a/b/c.txt", headers=auth))["event"]
    assert event["resource"] == "/files/{proxy+}"
    assert event["pathParameters"] == {"proxy": "a/b/c.txt"}
    assert event["httpMethod"] == "DELETE"


def test_gzip_body_arrives_base64_encoded(stack: RunningStack, auth: dict[str, str]) -> None:
    raw = gzip.compress(json.dumps({"items": list(range(100))}).encode())
    response = httpx.post(
        f"{stack.api}/echo/7",
        content=raw,
        headers={**auth, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    event = echo(response)["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


def test_binary_media_type_and_text_bodies(stack: RunningStack, auth: dict[str, str]) -> None:
    binary = echo(
        httpx.post(
            f"{stack.api}/echo/1",
            content=b"plain ascii",
            headers={**auth, "Content-Type": "application/octet-stream"},
        )
    )["event"]
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"plain ascii"
    text = echo(httpx.post(f"{stack.api}/echo/1", json={"a": "é"}, headers=auth))["event"]
    assert text["isBase64Encoded"] is False
    assert json.loads(text["body"]) == {"a": "é"}


def test_stage_prefixed_url_also_routes(stack: RunningStack, auth: dict[str, str]) -> None:
    event = echo(httpx.get(f"{stack.api}/test/echo/5", headers=auth))["event"]
    assert event["path"] == "/echo/5"
    # as API Gateway: requestContext.path is what the client sent, stage included
    assert event["requestContext"]["path"] == "/test/echo/5"


def test_missing_or_bad_authorization_is_the_templates_401(stack: RunningStack) -> None:
    for headers in ({}, {"Authorization": ""}, {"Authorization": "Bearer bad"}):
        response = httpx.get(f"{stack.api}/echo/1", headers=headers)
        assert response.status_code == 401, headers
        assert response.json() == {"error": "Unauthorized", "code": "UNAUTHORIZED"}
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["x-amzn-ErrorType"] == "UnauthorizedException"


def test_unknown_route_or_method_is_missing_authentication_token(stack: RunningStack, auth: dict[str, str]) -> None:
    cases = (
        ("GET", "/nope"),
        ("DELETE", "/echo/1"),
        ("GET", "/echo"),
        ("GET", "/echo/1/extra"),
        ("TRACE", "/echo/1"),
    )
    for method, path in cases:
        response = httpx.request(method, f"{stack.api}{path}", headers=auth)
        assert response.status_code == 404, (method, path)
        assert response.json() == {"error": "Route not found", "code": "NOT_FOUND"}
        assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_handler_error_and_malformed_result_are_502(stack: RunningStack, auth: dict[str, str]) -> None:
    for flag in ("raise", "malformed"):
        response = httpx.get(f"{stack.api}/echo/1?{flag}=1", headers=auth)
        assert response.status_code == 502, flag
        assert response.json() == {"error": "Internal server error", "code": "INTERNAL_ERROR"}
    assert "RuntimeError: echo was asked to fail" in stack.logs()


def test_base64_result_is_decoded(stack: RunningStack, auth: dict[str, str]) -> None:
    response = httpx.get(f"{stack.api}/echo/1?binary=1", headers=auth)
    assert response.status_code == 200
    assert response.content == b"\x00\x01\x02\xff"
    assert response.headers["Content-Type"] == "application/octet-stream"


def test_function_timeout_is_a_502_like_any_lambda_error(stack: RunningStack, auth: dict[str, str]) -> None:
    # The function's Timeout (1 s) is below API Gateway's 29 s: Lambda reports "Task timed out"
    # and API Gateway answers 502 (a 504 INTEGRATION_TIMEOUT needs the 29 s limit; unit-tested).
    response = httpx.get(f"{stack.api}/slow", headers=auth, timeout=10)
    assert response.status_code == 502
    assert response.json() == {"error": "Internal server error", "code": "INTERNAL_ERROR"}
    assert "Task timed out after 1.00 seconds" in stack.logs()


def raw_exchange(api: str, head: str, body_chunks: tuple[bytes, ...] = ()) -> tuple[int, bytes]:
    """Send a hand-made request and read one response: (status, body)."""
    url = urlsplit(api)
    assert url.hostname is not None and url.port is not None
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head.encode())
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway may answer and close before the whole body is sent
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head_bytes, _, body = data.partition(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":")[1] for line in head_bytes.split(b"\r\n") if line.lower().startswith(b"content-length")
            )
        )
        while len(body) < length:
            body += sock.recv(65536)
    return int(head_bytes.split(b" ")[1]), body


TOO_LARGE = {"error": "Request Too Long", "code": "PAYLOAD_TOO_LARGE"}


def _head(api: str, extra: str) -> str:
    return (
        f"POST /echo/1 HTTP/1.1\r\nHost: {urlsplit(api).netloc}\r\nAuthorization: Bearer good\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    )


def test_body_over_10_mib_is_rejected_before_it_is_read(stack: RunningStack) -> None:
    # Only the head is sent: the gateway must answer from Content-Length alone.
    status, body = raw_exchange(stack.api, _head(stack.api, f"Content-Length: {10 * 1024 * 1024 + 1}\r\n"))
    assert status == 413
    assert json.loads(body) == TOO_LARGE


def test_expect_100_continue_gets_413_instead_of_100(stack: RunningStack) -> None:
    extra = f"Content-Length: {11 * 1024 * 1024}\r\nExpect: 100-continue\r\n"
    status, body = raw_exchange(stack.api, _head(stack.api, extra))
    assert status == 413
    assert json.loads(body) == TOO_LARGE


def test_chunked_bodies(stack: RunningStack, auth: dict[str, str]) -> None:
    small = httpx.post(f"{stack.api}/echo/1", content=iter([b'{"a":', b" 1}"]), headers=auth)
    assert echo(small)["event"]["body"] == '{"a": 1}'
    megabyte = b"x" * (1024 * 1024)
    chunks = tuple(f"{len(megabyte):x}\r\n".encode() + megabyte + b"\r\n" for _ in range(11))
    status, body = raw_exchange(stack.api, _head(stack.api, "Transfer-Encoding: chunked\r\n"), chunks)
    assert status == 413
    assert json.loads(body) == TOO_LARGE


def test_body_over_lambdas_6_mb_limit_is_request_too_large(stack: RunningStack, auth: dict[str, str]) -> None:
    # Under API Gateway's 10 MiB but over Lambda's 6 MB invoke limit: the function never runs and
    # API Gateway answers 413 "Request Too Long" (REQUEST_TOO_LARGE).
    response = httpx.post(
        f"{stack.api}/echo/1",
        content=b"a" * (7 * 1024 * 1024),
        headers={**auth, "Content-Type": "text/plain"},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.json() == {"error": "Request Too Long", "code": "PAYLOAD_TOO_LARGE"}


def test_cors_preflight(stack: RunningStack) -> None:
    response = httpx.options(
        f"{stack.api}/echo/1",
        headers={"Origin": "http://example.test", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Headers"] == "Authorization,Content-Type"
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert set(response.headers["Access-Control-Allow-Methods"].split(",")) == {"GET", "POST", "OPTIONS"}
