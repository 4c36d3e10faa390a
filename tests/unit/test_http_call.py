"""The run worker's outbound call (executors/http_call.py) against a real HTTP server on
127.0.0.1: pinned to the checked address, no redirects, bounded reads and decompression.
Refusals of internal addresses are proven without sending them any traffic."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest

from batchops.executors import http_call
from tests.job_endpoint import JobEndpoints, Reply, job_endpoints


@pytest.fixture(scope="module")
def server() -> Iterator[JobEndpoints]:
    with job_endpoints() as endpoints:
        yield endpoints


def call(url: str, *, resolver=None, timeout: float = 5, limit: int = 1024, allow_loopback: bool = True):
    return http_call.call(
        url,
        method="POST",
        headers={"X-Custom": "1"},
        body='{"a":1}',
        timeout_seconds=timeout,
        max_body_bytes=limit,
        allow_loopback=allow_loopback,
        **({"resolver": resolver} if resolver else {}),
    )


def test_a_call_sends_the_body_and_headers_and_reads_the_answer(server):
    server.script("/ok", Reply(201, {"done": True}, {"Retry-After": "7"}))
    out = call(server.url("/ok"))
    assert (out.http_status, out.body, out.retry_after, out.error_code) == (201, b'{"done": true}', "7", None)
    [seen] = server.calls_to("/ok")
    assert seen.body == {"a": 1} and seen.headers["x-custom"] == "1"
    assert seen.headers["user-agent"].startswith("batchops-run-worker/")


def test_the_connection_goes_to_the_checked_address_with_the_original_host(server):
    port = server.url("/").split(":")[2].split("/")[0]
    asked: list[str] = []

    def resolver(host: str, _port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    out = call(f"http://hooks.example.test:{port}/pinned", resolver=resolver)
    assert out.http_status == 200 and asked == ["hooks.example.test"]
    assert server.calls_to("/pinned")[0].headers["host"] == f"hooks.example.test:{port}"


def test_a_name_resolving_to_an_internal_address_is_refused_before_any_traffic(server):
    before = len(server.calls)
    for address in ("10.1.2.3", "169.254.169.254", "127.0.0.1", "::ffff:192.168.0.1", "fd00::1"):
        out = call("http://rebind.example.test/x", resolver=lambda h, p, a=address: [a], allow_loopback=False)
        assert out.error_code == "UNSAFE_URL", address
    assert len(server.calls) == before


def test_unresolvable_names_are_connection_errors_and_bad_urls_invalid():
    def nowhere(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    assert call("https://nowhere.example.test/", resolver=nowhere).error_code == "CONNECTION_ERROR"
    assert call("ftp://example.com/").error_code == "INVALID_URL"
    assert call("http://127.0.0.1:1/", allow_loopback=False).error_code == "UNSAFE_URL"


def test_redirects_are_returned_not_followed(server):
    server.script("/moved", Reply(302, headers={"Location": server.url("/elsewhere")}))
    assert call(server.url("/moved")).http_status == 302
    assert server.calls_to("/elsewhere") == []


def test_the_body_read_is_bounded(server):
    server.script("/big", Reply(200, raw=b"y" * 5000))
    out = call(server.url("/big"), limit=1000)
    assert out.body_too_large and len(out.body) == 1000


def test_a_compressed_body_inflates_only_up_to_the_bound(server):
    bomb = gzip.compress(b"z" * 10_000_000)  # ~10 KB that would inflate to 10 MB
    server.script("/bomb", Reply(200, raw=bomb, headers={"Content-Encoding": "gzip"}))
    out = call(server.url("/bomb"), limit=1000)
    assert out.body_too_large and out.body == b"z" * 1000
    server.script("/small", Reply(200, raw=gzip.compress(b'{"ok":1}'), headers={"Content-Encoding": "gzip"}))
    small = call(server.url("/small"), limit=1000)
    assert (small.body, small.body_too_large) == (b'{"ok":1}', False)


def test_a_slow_endpoint_times_out(server):
    server.script("/slow", Reply(200, {"late": True}, delay=2))
    out = call(server.url("/slow"), timeout=0.5)
    assert (out.http_status, out.error_code) == (None, "TIMEOUT")


def test_the_timeout_covers_the_whole_exchange_not_each_read(server):
    import time

    server.script("/drip", Reply(200, raw=b"0123456789", drip=0.4))  # every read is quick, the whole is 4 s
    started = time.monotonic()
    out = call(server.url("/drip"), timeout=1)
    assert out.error_code == "TIMEOUT" and time.monotonic() - started < 2


def test_an_address_that_refuses_is_followed_by_the_next_checked_one(server):
    port = server.url("/").split(":")[2].split("/")[0]
    out = call(f"http://multi.example.test:{port}/next", resolver=lambda h, p: ["127.0.0.2", "127.0.0.1"])
    assert out.http_status == 200 and len(server.calls_to("/next")) == 1


def test_raw_deflate_bodies_are_inflated(server):
    import zlib

    squeeze = zlib.compressobj(wbits=-15)
    raw = squeeze.compress(b'{"raw":true}') + squeeze.flush()
    server.script("/deflate", Reply(200, raw=raw, headers={"Content-Encoding": "deflate"}))
    assert call(server.url("/deflate")).body == b'{"raw":true}'


def test_a_refused_connection_is_a_connection_error():
    out = call("http://127.0.0.1:1/closed")
    assert out.error_code == "CONNECTION_ERROR"
