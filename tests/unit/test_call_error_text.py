"""A failed outbound call is described by a stable message, never the exception's own text.

The message is shown to clients (a run's `error`, GET /v1/runs/{id}); httpx's text carried Python's
errno lines, OpenSSL's reasons and internal addresses (`ConnectError: [Errno 111] Connection
refused`). The detail is logged instead."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from batchops.executors import http_call
from tests.job_endpoint import JobEndpoints, job_endpoints

RAW = ("Error", "Errno", "errno", "[SSL", "ssl", "Traceback", "127.0.0.1")


@pytest.fixture(scope="module")
def server() -> Iterator[JobEndpoints]:
    with job_endpoints() as endpoints:
        yield endpoints


def call(url: str) -> http_call.CallOutcome:
    return http_call.call(
        url, method="POST", headers={}, body="{}", timeout_seconds=5, max_body_bytes=1024, allow_loopback=True
    )


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_connection_says_so_without_the_errno_line(caplog: pytest.LogCaptureFixture) -> None:
    out = call(f"http://127.0.0.1:{_closed_port()}/x")
    assert (out.error_code, out.message) == ("CONNECTION_ERROR", "Could not connect to the endpoint")
    assert any("Connection refused" in str(getattr(r, "error", "")) for r in caplog.records)


def test_a_tls_failure_says_so_without_openssls_text(server: JobEndpoints) -> None:
    # https to a plain-HTTP server: the handshake fails.
    out = call(server.url("/plain").replace("http://", "https://"))
    assert out.error_code == "CONNECTION_ERROR"
    assert out.message == "The TLS handshake with the endpoint failed"
    assert not any(raw in out.message for raw in RAW)


def test_an_endpoint_that_hangs_up_says_so() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def hang_up() -> None:
            connection, _ = listener.accept()
            connection.recv(65536)
            connection.close()

        threading.Thread(target=hang_up, daemon=True).start()
        out = call(f"http://127.0.0.1:{port}/x")
    assert out.error_code == "CONNECTION_ERROR"
    assert out.message == "The endpoint closed the connection or did not answer with valid HTTP"
