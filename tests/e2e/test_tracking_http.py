"""Tracking (seed 004) over real HTTP through the local stack: curl sending a gzipped file, httpx
for the size bounds, 401, 429 with Retry-After on a tight plan, de-duplication across requests,
read-back by messageId, isolation, and a large body sent through the presigned S3 upload. The
stack's SQS pollers run the tracking workers, so stored events are polled for with a deadline."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import KEY_A, KEY_B, KEY_TIGHT
from tests.e2e.harness import RunningStack, wait_for

TOO_LARGE = {"error": "Payload exceeds maximum allowed size (10MB).", "code": "PAYLOAD_TOO_LARGE"}
UNAUTHORIZED = {"error": "Unauthorized", "code": "UNAUTHORIZED"}


def client(stack: RunningStack, key: str | None = KEY_A) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=stack.api, headers=headers, timeout=60)


def event(n: int, **extra: Any) -> dict[str, Any]:
    return {"event": "signup", "properties": {"n": n}, "timestamp": "2025-10-29T22:00:00.778Z", **extra}


def stored(http: httpx.Client, message_id: str) -> dict[str, Any] | None:
    response = http.get(f"/v1/track/events/{message_id}")
    assert response.status_code in (200, 404), response.text
    return response.json() if response.status_code == 200 else None


def tracking_queue_empty(stack: RunningStack) -> bool:
    sqs = stack.client("sqs")
    url = sqs.get_queue_url(QueueName="TrackingQueue")["QueueUrl"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return all(v == "0" for v in attributes.values())


def test_curl_sends_a_gzipped_file_and_every_event_is_stored(stack, tmp_path):
    run = uuid.uuid4().hex[:8]
    events = [event(n, messageId=f"curl-{run}-{n}") for n in range(500)] + [event(500)]
    body = tmp_path / "events.json.gz"
    body.write_bytes(gzip.compress(json.dumps(events).encode()))
    done = subprocess.run(
        [
            "curl", "-s", "-i", "-X", "POST", f"{stack.api}/v1/bulk-track",
            "-H", f"Authorization: Bearer {KEY_A}",
            "-H", "Content-Type: application/json",
            "-H", "Content-Encoding: gzip",
            "--data-binary", f"@{body}",
        ],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    head, _, payload = done.stdout.replace("\r\n", "\n").partition("\n\n")
    assert head.startswith("HTTP/1.1 200"), done.stdout[:500]
    assert "RateLimit-Limit: 50" in head
    answer = json.loads(payload)
    assert answer["status"] == "ok" and len(answer["messageIds"]) == 501
    assert answer["messageIds"][:500] == [e["messageId"] for e in events[:500]]
    generated = answer["messageIds"][500]
    assert uuid.UUID(generated).version == 4
    with client(stack) as http:
        wait_for(lambda: stored(http, generated), timeout=60, what="the tracking worker to store the events")
        wait_for(lambda: tracking_queue_empty(stack), timeout=60, what="the tracking queue to drain")
        for message_id in answer["messageIds"][::50]:
            got = stored(http, message_id)
            assert got is not None and got["messageId"] == message_id and "receivedAt" in got


def test_the_first_copy_of_a_message_id_is_kept_across_requests(stack):
    message_id = f"dup-{uuid.uuid4().hex[:8]}"
    with client(stack) as http:
        first = http.post("/v1/bulk-track", json=[event(1, messageId=message_id), event(2, messageId=message_id)])
        assert first.status_code == 200 and first.json()["messageIds"] == [message_id, message_id]
        wait_for(lambda: stored(http, message_id), timeout=60, what="the first copy to be stored")
        again = http.post("/v1/bulk-track", json=[event(3, messageId=message_id)])
        assert again.status_code == 200 and again.json()["messageIds"] == [message_id]
        single = http.post("/v1/track", json=event(4, messageId=message_id))
        assert single.json() == {"status": "ok", "messageId": message_id}
        wait_for(lambda: tracking_queue_empty(stack), timeout=60, what="the second request's message to be stored")
        assert stored(http, message_id)["properties"] == {"n": 1}


def test_track_stores_at_once_and_another_workspace_cannot_read_it(stack):
    message_id = f"one-{uuid.uuid4().hex[:8]}"
    with client(stack) as http:
        response = http.post("/v1/track", json=event(7, messageId=message_id, context={"app": "e2e"}))
        assert response.status_code == 200 and response.json() == {"status": "ok", "messageId": message_id}
        got = stored(http, message_id)
        assert got is not None and got["context"] == {"app": "e2e"} and got["properties"] == {"n": 7}
        invalid = http.post("/v1/track", json={"event": "x"})
        assert invalid.status_code == 400 and invalid.json()["code"] == "INVALID_EVENT"
    with client(stack, KEY_B) as other:
        response = other.get(f"/v1/track/events/{message_id}")
        assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"


def test_per_item_errors_and_bad_bodies(stack):
    with client(stack) as http:
        mixed = http.post("/v1/bulk-track", json=[event(0), {"event": "no properties"}])
        assert mixed.status_code == 200
        assert len(mixed.json()["messageIds"]) == 1 and [e["index"] for e in mixed.json()["errors"]] == [1]
        none_valid = http.post("/v1/bulk-track", json=[{"event": "x"}])
        assert none_valid.status_code == 400
        assert none_valid.json()["error"] == "Invalid event format." and none_valid.json()["code"] == "INVALID_EVENT"
        assert http.post("/v1/bulk-track", json=[]).json()["code"] == "INVALID_EVENT"
        malformed = http.post("/v1/bulk-track", content=b"[{", headers={"Content-Type": "application/json"})
        assert (malformed.status_code, malformed.json()["code"]) == (400, "MALFORMED_JSON")
        corrupt = http.post(
            "/v1/bulk-track",
            content=gzip.compress(b"[]")[:-4],
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        assert (corrupt.status_code, corrupt.json()["code"]) == (400, "INVALID_GZIP")
        brotli = http.post(
            "/v1/bulk-track", content=b"\x0b", headers={"Content-Type": "application/json", "Content-Encoding": "br"}
        )
        assert (brotli.status_code, brotli.json()["code"]) == (415, "UNSUPPORTED_ENCODING")


def gzip_bomb(megabytes: int) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as stream:
        zeros = bytes(1024 * 1024)
        for _ in range(megabytes):
            stream.write(zeros)
    return out.getvalue()


def test_a_gzip_bomb_is_413_and_a_body_over_10_mb_too(stack):
    bomb = gzip_bomb(1024)  # 1 GiB of zeros in about 1 MB
    assert len(bomb) < 1_100_000
    with client(stack) as http:
        response = http.post(
            "/v1/bulk-track", content=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
        )
        assert (response.status_code, response.json()) == (413, TOO_LARGE)
        plain = http.post(
            "/v1/bulk-track",
            content=b"[" + b" " * (10 * 1024 * 1024) + b"]",
            headers={"Content-Type": "application/json"},
        )
        assert (plain.status_code, plain.json()) == (413, TOO_LARGE)


@pytest.mark.parametrize("key", [None, "bo_not_a_key_we_issued_000000000000"])
def test_401_before_the_body_is_read(stack, key):
    with client(stack, key) as http:
        response = http.post(
            "/v1/bulk-track",
            content=gzip_bomb(64),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
    assert (response.status_code, response.json()) == (401, UNAUTHORIZED)
    assert "RateLimit-Limit" not in response.headers


def test_a_tight_plan_gets_429_with_retry_after_then_gets_through(stack):
    with client(stack, KEY_TIGHT) as http:
        limits = http.get("/v1/batch/limits").json()
        assert limits["plan"] == "free"
        assert limits["rateLimits"] == {"requestsPerSecond": 5, "requestBurst": 10, "trackedEventsPerSecond": 100}
        # 60 requests over four routes at once (the local stack runs one invocation at a time per
        # function, as one Lambda sandbox would): far more than burst 10 + 5/s while they last.
        routes = ["/v1/batch/limits", "/v1/track/events/none", "/v1/runs", "/v1/jobs"]
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda n: http.get(routes[n % 4]), range(60)))
        refused = [a for a in answers if a.status_code == 429]
        assert refused, [a.status_code for a in answers]
        assert {a.status_code for a in answers} <= {200, 404, 429}
        last = refused[-1]
        assert last.json() == {
            "error": "Rate limit exceeded. Please retry later.",
            "code": "RATE_LIMITED",
            "details": [{"field": "requests", "error": "over the plan's 5 requests per second"}],
        }
        retry_after = int(last.headers["Retry-After"])
        assert retry_after >= 1
        assert last.headers["RateLimit-Limit"] == "5" and last.headers["RateLimit-Remaining"] == "0"
        assert int(last.headers["RateLimit-Reset"]) >= 1
        assert all("RateLimit-Remaining" in a.headers for a in answers)
        # After Retry-After the budget has room again.
        later = wait_for(
            lambda: (r := http.post("/v1/track", json=event(99))).status_code == 200 and r,
            timeout=retry_after + 10,
            interval=0.25,
            what="the budget to refill",
        )
        assert later.status_code == 200
    # Other workspaces have their own budgets.
    with client(stack) as http:
        assert http.get("/v1/batch/limits").status_code == 200


def test_a_body_too_large_for_lambda_goes_through_an_upload(stack):
    run = uuid.uuid4().hex[:8]
    # About 8 MB of JSON: over Lambda's 6 MB request limit, under the seed's 10 MB.
    events = [event(n, messageId=f"up-{run}-{n}", pad="x" * 1_600) for n in range(5_000)]
    raw = json.dumps(events).encode()
    assert 6 * 1024 * 1024 < len(raw) < 10 * 1024 * 1024
    with client(stack) as http:
        direct = http.post("/v1/bulk-track", content=raw, headers={"Content-Type": "application/json"})
        assert direct.status_code == 413  # API Gateway cannot hand it to Lambda
        created = http.post("/v1/bulk-track/uploads")
        assert created.status_code == 201, created.text
        form = created.json()
        upload = httpx.post(
            form["url"],
            data=form["fields"],
            files={form["fileField"]: ("events.json.gz", gzip.compress(raw))},
            timeout=60,
        )
        assert upload.status_code in (200, 201, 204), upload.text
        done = wait_for(
            lambda: (
                (s := http.get(f"/v1/bulk-track/uploads/{form['uploadId']}").json())["status"]
                in ("completed", "failed")
                and s
            ),
            timeout=120,
            interval=0.5,
            what="the upload to be ingested",
        )
        assert (done["status"], done["accepted"], done["rejected"]) == ("completed", 5_000, 0), done
        result = httpx.get(done["resultUrl"], timeout=60).json()
        assert result["status"] == "ok" and result["messageIds"] == [e["messageId"] for e in events]
        wait_for(lambda: stored(http, f"up-{run}-4999"), timeout=120, what="the uploaded events to be stored")
        assert stored(http, f"up-{run}-0")["properties"] == {"n": 0}
    with client(stack, KEY_B) as other:
        assert other.get(f"/v1/bulk-track/uploads/{form['uploadId']}").status_code == 404


def test_the_sdk_tracks_gzipped_and_uploads(stack):
    from batchops_client import BatchopsClient

    run = uuid.uuid4().hex[:8]
    events = [event(n, messageId=f"sdk-{run}-{n}", pad="y" * 500) for n in range(300)]  # ~200 KB: sent gzipped
    with BatchopsClient(KEY_A, stack.api) as sdk:
        answer = sdk.track.bulk(events)
        assert answer["messageIds"] == [e["messageId"] for e in events]
        upload = sdk.track.upload([event(1, messageId=f"sdk-{run}-up"), {"event": "broken"}])
        result = sdk.track.wait_for_upload(upload.upload_id, timeout=120, poll_interval=0.5)
        assert result.message_ids == [f"sdk-{run}-up"] and [e.index for e in result.errors] == [1]
        assert sdk.operations.limits()["plan"] == "pro"
        with client(stack) as http:
            wait_for(lambda: stored(http, f"sdk-{run}-up"), timeout=60, what="the uploaded event")
            wait_for(lambda: stored(http, f"sdk-{run}-299"), timeout=60, what="the bulk events")
        assert sdk.track.get_event(f"sdk-{run}-0")["pad"] == "y" * 500
