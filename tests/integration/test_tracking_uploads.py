"""Bulk-track bodies sent through S3 (POST /v1/bulk-track/uploads) on moto: the presigned form,
the S3 notification on TrackingUploadQueue, the upload worker ingesting the object as bulk-track
would, and the status and result read back; each upload ingested once, whatever is redelivered."""

from __future__ import annotations

import base64
import gzip
import io
import json
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from batchops.settings import reset_settings
from tests.support import LambdaContext, api_event, invoke, load_function, sqs_event

CREATE = load_function("create_tracking_upload")
STATUS = load_function("get_tracking_upload")
UPLOAD_WORKER = load_function("tracking_upload_worker")
TRACK_WORKER = load_function("tracking_worker")
GET_EVENT = load_function("get_tracked_event")
BUCKET = "trackinguploadbucket"


@pytest.fixture(autouse=True)
def queues(aws, monkeypatch) -> dict[str, str]:
    sqs = boto3.client("sqs")
    urls = {name: sqs.get_queue_url(QueueName=name)["QueueUrl"] for name in ("TrackingQueue", "TrackingUploadQueue")}
    monkeypatch.setenv("BATCHOPS_TRACKING_QUEUE_URL", urls["TrackingQueue"])
    monkeypatch.setenv("BATCHOPS_TRACKING_UPLOAD_QUEUE_URL", urls["TrackingUploadQueue"])
    monkeypatch.setenv("BATCHOPS_TRACKING_UPLOAD_BUCKET", BUCKET)
    reset_settings()
    # Setting the bucket's notification sent S3's test event first; the worker must skip it.
    assert ingest_notifications(urls["TrackingUploadQueue"]) == 1
    return urls


def event(n: int, **extra: Any) -> dict[str, Any]:
    return {"event": "import", "properties": {"n": n}, "timestamp": "2025-10-29T22:00:00Z", **extra}


def create(workspace: str = "ws-a", plan: str = "pro") -> dict[str, Any]:
    status, _, body = invoke(CREATE, api_event("create_tracking_upload", workspace=workspace, plan=plan))
    assert status == 201, body
    return body


def upload_status(upload_id: str, workspace: str = "ws-a"):
    return invoke(STATUS, api_event("get_tracking_upload", path_params={"uploadId": upload_id}, workspace=workspace))


def put(created: dict[str, Any], data: bytes) -> None:
    """What the presigned form does (S3 checks its policy; moto does not, see local/README.md)."""
    boto3.client("s3").put_object(Bucket=BUCKET, Key=created["fields"]["key"], Body=data)


def receive(url: str) -> list[dict[str, Any]]:
    got = boto3.client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["ApproximateReceiveCount"]
    )
    return list(got.get("Messages", []))


def ingest_notifications(url: str, *, expect_failures: int = 0) -> int:
    """Run the upload worker over the notifications waiting, one per invocation (BatchSize 1)."""
    handled = 0
    for message in receive(url):
        result = UPLOAD_WORKER.lambda_handler(sqs_event("tracking_upload_worker", [message]), LambdaContext())
        failures = result["batchItemFailures"]
        if not failures:
            boto3.client("sqs").delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        expect_failures -= len(failures)
        handled += 1
    assert expect_failures == 0
    return handled


def store_events(url: str) -> int:
    messages = receive(url)
    if messages:
        assert TRACK_WORKER.lambda_handler(sqs_event("tracking_worker", messages), LambdaContext()) == {
            "batchItemFailures": []
        }
        for message in messages:
            boto3.client("sqs").delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return len(messages)


def result_of(body: dict[str, Any]) -> Any:
    """The result file behind resultUrl (a presigned GET of results/...)."""
    key = urlsplit(body["resultUrl"]).path.lstrip("/").removeprefix(f"{BUCKET}/")
    return json.loads(boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_a_presigned_form_for_one_key_of_at_most_10_mb():
    created = create()
    assert created["status"] == "pending" and created["uploadId"].startswith("upl_")
    assert created["method"] == "POST" and created["fileField"] == "file"
    assert created["maxBytes"] == 10 * 1024 * 1024
    assert created["fields"]["key"] == f"uploads/ws-a/{created['uploadId']}"
    policy = json.loads(base64.b64decode(created["fields"]["policy"]))
    assert ["content-length-range", 1, 10 * 1024 * 1024] in policy["conditions"]
    assert {"key": created["fields"]["key"]} in policy["conditions"]
    assert created["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256"  # SigV4, not the legacy form
    status, _, body = upload_status(created["uploadId"])
    assert (status, body["status"], body["resultUrl"]) == (200, "pending", None)


def test_an_uploaded_gzip_body_is_ingested_like_bulk_track(queues):
    created = create()
    events = [event(0, messageId="u-0"), event(1), {"event": "no properties", "timestamp": "2025-10-29T22:00:00Z"}]
    put(created, gzip.compress(json.dumps(events).encode()))
    assert ingest_notifications(queues["TrackingUploadQueue"]) == 1
    status, _, body = upload_status(created["uploadId"])
    assert status == 200
    assert (body["status"], body["accepted"], body["rejected"], body["error"]) == ("completed", 2, 1, None)
    result = result_of(body)
    assert result["status"] == "ok" and result["messageIds"][0] == "u-0" and len(result["messageIds"]) == 2
    assert [e["index"] for e in result["errors"]] == [2]
    assert store_events(queues["TrackingQueue"]) == 1
    for message_id in result["messageIds"]:
        got = invoke(GET_EVENT, api_event("get_tracked_event", path_params={"messageId": message_id}))
        assert got[0] == 200 and got[2]["event"] == "import"
    # The object is gone once ingested; the result stays for the GET route.
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="uploads/")


def test_each_upload_is_ingested_once_whatever_is_redelivered(queues):
    created = create()
    put(created, json.dumps([event(n) for n in range(5)]).encode())
    [notification] = receive(queues["TrackingUploadQueue"])
    for _ in range(3):  # the same notification delivered three times
        result = UPLOAD_WORKER.lambda_handler(sqs_event("tracking_upload_worker", [notification]), LambdaContext())
        assert result == {"batchItemFailures": []}
    assert store_events(queues["TrackingQueue"]) == 1  # one message of events, not three
    first = upload_status(created["uploadId"])[2]
    # A second object sent with the same form after the first was ingested changes nothing.
    put(created, json.dumps([event(n) for n in range(50)]).encode())
    assert ingest_notifications(queues["TrackingUploadQueue"]) == 1
    assert store_events(queues["TrackingQueue"]) == 0
    assert upload_status(created["uploadId"])[2]["accepted"] == first["accepted"] == 5


def test_an_ingestion_that_crashed_is_finished_with_the_same_ids(queues, monkeypatch):
    from batchops.services import tracking_uploads

    created = create()
    put(created, json.dumps([event(n) for n in range(3)]).encode())
    [notification] = receive(queues["TrackingUploadQueue"])

    def crash(*args: Any) -> None:
        raise RuntimeError("the worker died after queueing the events")

    real_put_json = tracking_uploads.put_json
    monkeypatch.setattr(tracking_uploads, "put_json", crash)
    failed = UPLOAD_WORKER.lambda_handler(sqs_event("tracking_upload_worker", [notification]), LambdaContext())
    assert failed == {"batchItemFailures": [{"itemIdentifier": notification["MessageId"]}]}
    assert upload_status(created["uploadId"])[2]["status"] == "processing"
    monkeypatch.setattr(tracking_uploads, "put_json", real_put_json)  # the worker lives again
    assert UPLOAD_WORKER.lambda_handler(sqs_event("tracking_upload_worker", [notification]), LambdaContext()) == {
        "batchItemFailures": []
    }
    ids = result_of(upload_status(created["uploadId"])[2])["messageIds"]
    queued = [json.loads(m["Body"]) for m in receive(queues["TrackingQueue"])]
    assert len(queued) == 2  # both attempts queued their events...
    assert [[e["messageId"] for e in q["generated"]] for q in queued] == [ids, ids]  # ...under the same ids


def bomb() -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as stream:
        for _ in range(16):
            stream.write(b"[" * (1024 * 1024))
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (bomb(), "PAYLOAD_TOO_LARGE"),
        (b"[" + b" " * (10 * 1024 * 1024) + b"]", "PAYLOAD_TOO_LARGE"),  # over 10 MB as sent
        (b"\x1f\x8b\x08\x00broken", "INVALID_GZIP"),
        (b'[{"event": ', "MALFORMED_JSON"),
        (b'{"not": "an array"}', "INVALID_EVENT"),
        (json.dumps([{"event": "x"}]).encode(), "INVALID_EVENT"),
    ],
    ids=["gzip-bomb", "over-10-mb", "corrupt-gzip", "malformed", "not-an-array", "none-valid"],
)
def test_a_body_bulk_track_would_refuse_fails_the_upload_with_the_same_error(queues, data, code):
    created = create()
    put(created, data)
    assert ingest_notifications(queues["TrackingUploadQueue"]) == 1
    body = upload_status(created["uploadId"])[2]
    assert (body["status"], body["error"]["code"]) == ("failed", code)
    assert result_of(body)["code"] == code
    assert store_events(queues["TrackingQueue"]) == 0


def test_an_upload_over_the_events_budget_waits_and_then_completes(queues, monkeypatch):
    from batchops.services import rate_limits, tracking_uploads

    now = [1_800_000_000 * 1_000_000]
    monkeypatch.setattr(rate_limits, "clock_us", lambda: now[0])
    waits: list[int] = []
    real_defer = tracking_uploads.defer
    monkeypatch.setattr(
        tracking_uploads, "defer", lambda receipt, seconds: (waits.append(seconds), real_defer(receipt, seconds))
    )
    first, second = create(workspace="ws-free", plan="free"), create(workspace="ws-free", plan="free")
    put(first, json.dumps([event(n) for n in range(300)]).encode())  # 3 s of a 100/s budget
    assert ingest_notifications(queues["TrackingUploadQueue"]) == 1
    put(second, json.dumps([event(n) for n in range(10)]).encode())
    [notification] = receive(queues["TrackingUploadQueue"])
    handle = UPLOAD_WORKER.lambda_handler
    assert handle(sqs_event("tracking_upload_worker", [notification]), LambdaContext()) == {
        "batchItemFailures": [{"itemIdentifier": notification["MessageId"]}]
    }
    assert waits == [3]  # room for 10 more events 2.1 s later, in whole seconds rounded up
    assert receive(queues["TrackingUploadQueue"]) == []  # hidden until then
    assert upload_status(second["uploadId"], workspace="ws-free")[2]["status"] == "processing"
    # Time passes; SQS shows the message again (done here at once rather than waiting 3 s).
    now[0] += 3 * 1_000_000
    boto3.client("sqs").change_message_visibility(
        QueueUrl=queues["TrackingUploadQueue"], ReceiptHandle=notification["ReceiptHandle"], VisibilityTimeout=0
    )
    [again] = receive(queues["TrackingUploadQueue"])
    assert handle(sqs_event("tracking_upload_worker", [again]), LambdaContext()) == {"batchItemFailures": []}
    body = upload_status(second["uploadId"], workspace="ws-free")[2]
    assert (body["status"], body["accepted"]) == ("completed", 10)


def test_another_workspaces_upload_is_404():
    created = create()
    assert upload_status(created["uploadId"], workspace="ws-b")[0] == 404
    assert upload_status("upl_unknown")[0] == 404
