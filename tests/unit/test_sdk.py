"""The SDK's request handling, against a scripted transport: 429s retried after Retry-After,
large bulk-track bodies gzipped, bodies Lambda cannot take refused before sending."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from batchops_client.sdk import ApiError, BatchopsClient


def scripted(*replies: httpx.Response) -> tuple[BatchopsClient, list[httpx.Request], list[float]]:
    seen: list[httpx.Request] = []
    waits: list[float] = []
    queue = list(replies)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0)

    client = BatchopsClient(
        "http://api.test", "bo_test", transport=httpx.MockTransport(handle), sleep=waits.append, max_retries=2
    )
    return client, seen, waits


LIMITED = httpx.Response(
    429, headers={"Retry-After": "3"}, json={"error": "Rate limit exceeded.", "code": "RATE_LIMITED"}
)


def test_a_429_is_retried_after_retry_after():
    client, seen, waits = scripted(LIMITED, httpx.Response(200, json={"status": "ok", "messageId": "m"}))
    assert client.track({"event": "e"}) == {"status": "ok", "messageId": "m"}
    assert len(seen) == 2 and waits == [3.0]
    assert seen[0].headers["Authorization"] == "Bearer bo_test"


def test_retries_end_with_the_429_as_an_error():
    client, seen, waits = scripted(LIMITED, LIMITED, LIMITED)
    with pytest.raises(ApiError) as refused:
        client.limits()
    assert (refused.value.status, refused.value.code) == (429, "RATE_LIMITED")
    assert len(seen) == 3 and waits == [3.0, 3.0]


def test_other_errors_are_not_retried():
    client, seen, _ = scripted(httpx.Response(400, json={"error": "Invalid event format.", "code": "INVALID_EVENT"}))
    with pytest.raises(ApiError):
        client.bulk_track([{"event": "x"}])
    assert len(seen) == 1


def test_large_bodies_go_gzipped_and_small_ones_plain():
    client, seen, _ = scripted(
        httpx.Response(200, json={"status": "ok", "messageIds": []}), httpx.Response(200, json={})
    )
    events = [{"event": "e", "properties": {"pad": "x" * 1000}, "timestamp": "2025-10-29T22:00:00Z"}] * 200
    client.bulk_track(events)
    client.bulk_track(events[:1])
    big, small = seen
    assert big.headers["Content-Encoding"] == "gzip" and json.loads(gzip.decompress(big.content)) == events
    assert "Content-Encoding" not in small.headers and json.loads(small.content) == events[:1]


def test_a_body_lambda_cannot_take_is_refused_before_sending():
    client, seen, _ = scripted()
    with pytest.raises(ValueError, match="upload_bulk_track"):
        client.bulk_track([{"event": "e", "properties": {"pad": "x" * 1_000_000}}] * 6)
    assert seen == []
