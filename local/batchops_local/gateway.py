"""The local API Gateway: a real HTTP server on 127.0.0.1 in front of the template's functions.

GatewayApp holds the API Gateway behaviour (routing, authorizer, proxy event, gateway responses)
on plain values so unit tests can drive it without sockets; GatewayServer is the thin HTTP part
(body limits, chunked bodies, keep-alive, Expect: 100-continue).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from batchops_local.authorizer import AuthorizerCache, authorize
from batchops_local.functions import FunctionRegistry, InvocationError, InvocationTimeout, PayloadTooLarge
from batchops_local.gateway_responses import HttpReply, gateway_response
from batchops_local.log import stderr_line
from batchops_local.proxy import IncomingRequest, build_authorizer_event, build_proxy_event, proxy_reply
from batchops_local.routing import RouteMatch, Router
from batchops_local.template import Template

# API Gateway REST limits.
MAX_BODY_BYTES = 10 * 1024 * 1024  # 10 MB request payload
INTEGRATION_TIMEOUT_SECONDS = 29.0  # default integration timeout

Log = Callable[[str], None]


class GatewayApp:
    def __init__(
        self,
        template: Template,
        registry: FunctionRegistry,
        *,
        log: Log = stderr_line,
        cache: AuthorizerCache | None = None,
        integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS,
    ) -> None:
        self.integration_timeout = integration_timeout
        self.template = template
        self.api = template.api
        self.registry = registry
        self.router = Router(template.routes)
        self.cache = cache or AuthorizerCache()
        self.log = log

    # replies API Gateway makes itself

    def gateway(self, response_type: str, message: str | None, request_id: str, status: int | None = None) -> HttpReply:
        return gateway_response(self.api.gateway_responses, response_type, message, request_id, status=status)

    def too_large(self) -> HttpReply:
        return self.gateway("REQUEST_TOO_LARGE", "Request Too Long", str(uuid.uuid4()))

    def internal_error(self, request_id: str) -> HttpReply:
        # A failed or malformed Lambda proxy integration: 502 through DEFAULT_5XX.
        return self.gateway("DEFAULT_5XX", "Internal server error", request_id, status=502)

    # one request

    def _route(self, request: IncomingRequest) -> tuple[str, RouteMatch | None]:
        """The path as the function sees it, and its route. A URL that carries the stage, as
        deployed URLs do (/Prod/v1/...), also works when the stage-less path has no route."""
        path = request.path
        match = self.router.match(request.method, path)
        prefix = f"/{self.api.stage}"
        if match is None and (path == prefix or path.startswith(prefix + "/")):
            stripped = path[len(prefix) :] or "/"
            stripped_match = self.router.match(request.method, stripped)
            if stripped_match is not None or self.router.resource_exists(stripped):
                return stripped, stripped_match
        return path, match

    def handle(self, request: IncomingRequest) -> HttpReply:
        request_id = str(uuid.uuid4())
        path, match = self._route(request)
        if (
            request.method.upper() == "OPTIONS"
            and self.api.cors is not None
            and self.router.resource_exists(path)
            and (match is None or match.route.method != "OPTIONS")
        ):
            # SAM's Cors adds an OPTIONS mock to every path; it wins over an ANY route.
            return self._preflight(path)
        if match is None:
            return self.gateway("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", request_id)
        now = datetime.now(UTC)
        authorizer_context: dict[str, Any] | None = None
        if match.route.authorizer is not None:
            authorizer = self.api.authorizers[match.route.authorizer]
            auth_event = build_authorizer_event(request, match, path, self.api.stage, request_id, now)
            result = authorize(
                authorizer,
                auth_event,
                auth_event["headers"],
                auth_event["queryStringParameters"],
                lambda name, event, timeout: self.registry.invoke(name, event, timeout=timeout, log_traceback=False),
                self.cache,
                self.log,
            )
            if result.outcome != "allow":
                return self.gateway(result.response_type, result.message, request_id)
            authorizer_context = result.context
        event = build_proxy_event(
            request,
            match,
            path=path,
            stage=self.api.stage,
            request_id=request_id,
            now=now,
            binary_media_types=self.api.binary_media_types,
            authorizer=authorizer_context,
        )
        function = self.registry.get(match.route.function_name)
        try:
            result_value = self.registry.invoke(function.name, event, timeout=self.integration_timeout)
        except InvocationTimeout:
            if function.timeout < self.integration_timeout:
                # The function's own Timeout: Lambda reports "Task timed out" as a function
                # error, which API Gateway answers like any other with a 502.
                return self.internal_error(request_id)
            return self.gateway("INTEGRATION_TIMEOUT", "Endpoint request timed out", request_id)
        except PayloadTooLarge:
            # Over Lambda's 6 MB but under API Gateway's 10 MB: API Gateway answers 413
            # {"message": "Request Too Long"}, i.e. REQUEST_TOO_LARGE; the function never runs.
            return self.gateway("REQUEST_TOO_LARGE", "Request Too Long", request_id)
        except InvocationError:
            return self.internal_error(request_id)
        try:
            return proxy_reply(result_value, request_id)
        except ValueError as exc:
            self.log(f"[{match.route.function_name}] Malformed Lambda proxy response: {exc}")
            return self.internal_error(request_id)

    def _preflight(self, path: str) -> HttpReply:
        """The CORS preflight SAM's Cors setting answers with a mock integration."""
        cors = self.api.cors
        assert cors is not None
        methods = cors.allow_methods
        if methods is None:
            on_path = {r.method for r in self.template.routes if self.router.match(r.method, path) is not None}
            methods = ",".join(sorted(on_path | {"OPTIONS"})) if "ANY" not in on_path else "*"
        headers = [
            ("Access-Control-Allow-Origin", cors.allow_origin),
            ("Access-Control-Allow-Methods", methods),
        ]
        if cors.allow_headers:
            headers.append(("Access-Control-Allow-Headers", cors.allow_headers))
        if cors.max_age:
            headers.append(("Access-Control-Max-Age", cors.max_age))
        if cors.allow_credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return HttpReply(204, headers, b"")


class _BodyTooLarge(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients expect from API Gateway
    server: GatewayServer
    timeout = 120  # idle keep-alive connections end eventually

    def version_string(self) -> str:
        return "batchops-local"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request is written by _dispatch

    def _declared_length(self) -> int | None:
        raw = self.headers.get("Content-Length")
        return int(raw) if raw is not None and raw.strip().isdigit() else None

    def handle_expect_100(self) -> bool:
        # Refuse an oversized body before the client sends it (curl waits for 100 Continue).
        length = self._declared_length()
        if length is not None and length > MAX_BODY_BYTES:
            self._reply_too_large(time.monotonic())
            return False
        return super().handle_expect_100()

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = self._declared_length()
        if length is None:
            return b""
        if length > MAX_BODY_BYTES:
            raise _BodyTooLarge
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyTooLarge
            chunks.append(self.rfile.read(size))
            self.rfile.readline(65537)

    def _reply_too_large(self, started: float) -> None:
        # The rest of the body stays unread, so this connection cannot be reused.
        self.close_connection = True
        reply = self.server.app.too_large()
        self._send(HttpReply(reply.status, [*reply.headers, ("Connection", "close")], reply.body), started)

    def _dispatch(self) -> None:
        started = time.monotonic()
        try:
            body = self._read_body()
        except _BodyTooLarge:
            self._reply_too_large(started)
            return
        except ValueError:
            self.close_connection = True
            self._send(
                HttpReply(
                    400,
                    [("Content-Type", "application/json"), ("Connection", "close")],
                    b'{"message":"Bad Request"}',
                ),
                started,
            )
            return
        request = IncomingRequest(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        try:
            reply = self.server.app.handle(request)
        except Exception as exc:  # noqa: BLE001 - a gateway bug must not kill the connection silently
            self.server.app.log(f"gateway error: {type(exc).__name__}: {exc}")
            reply = self.server.app.internal_error(str(uuid.uuid4()))
        self._send(reply, started)

    def _send(self, reply: HttpReply, started: float) -> None:
        self.send_response(reply.status)
        for key, value in reply.headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)
        elapsed = (time.monotonic() - started) * 1000
        self.server.app.log(f"{self.command} {self.path} {reply.status} {elapsed:.0f}ms")

    def __getattr__(self, name: str) -> Any:
        # Every method goes through the gateway (http.server answers unknown ones with a 501 HTML
        # page); API Gateway routes it, and one it does not serve is MISSING_AUTHENTICATION_TOKEN.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True  # a slow request never blocks shutdown

    def __init__(self, app: GatewayApp, port: int, host: str = "127.0.0.1") -> None:
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port} for the API: {exc.strerror}") from exc
        self.app = app
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits forever for a loop that never ran
            self.shutdown()
            self._thread.join(timeout=5)
        self.server_close()
