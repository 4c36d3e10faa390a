"""Tracking surface (seed 004) through the real function handlers on moto: bulk-track and track
with gzip bodies and their bounds, per-item errors, first-copy-wins de-duplication, read-back,
isolation, and the rate limits with their headers."""

from __future__ import annotations

import gzip
import io
import json
import time
import uuid
import zlib
from typing import Any

import boto3
import pytest

from batchops.dal import clients
from batchops.settings import reset_settings
from tests.support import LambdaContext, api_event, invoke, load_function, sqs_event

BULK = load_function("bulk_track")
TRACK = load_function("track")
GET = load_function("get_tracked_event")
WORKER = load_function("tracking_worker")
LIMITS = load_function("batch_limits")
BATCH = load_function("batch")
TOO_LARGE = {"error": "Payload exceeds maximum allowed size (10MB).", "code": "PAYLOAD_TOO_LARGE"}
TEN_MB = 10 * 1024 * 1024


@pytest.fixture(autouse=True)
def queue(aws, monkeypatch) -> str:
    url = boto3.client("sqs").get_queue_url(QueueName="TrackingQueue")["QueueUrl"]
    monkeypatch.setenv("BATCHOPS_TRACKING_QUEUE_URL", url)
    reset_settings()
    return str(url)


@pytest.fixture
def still(monkeypatch) -> None:
    """Hold the rate limiter's clock still, so bucket arithmetic does not depend on test speed."""
    from batchops.services import rate_limits

    monkeypatch.setattr(rate_limits, "clock_us", lambda: 1_800_000_000 * 1_000_000)


def event(n: int = 0, **extra: Any) -> dict[str, Any]:
    return {"event": "signup", "properties": {"n": n}, "timestamp": "2025-10-29T22:00:00.778Z", **extra}


def bulk(body: Any = None, *, raw: str | bytes | None = None, workspace: str = "ws-a", plan: str = "pro", **headers):
    kwargs: dict[str, Any] = {"raw_body": raw} if raw is not None else {"body": body}
    return invoke(BULK, api_event("bulk_track", workspace=workspace, plan=plan, headers=headers or None, **kwargs))


def gzipped(document: Any) -> bytes:
    return gzip.compress(json.dumps(document).encode())


def read_back(message_id: str, workspace: str = "ws-a"):
    return invoke(GET, api_event("get_tracked_event", path_params={"messageId": message_id}, workspace=workspace))


def drain(url: str) -> int:
    """Run the tracking worker over everything queued, as Lambda's event source would; return
    how many messages it took."""
    sqs = boto3.client("sqs")
    taken = 0
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        result = WORKER.lambda_handler(sqs_event("tracking_worker", messages), LambdaContext())
        assert result == {"batchItemFailures": []}
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        taken += len(messages)
    return taken


# ---------------------------------------------------------------- bulk-track


def test_bulk_track_accepts_events_in_request_order_and_stores_them(queue):
    sent = [event(0, messageId="m-0"), event(1), event(2, messageId="m-2", context={"ip": "203.0.113.9"})]
    status, headers, body = bulk(sent)
    assert status == 200, body
    assert body["status"] == "ok" and "errors" not in body
    ids = body["messageIds"]
    assert ids[0] == "m-0" and ids[2] == "m-2" and uuid.UUID(ids[1]).version == 4
    assert drain(queue) == 1
    status, _, stored = read_back("m-2")
    assert status == 200
    received = stored.pop("receivedAt")
    assert stored == {**sent[2], "messageId": "m-2"}  # other top-level fields are kept as sent
    assert received.endswith("Z") and abs(time.time() - _epoch(received)) < 60
    assert read_back(ids[1])[2]["properties"] == {"n": 1}
    assert headers["RateLimit-Limit"] == "50"


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()


def test_invalid_events_are_left_out_and_reported_by_index(queue):
    sent = [event(0), {"event": "x", "timestamp": "2025-10-29T22:00:00Z"}, "nope", event(3, messageId="x" * 101)]
    status, _, body = bulk(sent)
    assert status == 200
    assert len(body["messageIds"]) == 1
    assert [e["index"] for e in body["errors"]] == [1, 2, 3]
    assert "properties is required" in body["errors"][0]["error"]
    assert "must be at most 100 characters" in body["errors"][2]["error"]


@pytest.mark.parametrize(
    ("raw", "code", "detail"),
    [
        ("[]", "INVALID_EVENT", "must hold at least one event"),
        ('{"event": "x"}', "INVALID_EVENT", "must be a JSON array of events"),
        ('[{"event": "x"}, 7]', "INVALID_EVENT", None),
        ("[{", "MALFORMED_JSON", None),
    ],
)
def test_bad_bodies_are_400_and_store_nothing(queue, raw, code, detail):
    status, _, body = bulk(raw=raw)
    assert status == 400 and body["code"] == code
    if code == "INVALID_EVENT":
        assert body["error"] == "Invalid event format."
    if detail:
        assert body["details"][0]["error"] == detail
    if raw.startswith('[{"event"'):
        assert [d["index"] for d in body["details"]] == [0, 1]
    assert boto3.client("sqs").receive_message(QueueUrl=queue).get("Messages", []) == []


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "GZIP"])
def test_a_gzip_body_is_inflated(queue, encoding):
    status, _, body = bulk(raw=gzipped([event(1, messageId="g-1")]), **{"Content-Encoding": encoding})
    assert (status, body["messageIds"]) == (200, ["g-1"])


def test_concatenated_gzip_members_are_one_body(queue):
    text = json.dumps([event(n, messageId=f"c-{n}") for n in range(3)]).encode()
    status, _, body = bulk(raw=gzip.compress(text[:20]) + gzip.compress(text[20:]), **{"Content-Encoding": "gzip"})
    assert (status, body["messageIds"]) == (200, ["c-0", "c-1", "c-2"])


def test_a_body_api_gateway_already_inflated_is_taken_as_json(queue):
    # A REST API inflates gzip bodies before the integration and keeps the header.
    status, _, body = bulk(raw=json.dumps([event(messageId="aws-1")]), **{"Content-Encoding": "gzip"})
    assert (status, body["messageIds"]) == (200, ["aws-1"])


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-6],  # truncated
        lambda data: data[:-8] + bytes([data[-8] ^ 0xFF]) + data[-7:],  # bad CRC
        lambda data: data + b"garbage",  # trailing bytes
        lambda data: b"\x00\x01not gzip at all",
    ],
    ids=["truncated", "bad-crc", "trailing", "not-gzip"],
)
def test_a_corrupt_gzip_stream_is_400(queue, damage):
    status, _, body = bulk(raw=damage(gzipped([event()])), **{"Content-Encoding": "gzip"})
    assert (status, body["code"]) == (400, "INVALID_GZIP")


def test_an_unsupported_encoding_is_415(queue):
    status, _, body = bulk(raw=zlib.compress(b"[]"), **{"Content-Encoding": "br"})
    assert (status, body["code"]) == (415, "UNSUPPORTED_ENCODING")


def test_a_gzip_bomb_is_413_without_inflating_it_all(queue):
    bomb = io.BytesIO()
    with gzip.GzipFile(fileobj=bomb, mode="wb", compresslevel=9) as out:
        zeros = b"0" * (1024 * 1024)
        for _ in range(64):  # 64 MiB of "0" in ~64 KB
            out.write(zeros)
    status, _, body = bulk(raw=bomb.getvalue(), **{"Content-Encoding": "gzip"})
    assert (status, body) == (413, TOO_LARGE)


def test_bodies_over_10_mb_are_413_and_exactly_10_mb_is_read(queue):
    padding = TEN_MB - len(json.dumps([event(messageId="edge", pad="")]))
    exact = json.dumps([event(messageId="edge", pad="p" * padding)])
    assert len(exact) == TEN_MB
    over = exact[:-1] + " ]"
    assert bulk(raw=over)[:3:2] == (413, TOO_LARGE)
    assert bulk(raw=gzip.compress(over.encode()), **{"Content-Encoding": "gzip"})[:3:2] == (413, TOO_LARGE)
    status, _, body = bulk(raw=gzip.compress(exact.encode()), **{"Content-Encoding": "gzip"})
    # Read whole and checked: one event of 10 MB is over the 64 KB an event may be.
    assert status == 400 and body["details"][0]["index"] == 0 and "65,536" in body["details"][0]["error"]


def test_401_comes_before_the_body_is_read(queue, monkeypatch):
    from batchops import encoding

    def never(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("the body was read before the caller was known")

    monkeypatch.setattr(encoding, "inflate_gzip", never)
    event_ = api_event("bulk_track", raw_body=b"\x1f\x8b" + b"\x00" * 100, workspace=None)
    event_["headers"]["Content-Encoding"] = "gzip"
    status, headers, body = invoke(BULK, event_)
    assert (status, body) == (401, {"error": "Unauthorized", "code": "UNAUTHORIZED"})
    assert "RateLimit-Limit" not in headers


# ---------------------------------------------------------------- de-duplication


def test_the_first_copy_of_a_message_id_is_stored_in_one_request_across_requests_and_redeliveries(queue):
    status, _, first = bulk([event(1, messageId="dup"), event(2, messageId="dup"), event(3, messageId="other")])
    assert status == 200
    assert first["messageIds"] == ["dup", "dup", "other"]  # listed each time it appears
    sqs = boto3.client("sqs")
    [message] = sqs.receive_message(QueueUrl=queue).get("Messages", [])
    assert WORKER.lambda_handler(sqs_event("tracking_worker", [message]), LambdaContext()) == {"batchItemFailures": []}
    # A redelivery of the same message, and the same id sent again later: still the first copy.
    assert WORKER.lambda_handler(sqs_event("tracking_worker", [message]), LambdaContext()) == {"batchItemFailures": []}
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    assert bulk([event(9, messageId="dup")])[2]["messageIds"] == ["dup"]
    drain(queue)
    assert read_back("dup")[2]["properties"] == {"n": 1}
    items = clients.dynamodb().scan(TableName="DomainTable")["Items"]
    assert sorted(i["pk"]["S"] for i in items if i["sk"]["S"] == "EVENT") == ["WS#ws-a#TEVT#dup", "WS#ws-a#TEVT#other"]


def test_another_workspaces_event_is_404(queue):
    bulk([event(messageId="mine")])
    drain(queue)
    assert read_back("mine")[0] == 200
    status, _, body = read_back("mine", workspace="ws-b")
    assert (status, body["code"]) == (404, "NOT_FOUND")
    assert read_back("never-sent")[0] == 404


# ---------------------------------------------------------------- track


def track(body: Any = None, *, raw: str | None = None, workspace: str = "ws-a", plan: str = "pro"):
    kwargs: dict[str, Any] = {"raw_body": raw} if raw is not None else {"body": body}
    return invoke(TRACK, api_event("track", workspace=workspace, plan=plan, **kwargs))


def test_track_stores_one_event_at_once_with_a_ttl(queue):
    status, _, body = track(event(5, messageId="one"))
    assert (status, body) == (200, {"status": "ok", "messageId": "one"})
    assert read_back("one")[2]["properties"] == {"n": 5}  # no worker needed
    status, _, again = track(event(6, messageId="one"))
    assert (status, again) == (200, {"status": "ok", "messageId": "one"})
    assert read_back("one")[2]["properties"] == {"n": 5}  # the first copy stays
    item = clients.dynamodb().get_item(
        TableName="DomainTable", Key={"pk": {"S": "WS#ws-a#TEVT#one"}, "sk": {"S": "EVENT"}}
    )
    retention = int(item["Item"]["expires_at"]["N"]) - time.time()
    assert 30 * 24 * 3600 - 60 < retention <= 30 * 24 * 3600
    generated = track(event(7))[2]["messageId"]
    assert uuid.UUID(generated).version == 4


@pytest.mark.parametrize("raw", ['{"event": "x"}', "[]", '"text"'])
def test_an_invalid_single_event_is_400_invalid_event(queue, raw):
    status, _, body = track(raw=raw)
    assert (status, body["code"], body["error"]) == (400, "INVALID_EVENT", "Invalid event format.")
    assert body["details"][0]["field"] == "body"


# ---------------------------------------------------------------- rate limits


def test_every_authenticated_response_carries_rate_limit_headers(queue):
    for status, headers, _ in (
        bulk([event()]),
        bulk(raw="[]"),  # 400
        read_back("missing"),  # 404
        invoke(LIMITS, api_event("batch_limits")),
    ):
        assert status in (200, 400, 404)
        assert headers["RateLimit-Limit"] == "50"
        assert int(headers["RateLimit-Remaining"]) >= 0 and int(headers["RateLimit-Reset"]) >= 0


def test_a_tight_plan_gets_429_with_retry_after_from_its_bucket(queue, still):
    answers = [track(event(n), workspace="ws-free", plan="free") for n in range(10)]  # burst 10
    assert [a[0] for a in answers] == [200] * 10
    assert [int(a[1]["RateLimit-Remaining"]) for a in answers][-1] == 0
    status, headers, body = track(event(99, messageId="late"), workspace="ws-free", plan="free")
    assert status == 429
    assert body["error"] == "Rate limit exceeded. Please retry later." and body["code"] == "RATE_LIMITED"
    assert int(headers["Retry-After"]) >= 1
    assert headers["RateLimit-Limit"] == "5" and headers["RateLimit-Remaining"] == "0"
    assert int(headers["RateLimit-Reset"]) >= 1
    late = clients.dynamodb().get_item(
        TableName="DomainTable", Key={"pk": {"S": "WS#ws-free#TEVT#late"}, "sk": {"S": "EVENT"}}
    )
    assert "Item" not in late  # refused: nothing stored
    assert read_back("late", workspace="ws-free")[0] == 429  # reading is a request too
    # Another workspace on the same plan has its own bucket.
    assert track(event(), workspace="ws-free-2", plan="free")[0] == 200


def test_the_events_budget_counts_events_and_names_itself(queue, still):
    # free: 100 events/s. One request of 150 is let through from a full bucket, then it waits.
    status, _, _ = bulk([event(n) for n in range(150)], workspace="ws-ev", plan="free")
    assert status == 200
    status, headers, body = bulk([event()], workspace="ws-ev", plan="free")
    assert (status, body["code"]) == (429, "RATE_LIMITED")
    assert headers["RateLimit-Limit"] == "100" and int(headers["Retry-After"]) >= 1
    assert body["details"] == [{"field": "events", "error": "over the plan's 100 events per second"}]


def test_batch_limits_report_the_callers_plan(queue):
    status, _, body = invoke(LIMITS, api_event("batch_limits", plan="team"))
    assert status == 200
    assert body["plan"] == "team"
    assert body["rateLimits"] == {"requestsPerSecond": 200, "requestBurst": 400, "trackedEventsPerSecond": 10_000}
    assert "/v1/bulk-track" in body["allowedPaths"] and "/v1/track" in body["allowedPaths"]


def test_operations_inside_a_batch_spend_one_request_not_one_each(queue, still):
    operations = [{"id": f"op{n}", "method": "POST", "path": "/v1/track", "body": event(n)} for n in range(20)]
    status, headers, body = invoke(
        BATCH, api_event("batch", body={"operations": operations}, plan="free", workspace="ws-op")
    )
    assert status == 200, body
    assert [r["status"] for r in body["results"]] == [200] * 20
    assert headers["RateLimit-Remaining"] == "9"


def test_a_failing_budget_store_lets_requests_through(queue, monkeypatch):
    from batchops.dal import rate_limits
    from batchops.errors import StorageError

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise StorageError("DynamoDB is unavailable")

    monkeypatch.setattr(rate_limits, "_take", broken)
    status, headers, body = invoke(LIMITS, api_event("batch_limits"))
    assert status == 200 and body["plan"] == "pro"
    assert "RateLimit-Limit" not in headers


def test_a_gzip_file_sent_as_application_gzip_is_415(queue):
    # Content-Type names the body's media type once inflated: send application/json with
    # Content-Encoding: gzip.
    status, _, body = bulk(raw=gzipped([event()]), **{"Content-Type": "application/gzip"})
    assert (status, body["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")
