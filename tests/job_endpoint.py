"""A real HTTP server on 127.0.0.1 playing job endpoints for the run worker.

Each path answers from a script (status, headers, body, delay; the last reply repeats) and,
once given the job's signing secret, verifies every request's Standard Webhooks signature with
the `standardwebhooks` library, answering 401 when it does not verify. It also counts the requests
each path is serving at once (`peak`), for tests of concurrency limits.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None
    drip: float = 0.0  # seconds between the body's bytes (a slow-drip server)


@dataclass(frozen=True)
class Call:
    path: str
    method: str
    headers: dict[str, str]
    body: dict[str, Any]
    verified: bool
    raw: bytes = b""  # as received, to verify a signature whose secret was known only afterwards


class JobEndpoints:
    def __init__(self, server: ThreadingHTTPServer):
        self._server = server
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Reply]] = {}
        self._secrets: dict[str, str] = {}
        self._in_flight: dict[str, int] = {}
        self._peaks: dict[str, int] = {}
        self.calls: list[Call] = []

    def url(self, path: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts[path] = list(replies)

    def verify_with(self, path: str, secret: str) -> None:
        with self._lock:
            self._secrets[path] = secret

    def calls_to(self, path: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.path == path]

    def peak(self, path: str) -> int:
        """The most requests to `path` that were being served at the same time."""
        with self._lock:
            return self._peaks.get(path, 0)

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path
        with self._lock:
            self._in_flight[path] = self._in_flight.get(path, 0) + 1
            self._peaks[path] = max(self._peaks.get(path, 0), self._in_flight[path])
        try:
            self._answer(request)
        finally:
            with self._lock:
                self._in_flight[path] -= 1

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length)
        headers = {k.lower(): v for k, v in request.headers.items()}
        path = request.path
        with self._lock:
            secret = self._secrets.get(path)
            script = self._scripts.get(path) or [Reply()]
            reply = script.pop(0) if len(script) > 1 else script[0]
        verified = False
        if secret is not None:
            try:
                Webhook(secret).verify(raw, headers)
                verified = True
            except WebhookVerificationError:
                reply = Reply(401, {"error": "bad signature"})
        with self._lock:
            self.calls.append(Call(path, request.command, headers, json.loads(raw or b"null"), verified, raw))
        if reply.delay:
            time.sleep(reply.delay)
        payload = (
            reply.raw if reply.raw is not None else (b"" if reply.body is None else json.dumps(reply.body).encode())
        )
        try:
            request.send_response(reply.status)
            for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                request.send_header(name, value)
            request.send_header("Content-Length", str(len(payload)))
            request.end_headers()
            if reply.drip:
                for byte in payload:
                    request.wfile.write(bytes([byte]))
                    request.wfile.flush()
                    time.sleep(reply.drip)
            else:
                request.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the worker gave up waiting (a timeout test)


@contextmanager
def job_endpoints() -> Iterator[JobEndpoints]:
    endpoints: JobEndpoints

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            endpoints.answer(self)

        do_PUT = do_PATCH = do_DELETE = do_GET = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    endpoints = JobEndpoints(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoints
    finally:
        server.shutdown()
        server.server_close()
