"""`client.track` (seed 004) against respx: one event, reading it back, and `bulk`, which splits
arrays into requests the API takes (10 MB of JSON), gzips the large ones, sends what Lambda
cannot take (6 MB) through the presigned S3 upload, and merges the answers in input order."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
from email.parser import BytesParser
from email.policy import HTTP

import httpx
import pytest
import respx

from batchops_client import AsyncBatchopsClient, BatchopsClient, NotFoundError, ValidationError, WaitTimeout
from batchops_client.errors import BatchopsError
from batchops_client.models.tracking import BulkTrackResult
from batchops_client.resources.tracking import (
    GZIP_ABOVE_BYTES,
    MAX_BODY_BYTES,
    UPLOAD_ABOVE_BYTES,
    chunk_events,
    lambda_bytes,
)

BASE = "http://api.test"
S3 = "https://uploads.s3.test/"
RESULT = "https://uploads.s3.test/results/ws/upl_1.json?X-Amz-Signature=abc"


def client(waits: list[float] | None = None) -> BatchopsClient:
    return BatchopsClient("bo_test", BASE, sleep=(waits.append if waits is not None else lambda s: None))


def event(n: int, pad: int = 0, **extra) -> dict:
    return {
        "event": "page_view",
        "properties": {"n": n, "pad": "x" * pad},
        "timestamp": "2025-10-29T22:00:00Z",
        "messageId": f"m-{n}",
        **extra,
    }


def body_of(request: httpx.Request) -> list:
    raw = request.content
    if request.headers.get("Content-Encoding") == "gzip":
        raw = gzip.decompress(raw)
    return json.loads(raw)


def echo(request: httpx.Request) -> httpx.Response:
    """The API's answer to a bulk body: events marked `bad` refused by index, the others' ids."""
    sent = body_of(request)
    errors = [{"index": i, "error": "timestamp: required"} for i, e in enumerate(sent) if e.get("bad")]
    if len(errors) == len(sent):
        return httpx.Response(400, json={"error": "Invalid event format.", "code": "INVALID_EVENT", "details": errors})
    ids = [e["messageId"] for e in sent if not e.get("bad")]
    return httpx.Response(200, json={"status": "ok", "messageIds": ids, **({"errors": errors} if errors else {})})


def form_parts(request: httpx.Request) -> dict[str, bytes]:
    """The multipart form's parts by name, in order."""
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.content)
    return {
        part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
        for part in message.iter_parts()
    }


# ---------------------------------------------------------------- chunking (pure)


def test_chunks_stay_under_the_limit_keep_the_order_and_are_full():
    events = [event(n, pad=n % 7 * 50) for n in range(200)]
    limit = 3000
    chunks = chunk_events(events, limit)
    assert len(chunks) > 5
    assert all(len(chunk.body) <= limit for chunk in chunks)
    # Consecutive, in order, nothing lost or repeated.
    assert [e for chunk in chunks for e in json.loads(chunk.body)] == events
    assert [chunk.start for chunk in chunks] == [sum(c.count for c in chunks[:i]) for i in range(len(chunks))]
    # Each chunk as full as it can be: the next event would have put it over.
    for chunk, following in itertools.pairwise(chunks):
        first_next = json.dumps(events[following.start], separators=(",", ":")).encode()
        assert len(chunk.body) + 1 + len(first_next) > limit


def test_the_default_limit_is_the_apis_10_mb():
    assert MAX_BODY_BYTES == 10 * 1024 * 1024
    events = [event(n, pad=1000) for n in range(11_000)]  # about 11.3 MB of JSON
    chunks = chunk_events(events)
    assert len(chunks) == 2 and len(chunks[0].body) <= MAX_BODY_BYTES < len(chunks[0].body) + 1100
    assert chunks[1].start == chunks[0].count and chunks[0].count + chunks[1].count == 11_000


def test_one_event_larger_than_a_request_is_refused_before_sending():
    with pytest.raises(ValueError, match="event 1 is"):
        chunk_events([event(0), event(1, pad=500)], limit=400)
    with pytest.raises(ValueError, match="at least one event"):
        chunk_events([])


def test_lambda_bytes_count_the_escaping_of_the_body_as_a_json_string():
    body = json.dumps([{"a": "x\\y"}], separators=(",", ":")).encode()
    assert lambda_bytes(body) == len(json.dumps(body.decode())) - 2


# ---------------------------------------------------------------- one event


@respx.mock(base_url=BASE)
def test_track_posts_one_event_and_get_event_reads_it_back(respx_mock):
    posted = respx_mock.post("/v1/track").respond(200, json={"status": "ok", "messageId": "m-1"})
    respx_mock.get(url__regex=r"/v1/track/events/").respond(
        200, json={**event(1), "messageId": "m 1/é", "receivedAt": "2025-10-29T22:00:01.000Z", "extra": 1}
    )
    assert client().track.track(event(1)).message_id == "m-1"
    assert json.loads(posted.calls.last.request.content) == event(1)
    assert posted.calls.last.request.headers["Idempotency-Key"]
    got = client().track.get_event("m 1/é")
    assert respx_mock.calls.last.request.url.raw_path == b"/v1/track/events/m%201%2F%C3%A9"
    assert got.received_at == "2025-10-29T22:00:01.000Z" and got.properties["n"] == 1 and got["extra"] == 1


@respx.mock(base_url=BASE)
def test_an_unknown_event_is_not_found(respx_mock):
    respx_mock.get("/v1/track/events/x").respond(404, json={"error": "No tracked event x", "code": "NOT_FOUND"})
    with pytest.raises(NotFoundError):
        client().track.get_event("x")


# ---------------------------------------------------------------- bulk: gzip and splitting


@respx.mock(base_url=BASE)
def test_large_bodies_go_gzipped_and_small_ones_plain(respx_mock):
    route = respx_mock.post("/v1/bulk-track").mock(side_effect=echo)
    events = [event(n, pad=1000) for n in range(200)]
    assert client().track.bulk(events).message_ids == [f"m-{n}" for n in range(200)]
    client().track.bulk(events[:1])
    big, small = (call.request for call in route.calls)
    assert big.headers["Content-Encoding"] == "gzip" and json.loads(gzip.decompress(big.content)) == events
    assert len(big.content) < GZIP_ABOVE_BYTES < len(json.dumps(events))
    assert "Content-Encoding" not in small.headers and json.loads(small.content) == events[:1]
    assert small.headers["Content-Type"] == "application/json" and small.headers["Idempotency-Key"]


@respx.mock(base_url=BASE)
def test_bulk_splits_and_merges_in_input_order(respx_mock):
    route = respx_mock.post("/v1/bulk-track").mock(side_effect=echo)
    events = [event(n, pad=100, **({"bad": True} if n in (3, 17, 18) else {})) for n in range(30)]
    result = client().track.bulk(events, max_request_bytes=1500)
    sizes = [len(body_of(call.request)) for call in route.calls]
    assert len(sizes) > 3 and sum(sizes) == 30
    assert all(len(call.request.content) <= 1500 for call in route.calls)
    assert isinstance(result, BulkTrackResult)
    assert result.message_ids == [f"m-{n}" for n in range(30) if n not in (3, 17, 18)]
    assert [(e.index, e.error) for e in result.errors] == [(n, "timestamp: required") for n in (3, 17, 18)]
    # Each request its own Idempotency-Key: they carry different events.
    assert len({call.request.headers["Idempotency-Key"] for call in route.calls}) == len(sizes)


@respx.mock(base_url=BASE)
def test_a_request_with_no_valid_event_becomes_errors_of_the_whole(respx_mock):
    respx_mock.post("/v1/bulk-track").mock(side_effect=echo)
    events = [event(0, pad=200), event(1, pad=200, bad=True), event(2, pad=200, bad=True), event(3, pad=200)]
    result = client().track.bulk(events, max_request_bytes=700)
    assert result.message_ids == ["m-0", "m-3"] and [e.index for e in result.errors] == [1, 2]
    assert result.to_dict()["errors"][0] == {"index": 1, "error": "timestamp: required"}


@respx.mock(base_url=BASE)
def test_no_valid_event_anywhere_is_invalid_event_with_every_index(respx_mock):
    respx_mock.post("/v1/bulk-track").mock(side_effect=echo)
    events = [event(n, pad=200, bad=True) for n in range(4)]
    with pytest.raises(ValidationError) as split:
        client().track.bulk(events, max_request_bytes=700)
    assert split.value.code == "INVALID_EVENT" and [d["index"] for d in split.value.details] == [0, 1, 2, 3]
    with pytest.raises(ValidationError) as whole:  # one request: the API's own error, untouched
        client().track.bulk(events)
    assert whole.value.status == 400 and whole.value.body["details"][3]["index"] == 3


@respx.mock(base_url=BASE)
def test_other_refusals_are_raised_and_not_retried(respx_mock):
    route = respx_mock.post("/v1/bulk-track").respond(
        400, json={"error": "Malformed JSON body", "code": "MALFORMED_JSON"}
    )
    with pytest.raises(ValidationError, match="MALFORMED_JSON"):
        client().track.bulk([event(n, pad=200) for n in range(4)], max_request_bytes=700)
    assert route.call_count == 1


def test_a_too_large_event_is_refused_before_anything_is_sent():
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        route = mock.post("/v1/bulk-track").mock(side_effect=echo)
        with pytest.raises(ValueError, match="event 1 is"):
            client().track.bulk([event(0), event(1, pad=MAX_BODY_BYTES)])
        assert route.call_count == 0


# ---------------------------------------------------------------- uploads


def mock_upload(mock: respx.MockRouter, statuses: list[str], result: dict) -> dict[str, respx.Route]:
    created = {
        "uploadId": "upl_1",
        "status": "pending",
        "method": "POST",
        "url": S3,
        "fields": {"key": "uploads/ws/upl_1", "policy": "cG9saWN5", "x-amz-signature": "sig"},
        "fileField": "file",
        "maxBytes": MAX_BODY_BYTES,
        "expiresAt": "2026-01-01T00:15:00Z",
    }
    upload = {"uploadId": "upl_1", "createdAt": "2026-01-01T00:00:00Z"}
    states = [
        httpx.Response(
            200, json={**upload, "status": s, **({"resultUrl": RESULT} if s in ("completed", "failed") else {})}
        )
        for s in statuses
    ]
    return {
        "create": mock.post(f"{BASE}/v1/bulk-track/uploads").respond(201, json=created),
        "form": mock.post(S3).respond(204),
        "status": mock.get(f"{BASE}/v1/bulk-track/uploads/upl_1").mock(side_effect=states),
        "result": mock.get(RESULT).respond(200, json=result),
        "direct": mock.post(f"{BASE}/v1/bulk-track").mock(side_effect=echo),
    }


def test_a_body_lambda_cannot_take_goes_through_the_s3_upload():
    events = [event(n, pad=300) for n in range(10)]
    waits: list[float] = []
    with respx.mock(assert_all_called=False) as mock:
        routes = mock_upload(
            mock,
            ["pending", "processing", "completed"],
            {"status": "ok", "messageIds": ["a", "b"], "errors": [{"index": 4, "error": "too big"}]},
        )
        result = client(waits).track.bulk(events, upload_above=1000, poll_interval=0.5)
    assert routes["direct"].call_count == 0 and routes["create"].call_count == 1
    assert routes["create"].calls.last.request.headers["Idempotency-Key"]
    form = routes["form"].calls.last.request
    # S3's form carries its own credential: no API key on it (S3 refuses two).
    assert "Authorization" not in form.headers
    parts = form_parts(form)
    assert list(parts) == ["key", "policy", "x-amz-signature", "file"]
    assert parts["key"] == b"uploads/ws/upl_1" and json.loads(gzip.decompress(parts["file"])) == events
    assert routes["status"].call_count == 3 and waits == [0.5, 0.5]
    assert "Authorization" not in routes["result"].calls.last.request.headers
    assert result.message_ids == ["a", "b"] and result.errors[0].index == 4


def test_with_the_defaults_a_10_mb_chunk_is_uploaded_and_the_rest_sent_directly():
    events = [event(n, pad=1000) for n in range(11_000)]
    with respx.mock(assert_all_called=False) as mock:
        uploaded_ids = [f"m-{n}" for n in range(10_000)]
        routes = mock_upload(mock, ["completed"], {"status": "ok", "messageIds": uploaded_ids})
        result = client().track.bulk(events)
    parts = form_parts(routes["form"].calls.last.request)
    first = json.loads(gzip.decompress(parts["file"]))
    assert lambda_bytes(json.dumps(first, separators=(",", ":")).encode()) > UPLOAD_ABOVE_BYTES
    rest = body_of(routes["direct"].calls.last.request)
    assert first + rest == events and routes["direct"].calls.last.request.headers["Content-Encoding"] == "gzip"
    assert result.message_ids == uploaded_ids + [e["messageId"] for e in rest]


def test_upload_and_wait_for_upload():
    events = [event(n) for n in range(3)]
    with respx.mock(assert_all_called=False) as mock:
        routes = mock_upload(mock, ["processing", "completed"], {"status": "ok", "messageIds": ["m-0", "m-1", "m-2"]})
        api = client()
        upload = api.track.upload(events)
        seen: list[str] = []
        result = api.track.wait_for_upload(
            upload.upload_id, poll_interval=0.1, on_status=lambda u: seen.append(u.status)
        )
    assert upload.upload_id == "upl_1" and upload.file_field == "file" and upload["maxBytes"] == MAX_BODY_BYTES
    assert json.loads(gzip.decompress(form_parts(routes["form"].calls.last.request)["file"])) == events
    assert seen == ["processing", "completed"] and result.message_ids == ["m-0", "m-1", "m-2"]


def test_upload_refuses_more_than_one_requests_worth():
    with pytest.raises(ValueError, match="bulk"):
        client().track.upload([event(n, pad=1_000_000) for n in range(11)])


def test_a_failed_upload_raises_what_bulk_track_would_have():
    refusal = {"error": "Invalid event format.", "code": "INVALID_EVENT", "details": [{"index": 0, "error": "bad"}]}
    with respx.mock(assert_all_called=False) as mock:
        mock_upload(mock, ["failed"], refusal)
        with pytest.raises(ValidationError) as failed:
            client().track.wait_for_upload("upl_1")
    assert (failed.value.status, failed.value.code, failed.value.details) == (400, "INVALID_EVENT", refusal["details"])

    stuck = {"error": "The upload could not be ingested; create a new upload", "code": "INGEST_FAILED"}
    with respx.mock(assert_all_called=False) as mock:
        mock_upload(mock, ["failed"], stuck)
        with pytest.raises(BatchopsError) as failed:
            client().track.wait_for_upload("upl_1")
    assert not isinstance(failed.value, ValidationError) and failed.value.code == "INGEST_FAILED"


def test_waiting_on_an_upload_times_out_with_its_last_state():
    with respx.mock(assert_all_called=False) as mock:
        mock_upload(mock, ["processing"] * 5, {})
        with pytest.raises(WaitTimeout) as late:
            client().track.wait_for_upload("upl_1", poll_interval=1.0, timeout=2.0)
    assert late.value.last.status == "processing" and "upl_1" in str(late.value)


def test_the_async_client_bulk_tracks_too():
    events = [event(n, pad=1000) for n in range(100)]

    async def scenario():
        async with AsyncBatchopsClient("bo_test", BASE) as api:
            return await api.track.bulk(events, max_request_bytes=60_000)

    with respx.mock(base_url=BASE) as mock:
        route = mock.post("/v1/bulk-track").mock(side_effect=echo)
        result = asyncio.run(scenario())
    assert route.call_count == 2 and result.message_ids == [f"m-{n}" for n in range(100)]
    assert [call.request.headers.get("Content-Encoding") for call in route.calls] == [None, None]
