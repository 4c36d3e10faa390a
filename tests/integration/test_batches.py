"""Batches surface (seed 002) under moto: the endpoint functions, the job workers draining the real
queues against a real receiver on 127.0.0.1, the window, priorities, retries, progress events,
completion, cancel, retry, results, quotas and the sweeper."""

from __future__ import annotations

import base64
import csv
import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import openpyxl
import pytest
from pypdf import PdfReader

from batchops.dal import keys
from batchops.dal.items import serialize
from batchops.services import batch_engine, batch_worker
from batchops.settings import get_settings, reset_settings
from tests.job_endpoint import JobEndpoints, Reply, job_endpoints
from tests.support import api_event, invoke, load_function, sqs_event


@pytest.fixture(autouse=True)
def _wired(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Receivers on 127.0.0.1 are allowed only in local mode (the SSRF rules).
    monkeypatch.setenv("BATCHOPS_LOCAL_MODE", "true")
    client = boto3.client("sqs", region_name="us-east-1")
    for variable, queue in (
        ("BATCHOPS_BATCH_JOB_QUEUE_URL", "BatchJobQueue"),
        ("BATCHOPS_BATCH_URGENT_JOB_QUEUE_URL", "BatchUrgentJobQueue"),
        ("BATCHOPS_WEBHOOK_QUEUE_URL", "WebhookQueue"),
        ("BATCHOPS_RUN_QUEUE_URL", "RunQueue"),
    ):
        monkeypatch.setenv(variable, client.get_queue_url(QueueName=queue)["QueueUrl"])
    monkeypatch.setenv("BATCHOPS_EXPORTS_BUCKET", "exportsbucket")
    reset_settings()
    yield
    reset_settings()


@pytest.fixture
def endpoints() -> Iterator[JobEndpoints]:
    with job_endpoints() as found:
        yield found


def sqs() -> Any:
    return boto3.client("sqs", region_name="us-east-1")


def call(name: str, plan: str = "pro", workspace: str = "ws-a", **parts: Any) -> tuple[int, dict[str, str], Any]:
    return invoke(load_function(name), api_event(name, plan=plan, workspace=workspace, **parts))


def http_job(job_id: str, url: str, body: Any = None) -> dict[str, Any]:
    return {"id": job_id, "type": "http", "config": {"url": url, "body": body if body is not None else {"job": job_id}}}


def create(jobs: list[dict[str, Any]], plan: str = "pro", workspace: str = "ws-a", **fields: Any) -> dict[str, Any]:
    status, _, body = call("create_batch", plan=plan, workspace=workspace, body={"name": "b", "jobs": jobs, **fields})
    assert status == 201, body
    assert body["success"] is True
    return body["data"]


def drain(queue: str = "BatchJobQueue", *, fixture: str = "batch_job_worker", rounds: int = 200) -> int:
    """Run the worker over the queue's visible messages until none is left; returns how many."""
    url = get_settings().batch_job_queue_url if queue == "BatchJobQueue" else get_settings().batch_urgent_job_queue_url
    worker = load_function(fixture)
    handled = 0
    for _ in range(rounds):
        got = (
            sqs()
            .receive_message(QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["ApproximateReceiveCount"])
            .get("Messages", [])
        )
        if not got:
            return handled
        result = worker.lambda_handler(sqs_event(fixture, got), _Context())
        for message in got:
            if not any(f["itemIdentifier"] == message["MessageId"] for f in result["batchItemFailures"]):
                sqs().delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            else:  # a retry: make it visible again at once for the test
                sqs().change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        handled += len(got)
    raise AssertionError("queue did not drain")


class _Context:
    function_name = "BatchJobWorkerFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:BatchJobWorkerFunction"
    aws_request_id = "req"
    log_group_name = "g"
    log_stream_name = "s"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


def webhook_bodies() -> list[dict[str, Any]]:
    url = get_settings().webhook_queue_url
    out = []
    while True:
        got = sqs().receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return out
        for message in got:
            out.append(json.loads(message["Body"]))
            sqs().delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def events_of(workspace: str = "ws-a") -> list[dict[str, Any]]:
    """The payloads of every delivery emitted so far (read from the delivery items)."""
    table = boto3.client("dynamodb", region_name="us-east-1")
    found = []
    for page in table.get_paginator("scan").paginate(TableName=get_settings().table_name):
        for item in page["Items"]:
            if item.get("type", {}).get("S") == "webhook_delivery":
                found.append(json.loads(item["payload_json"]["S"]))
    return found


def get(batch_id: str, **query: str) -> dict[str, Any]:
    status, _, body = call("get_batch", path_params={"batch_id": batch_id}, query=query or None)
    assert status == 200, body
    return body["data"]


# ---------------------------------------------------------------- creating
def test_create_answers_as_the_seed_and_queues_only_the_window(endpoints: JobEndpoints) -> None:
    url = endpoints.url("/ok")
    data = create(
        [http_job(f"j{i}", url) for i in range(7)],
        priority="medium",
        options={"max_parallel": 3, "notification": {"webhook": endpoints.url("/hook")}},
    )
    assert data["status"] == "queued" and data["priority"] == "medium"
    assert data["jobs"] == {
        "total": 7,
        "queued": 7,
        "running": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
        "timed_out": 0,
    }
    assert data["webhook_url"] == endpoints.url("/hook")
    assert data["estimated_completion"] is None  # no recorded durations yet
    assert data["signing_secret"].startswith("whsec_")
    attributes = sqs().get_queue_attributes(
        QueueUrl=get_settings().batch_job_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert int(attributes["Attributes"]["ApproximateNumberOfMessages"]) == 3


@pytest.mark.parametrize(
    ("job", "code"),
    [
        ({"id": "a", "type": "no-such-job", "config": {}}, "INVALID_JOB_CONFIG"),
        ({"id": "a", "type": "http", "config": {"method": "POST"}}, "INVALID_JOB_CONFIG"),
        ({"id": "a", "type": "http", "config": {"url": "http://169.254.169.254/latest"}}, "UNSAFE_URL"),
        ({"id": "a", "type": "operation", "config": {"method": "GET", "path": "/v1/events"}}, "INVALID_JOB_CONFIG"),
    ],
    ids=["unknown-type", "http-without-url", "metadata-url", "operation-bad-method"],
)
def test_bad_jobs_are_422_with_the_index_and_nothing_is_created(job: dict[str, Any], code: str) -> None:
    jobs = [http_job("ok", "https://example.com/x"), job]
    status, _, body = call("create_batch", body={"name": "b", "jobs": jobs})
    assert status == 422 and body["code"] == code, body
    assert body["details"][0]["index"] == 1
    _, _, listed = call("list_batches")
    assert listed["data"] == []


def test_duplicate_job_ids_are_invalid_job_config() -> None:
    jobs = [http_job("same", "https://example.com/a"), http_job("same", "https://example.com/b")]
    status, _, body = call("create_batch", body={"name": "b", "jobs": jobs})
    assert (status, body["code"]) == (422, "INVALID_JOB_CONFIG")


def test_plan_limits_size_and_parallelism_before_quotas() -> None:
    six = [http_job(f"j{i}", "https://example.com/x") for i in range(6)]
    status, _, body = call("create_batch", plan="free", body={"name": "b", "jobs": six})
    assert (status, body["code"]) == (422, "BATCH_SIZE_EXCEEDED")
    two = six[:2]
    status, _, body = call("create_batch", plan="free", body={"name": "b", "jobs": two, "options": {"max_parallel": 6}})
    assert (status, body["code"]) == (422, "INSUFFICIENT_RESOURCES")


def test_free_plan_quotas_concurrent_then_daily(endpoints: JobEndpoints) -> None:
    job = [http_job("j", endpoints.url("/ok"))]
    first = create(job, plan="free")
    status, headers, body = call("create_batch", plan="free", body={"name": "b", "jobs": job})
    assert (status, body["code"]) == (429, "QUOTA_EXCEEDED")
    assert int(headers["Retry-After"]) >= 1
    # A validation failure while at the quota is still a 422, and counts toward nothing.
    status, _, body = call("create_batch", plan="free", body={"name": "b", "jobs": job * 6})
    assert status == 422
    drain()
    assert get(first["batch_id"])["status"] == "completed"
    create(job, plan="free")
    drain()
    create(job, plan="free")
    drain()
    status, headers, body = call("create_batch", plan="free", body={"name": "b", "jobs": job})
    assert (status, body["code"]) == (429, "QUOTA_EXCEEDED")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert 1 <= int(headers["Retry-After"]) <= (tomorrow - datetime.now(UTC)).total_seconds() + 1


# ---------------------------------------------------------------- running
def test_the_window_holds_and_every_job_completes_with_progress_once(endpoints: JobEndpoints) -> None:
    url = endpoints.url("/ok")
    endpoints.script("/ok", Reply(200, {"score": 2, "ok": True}))
    hook = {"notification": {"webhook": endpoints.url("/hook")}}
    data = create([http_job(f"j{i}", url) for i in range(8)], options={"max_parallel": 3, **hook})
    batch_id = data["batch_id"]
    endpoints.verify_with("/ok", data["signing_secret"])
    # The window: never more than 3 jobs queued or running, checked after every message.
    worker = load_function("batch_job_worker")
    url_q = get_settings().batch_job_queue_url
    for _ in range(100):
        got = sqs().receive_message(QueueUrl=url_q, MaxNumberOfMessages=1).get("Messages", [])
        if not got:
            break
        worker.lambda_handler(sqs_event("batch_job_worker", got), _Context())
        sqs().delete_message(QueueUrl=url_q, ReceiptHandle=got[0]["ReceiptHandle"])
        view = get(batch_id)
        assert view["jobs"]["running"] + _queued_on_sqs(batch_id) <= 3
    view = get(batch_id, include_jobs="true")
    assert view["status"] == "completed" and view["progress"]["percentage"] == 100
    assert all(call.verified for call in endpoints.calls_to("/ok"))
    assert len(endpoints.calls_to("/ok")) == 8
    assert view["resource_usage"]["invocations"] == 8
    assert view["resource_usage"]["credits_used"] == 8  # each job under a second rounds up to 1
    events = [e for e in events_of() if e["batch_id"] == batch_id]
    kinds = [e["event"] for e in events]
    assert kinds.count("batch.created") == 1 and kinds.count("batch.started") == 1
    assert kinds.count("batch.job_completed") == 8 and kinds.count("batch.completed") == 1
    assert sorted(e["data"]["progress"]["percentage"] for e in events if e["event"] == "batch.progress") == [25, 50, 75]


def _queued_on_sqs(batch_id: str) -> int:
    table = boto3.client("dynamodb", region_name="us-east-1")
    pk = keys.batch("ws-a", batch_id)["pk"]
    items = table.query(
        TableName=get_settings().table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues=serialize({":pk": pk}),
    )["Items"]
    return sum(1 for i in items if i.get("status", {}).get("S") == "queued" and i["sk"]["S"].startswith("JOB#"))


def test_a_duplicate_delivery_neither_runs_nor_counts_twice(endpoints: JobEndpoints) -> None:
    data = create([http_job("only", endpoints.url("/ok"))])
    url_q = get_settings().batch_job_queue_url
    got = sqs().receive_message(QueueUrl=url_q, MaxNumberOfMessages=1)["Messages"]
    worker = load_function("batch_job_worker")
    worker.lambda_handler(sqs_event("batch_job_worker", got), _Context())
    worker.lambda_handler(sqs_event("batch_job_worker", got), _Context())
    assert len(endpoints.calls_to("/ok")) == 1
    view = get(data["batch_id"])
    assert view["jobs"]["completed"] == 1 and view["status"] == "completed"


def test_retry_failed_retries_until_max_retries_then_fails_the_batch(endpoints: JobEndpoints) -> None:
    endpoints.script("/flaky", Reply(500, {"error": "boom"}))
    endpoints.script("/ok", Reply(200, {"v": 1}))
    data = create(
        [http_job("bad", endpoints.url("/flaky")), http_job("good", endpoints.url("/ok"))],
        options={"retry_failed": True, "max_retries": 2},
    )
    drain()
    view = get(data["batch_id"], include_jobs="true")
    assert view["status"] == "failed"
    bad = next(j for j in view["individual_jobs"] if j["id"] == "bad")
    assert bad["status"] == "failed" and bad["attempts"] == 3
    assert len(endpoints.calls_to("/flaky")) == 3
    assert view["progress"]["failed_jobs"] == ["bad"]


def test_urgent_jobs_use_their_own_queue(endpoints: JobEndpoints) -> None:
    url = endpoints.url("/ok")
    backlog = create([http_job(f"low{i}", url) for i in range(5)], priority="low", options={"max_parallel": 5})
    urgent = create([http_job("now", url)], priority="urgent")
    # Only the urgent worker runs: the urgent batch completes while the low backlog waits.
    assert drain("BatchUrgentJobQueue", fixture="batch_urgent_job_worker") == 1
    assert get(urgent["batch_id"])["status"] == "completed"
    assert get(backlog["batch_id"])["status"] == "queued"
    assert [c.body for c in endpoints.calls_to("/ok")] == [{"job": "now"}]


def test_operation_and_registered_jobs(endpoints: JobEndpoints) -> None:
    status, _, job = call("create_job", body={"name": "analyse", "endpoint_url": endpoints.url("/registered")})
    assert status == 201, job
    endpoints.script("/registered", Reply(200, {"quality_score": 8.5}))
    endpoints.verify_with("/registered", job["signing_secret"])
    operation = {
        "method": "POST",
        "path": "/v1/jobs",
        "body": {"name": "made-by-op", "endpoint_url": "https://example.com/h"},
    }
    data = create(
        [
            {"id": "reg", "type": "analyse", "config": {"project": "frontend-app"}},
            {"id": "op", "type": "operation", "config": operation},
        ]
    )
    drain()
    view = get(data["batch_id"], include_jobs="true")
    assert view["status"] == "completed", [j["error"] for j in view["individual_jobs"]]
    (received,) = endpoints.calls_to("/registered")
    assert received.verified and received.body["payload"] == {"project": "frontend-app"}
    assert received.body["attempt"] == 1
    status, _, results = call("get_batch_results", path_params={"batch_id": data["batch_id"]})
    by_id = {j["id"]: j for j in results["data"]["job_results"]}
    assert by_id["reg"]["result"] == {"quality_score": 8.5}
    assert by_id["op"]["status"] == "completed" and by_id["op"]["result"]["name"] == "made-by-op"


# ---------------------------------------------------------------- cancel, retry
def test_cancel_mid_run_stops_pending_jobs_and_a_repeated_cancel_answers_the_same(endpoints: JobEndpoints) -> None:
    data = create(
        [http_job(f"j{i}", endpoints.url("/ok")) for i in range(5)],
        options={"max_parallel": 1, "notification": {"webhook": endpoints.url("/hook")}},
    )
    url_q = get_settings().batch_job_queue_url
    got = sqs().receive_message(QueueUrl=url_q, MaxNumberOfMessages=1)["Messages"]
    load_function("batch_job_worker").lambda_handler(sqs_event("batch_job_worker", got), _Context())
    sqs().delete_message(QueueUrl=url_q, ReceiptHandle=got[0]["ReceiptHandle"])
    status, _, body = call("cancel_batch", path_params={"batch_id": data["batch_id"]}, body={"reason": "changed"})
    assert status == 200, body
    assert body["data"]["status"] == "cancelled"
    assert body["data"]["jobs_completed"] == 1 and body["data"]["jobs_cancelled"] == 4
    assert body["data"]["partial_results_available"] is True
    drain()
    assert len(endpoints.calls_to("/ok")) == 1  # nothing started after the cancel
    first = body["data"]
    # A repeated DELETE (a client retrying a cancel it did not hear back from) gets the same answer.
    status, _, body = call("cancel_batch", path_params={"batch_id": data["batch_id"]})
    assert (status, body["data"]) == (200, first)
    assert [e["event"] for e in events_of() if e["batch_id"] == data["batch_id"]].count("batch.cancelled") == 1


def test_retry_makes_a_linked_batch_of_the_failed_jobs(endpoints: JobEndpoints) -> None:
    endpoints.script("/bad", Reply(400, {"error": "no"}))
    data = create([http_job("good", endpoints.url("/ok")), http_job("bad", endpoints.url("/bad"))])
    status, _, body = call("retry_batch", path_params={"batch_id": data["batch_id"]}, body={})
    assert (status, body["code"]) == (409, "BATCH_NOT_FINISHED")
    drain()
    status, _, body = call("retry_batch", path_params={"batch_id": data["batch_id"]}, body={"job_ids": ["good"]})
    assert (status, body["code"]) == (409, "JOB_SUCCEEDED")
    endpoints.script("/bad", Reply(200, {"fixed": True}))
    status, _, body = call("retry_batch", path_params={"batch_id": data["batch_id"]}, body={"max_retries": 1})
    assert status == 201, body
    assert body["data"]["jobs_retried"] == 1 and body["data"]["batch_id"] == data["batch_id"]
    new_id = body["data"]["new_batch_id"]
    drain()
    new = get(new_id)
    assert new["status"] == "completed" and new["retry_of"] == data["batch_id"]
    assert get(data["batch_id"])["retried_by"] == [new_id]


# ---------------------------------------------------------------- results, list, isolation
def test_results_in_every_format(endpoints: JobEndpoints) -> None:
    endpoints.script("/ok", Reply(200, {"metrics": {"score": 4}, "files": 10}))
    data = create([http_job(f"j{i}", endpoints.url("/ok")) for i in range(3)])
    drain()
    path = {"batch_id": data["batch_id"]}
    status, _, body = call("get_batch_results", path_params=path)
    assert status == 200
    results = body["data"]
    assert results["summary"]["jobs_total"] == 3 and results["summary"]["partial"] is False
    assert results["aggregated_metrics"]["metrics.score"] == {"count": 3, "average": 4.0, "min": 4, "max": 4, "sum": 12}
    assert set(results["download_links"]) == {"full_report", "excel_summary", "csv_summary", "raw_data"}
    status, headers, text = call("get_batch_results", path_params=path, query={"format": "csv", "jobs": "j0,j2"})
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert headers["Content-Disposition"] == f'attachment; filename="{data["batch_id"]}.csv"'
    rows = list(csv.reader(io.StringIO(text if isinstance(text, str) else text.decode())))
    assert rows[0][:5] == ["job_id", "type", "status", "duration_ms", "error"]
    assert [r[0] for r in rows[1:]] == ["j0", "j2"]
    # The binary formats leave the handler as base64, as API Gateway wants them.
    workbook = openpyxl.load_workbook(io.BytesIO(results_file(data["batch_id"], "xlsx")), read_only=True)
    assert workbook.active is not None
    assert sorted(row[0] for row in list(workbook.active.iter_rows(values_only=True))[1:]) == ["j0", "j1", "j2"]
    pdf = PdfReader(io.BytesIO(results_file(data["batch_id"], "pdf")))
    assert data["batch_id"] in "".join(page.extract_text() for page in pdf.pages)


def results_file(batch_id: str, fmt: str) -> bytes:
    event = api_event("get_batch_results", path_params={"batch_id": batch_id}, query={"format": fmt})
    result = load_function("get_batch_results").lambda_handler(event, _Context())
    assert result["statusCode"] == 200 and result["isBase64Encoded"] is True, result
    assert result["multiValueHeaders"]["Content-Disposition"] == [f'attachment; filename="{batch_id}.{fmt}"']
    return base64.b64decode(result["body"])


def test_another_workspace_sees_nothing(endpoints: JobEndpoints) -> None:
    data = create([http_job("j", endpoints.url("/ok"))])
    for name in ("get_batch", "get_batch_results", "cancel_batch"):
        status, _, body = call(name, workspace="ws-b", path_params={"batch_id": data["batch_id"]})
        assert (status, body["code"]) == (404, "BATCH_NOT_FOUND"), name
    _, _, listed = call("list_batches", workspace="ws-b")
    assert listed["data"] == [] and listed["pagination"]["total_items"] == 0


def test_the_signing_secret_is_shown_once_and_never_read_back(endpoints: JobEndpoints) -> None:
    """OWASP API3 (docs/threat-model.md): the secret that signs a batch's calls and webhooks is in
    the create answer only; no read of the batch, its list or its results carries it."""
    data = create([http_job("j", endpoints.url("/ok"))])
    secret = data["signing_secret"]
    assert secret.startswith("whsec_")
    drain()
    path = {"batch_id": data["batch_id"]}
    reads = [
        call("get_batch", path_params=path),
        call("list_batches"),
        call("get_batch_results", path_params=path),
        call("get_batch_results", path_params=path, query={"format": "csv"}),
    ]
    for status, _, body in reads:
        assert status == 200
        assert secret not in (body if isinstance(body, str) else json.dumps(body))
        assert "signing_secret" not in json.dumps(body)


def test_list_filters_sorts_and_pages(endpoints: JobEndpoints) -> None:
    url = endpoints.url("/ok")
    for name, priority in (("b", "low"), ("a", "urgent"), ("c", "high")):
        status, _, _ = call(
            "create_batch", body={"name": name, "priority": priority, "type": "report", "jobs": [http_job("j", url)]}
        )
        assert status == 201
    _, _, body = call("list_batches", query={"sort": "-priority", "per_page": "2"})
    assert [b["priority"] for b in body["data"]] == ["urgent", "high"]
    assert body["pagination"] == {"page": 1, "per_page": 2, "total_pages": 2, "total_items": 3}
    _, _, body = call("list_batches", query={"sort": "name", "priority": "low"})
    assert [b["name"] for b in body["data"]] == ["b"]
    status, _, body = call("list_batches", query={"per_page": "101"})
    assert status == 422


# ---------------------------------------------------------------- sweeper
def test_the_sweeper_times_out_a_batch_past_its_timeout(
    endpoints: JobEndpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = create(
        [http_job(f"j{i}", endpoints.url("/ok")) for i in range(3)], options={"max_parallel": 1, "timeout_minutes": 0.1}
    )
    later = datetime.now(UTC) + timedelta(minutes=1)
    monkeypatch.setattr(batch_engine, "now_utc", lambda: later)
    swept = batch_worker.sweep_batches()
    assert swept["timed_out"] == 1
    view = get(data["batch_id"], include_jobs="true")
    assert view["status"] == "timed_out" and view["error"]["code"] == "TIMEOUT_EXCEEDED"
    assert {j["status"] for j in view["individual_jobs"]} == {"cancelled"}
    drain()
    assert endpoints.calls_to("/ok") == []


def test_concurrent_workers_keep_the_window_and_send_each_threshold_once(endpoints: JobEndpoints) -> None:
    endpoints.script("/slow", Reply(200, {"n": 1}, delay=0.05))
    hook = {"notification": {"webhook": endpoints.url("/hook")}}
    data = create([http_job(f"j{i}", endpoints.url("/slow")) for i in range(12)], options={"max_parallel": 4, **hook})
    threads = [threading.Thread(target=drain) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    drain()  # whatever a thread left when the queue looked empty to it
    view = get(data["batch_id"])
    assert view["status"] == "completed" and view["jobs"]["completed"] == 12
    # The receiver counted the calls it was serving at once: six workers, a window of four.
    assert 2 <= endpoints.peak("/slow") <= 4
    assert len(endpoints.calls_to("/slow")) == 12
    events = [e for e in events_of() if e["batch_id"] == data["batch_id"]]
    progress = sorted(e["data"]["progress"]["percentage"] for e in events if e["event"] == "batch.progress")
    assert progress == [25, 50, 75]
    assert [e["event"] for e in events].count("batch.completed") == 1


def test_the_sweeper_repairs_a_job_whose_worker_died(endpoints: JobEndpoints, monkeypatch: pytest.MonkeyPatch) -> None:
    data = create([http_job("j", endpoints.url("/ok"))], options={"retry_failed": True, "max_retries": 1})
    url_q = get_settings().batch_job_queue_url
    (lost,) = sqs().receive_message(QueueUrl=url_q, MaxNumberOfMessages=1)["Messages"]
    sqs().delete_message(QueueUrl=url_q, ReceiptHandle=lost["ReceiptHandle"])
    # The worker claimed the job and died mid-call: running, attempt 1, its message gone.
    table = boto3.client("dynamodb", region_name="us-east-1")
    soon = (datetime.now(UTC) + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    table.update_item(
        TableName=get_settings().table_name,
        Key=serialize(keys.batch_job("ws-a", data["batch_id"], 0)),
        UpdateExpression="SET #s = :running, attempts = :one, lease_until = :soon, check_at = :soon",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues=serialize({":running": "running", ":one": 1, ":soon": soon}),
    )
    table.update_item(
        TableName=get_settings().table_name,
        Key=serialize(keys.batch("ws-a", data["batch_id"])),
        UpdateExpression="ADD jc_running :one, jc_queued :minus",
        ExpressionAttributeValues=serialize({":one": 1, ":minus": -1}),
    )
    later = datetime.now(UTC) + timedelta(minutes=6)
    monkeypatch.setattr(batch_engine, "now_utc", lambda: later)
    assert batch_worker.sweep_batches() == {"timed_out": 0, "resent": 1}
    drain()
    view = get(data["batch_id"], include_jobs="true")
    assert view["status"] == "completed"
    assert view["individual_jobs"][0]["attempts"] == 2
    assert len(endpoints.calls_to("/ok")) == 1
