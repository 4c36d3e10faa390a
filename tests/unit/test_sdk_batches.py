"""The SDK's batch and webhook calls and the `batchops batch|webhook` commands, against a scripted
transport: paths, methods, queries and bodies; the envelope unwrapped; file results as bytes, a 303
followed to S3 without the API key; waiting on a fake clock."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import httpx
import pytest

from batchops_client import cli
from batchops_client.sdk import ApiError, BatchopsClient


class Clock:
    """A monotonic clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def scripted(*replies: httpx.Response) -> tuple[BatchopsClient, list[httpx.Request], Clock]:
    seen: list[httpx.Request] = []
    queue = list(replies)
    clock = Clock()

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0)

    client = BatchopsClient(
        "http://api.test", "bo_test", transport=httpx.MockTransport(handle), sleep=clock.sleep, clock=clock
    )
    return client, seen, clock


def ok(data, status: int = 200, **extra) -> httpx.Response:
    return httpx.Response(status, json={"success": True, "data": data, **extra})


def query(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.url.query.decode())


def sent_json(request: httpx.Request):
    return json.loads(request.content)


JOBS = [{"id": "job_1", "type": "analysis", "config": {"rules": ["complexity"]}}]
CREATED = {"batch_id": "batch_abc", "name": "Q3", "status": "queued", "signing_secret": "whsec_x"}


def batch(status: str, percentage: int) -> dict:
    return {"batch_id": "batch_abc", "status": status, "progress": {"percentage": percentage}}


# ---------------------------------------------------------------- SDK


def test_create_batch_posts_only_the_given_fields_and_unwraps_the_envelope():
    client, seen, _ = scripted(ok(CREATED, 201))
    assert client.create_batch("Q3", JOBS, priority="high", options={"max_parallel": 5}) == CREATED
    (request,) = seen
    assert (request.method, request.url.path) == ("POST", "/v1/batches")
    assert request.headers["Authorization"] == "Bearer bo_test"
    assert sent_json(request) == {"name": "Q3", "jobs": JOBS, "priority": "high", "options": {"max_parallel": 5}}


def test_the_batches_namespace_speaks_the_seed_names():
    client, seen, _ = scripted(ok(CREATED, 201), ok(batch("running", 65)))
    created = client.batches.create(name="Q3", type="analysis", jobs=JOBS)
    status = client.batches.get_status(created["batch_id"])
    assert status["progress"]["percentage"] == 65
    assert sent_json(seen[0]) == {"name": "Q3", "jobs": JOBS, "type": "analysis"}
    assert (seen[1].method, seen[1].url.path) == ("GET", "/v1/batches/batch_abc")


def test_get_batch_sends_booleans_as_true_and_false_and_quotes_the_id():
    client, seen, _ = scripted(ok(batch("running", 10)), ok(batch("running", 10)))
    client.get_batch("batch_abc", include_jobs=True, job_status="failed")
    client.get_batch("a/b")
    assert query(seen[0]) == {"include_jobs": ["true"], "job_status": ["failed"]}
    assert query(seen[1]) == {"include_jobs": ["false"]}
    assert seen[1].url.raw_path.startswith(b"/v1/batches/a%2Fb?")


def test_list_batches_sends_only_the_given_filters_and_keeps_the_pagination():
    pagination = {"page": 2, "per_page": 10, "total_pages": 3, "total_items": 25}
    client, seen, _ = scripted(ok([CREATED], pagination=pagination))
    body = client.batches.list(status="completed", page=2, per_page=10, sort="created_at")
    assert body["data"] == [CREATED] and body["pagination"] == pagination
    assert seen[0].url.path == "/v1/batches"
    assert query(seen[0]) == {"status": ["completed"], "page": ["2"], "per_page": ["10"], "sort": ["created_at"]}


def test_json_results_are_the_data():
    client, seen, _ = scripted(ok({"summary": {"projects_analyzed": 2}}))
    results = client.batch_results("batch_abc", include_raw=True, jobs=["job_1", "job_2"])
    assert results == {"summary": {"projects_analyzed": 2}}
    assert seen[0].url.path == "/v1/batches/batch_abc/results"
    assert query(seen[0]) == {"format": ["json"], "include_raw": ["true"], "jobs": ["job_1,job_2"]}


def test_file_results_are_the_bytes():
    csv = b"job_id,quality_score\njob_1,8.5\n"
    disposition = {"Content-Disposition": 'attachment; filename="batch_abc.csv"', "Content-Type": "text/csv"}
    client, seen, _ = scripted(httpx.Response(200, content=csv, headers=disposition))
    assert client.batches.results("batch_abc", format="csv") == csv
    assert query(seen[0]) == {"format": ["csv"], "include_raw": ["false"]}


def test_a_303_is_followed_to_s3_without_the_api_key():
    s3 = "https://bucket.s3.amazonaws.com/exports/batch_abc.xlsx?X-Amz-Signature=sig"
    client, seen, _ = scripted(
        httpx.Response(303, headers={"Location": s3}, json={"success": True, "data": {"download_url": s3}}),
        httpx.Response(200, content=b"PK\x03\x04xlsx"),
    )
    assert client.batch_results("batch_abc", format="xlsx") == b"PK\x03\x04xlsx"
    api, download = seen
    assert api.headers["Authorization"] == "Bearer bo_test"
    assert str(download.url) == s3 and download.method == "GET"
    assert "Authorization" not in download.headers


def test_a_303_without_location_falls_back_to_the_download_url():
    s3 = "https://bucket.s3.amazonaws.com/exports/batch_abc.pdf?sig=1"
    client, seen, _ = scripted(ok({"download_url": s3}, 303), httpx.Response(200, content=b"%PDF-1.7"))
    assert client.batch_results("batch_abc", format="pdf") == b"%PDF-1.7"
    assert str(seen[1].url) == s3 and "Authorization" not in seen[1].headers


def test_a_refused_download_is_an_api_error():
    s3 = "https://bucket.s3.amazonaws.com/x.csv?sig=expired"
    client, _, _ = scripted(
        httpx.Response(303, headers={"Location": s3}),
        httpx.Response(403, text="<Error><Code>AccessDenied</Code></Error>"),
    )
    with pytest.raises(ApiError) as refused:
        client.batch_results("batch_abc", format="csv")
    assert refused.value.status == 403 and "AccessDenied" in refused.value.body


def test_an_unknown_format_is_refused_before_sending():
    client, seen, _ = scripted()
    with pytest.raises(ValueError, match="format"):
        client.batch_results("batch_abc", format="docx")
    assert seen == []


def test_errors_keep_their_code():
    client, _, _ = scripted(
        httpx.Response(404, json={"error": "Batch not found", "code": "NOT_FOUND", "details": {"batch_id": "x"}})
    )
    with pytest.raises(ApiError) as missing:
        client.batch_results("x", format="csv")
    assert (missing.value.status, missing.value.code, missing.value.details) == (404, "NOT_FOUND", {"batch_id": "x"})


def test_batch_calls_retry_a_429_too():
    limited = httpx.Response(429, headers={"Retry-After": "4"}, json={"error": "slow down", "code": "RATE_LIMITED"})
    client, seen, clock = scripted(limited, ok(CREATED, 201))
    assert client.create_batch("Q3", JOBS) == CREATED
    assert len(seen) == 2 and clock.slept == [4.0]


def test_cancel_sends_its_body_only_when_given():
    cancelled = {"batch_id": "batch_abc", "status": "cancelled", "jobs_cancelled": 3, "credits_refunded": 25}
    client, seen, _ = scripted(ok(cancelled), ok(cancelled))
    assert client.cancel_batch("batch_abc", reason="Emergency deployment", cancel_running_jobs=False) == cancelled
    client.batches.cancel("batch_abc")
    assert (seen[0].method, seen[0].url.path) == ("DELETE", "/v1/batches/batch_abc")
    assert sent_json(seen[0]) == {"reason": "Emergency deployment", "cancel_running_jobs": False}
    assert seen[1].method == "DELETE" and seen[1].content == b""


def test_retry_posts_the_jobs_to_retry():
    retried = {"batch_id": "batch_abc", "jobs_retried": 2, "new_batch_id": "batch_def"}
    client, seen, _ = scripted(ok(retried, 201), ok(retried, 201))
    assert client.retry_batch("batch_abc", job_ids=["job_3", "job_5"], max_retries=2, retry_delay_minutes=5) == retried
    client.batches.retry("batch_abc")
    assert (seen[0].method, seen[0].url.path) == ("POST", "/v1/batches/batch_abc/retry")
    assert sent_json(seen[0]) == {"job_ids": ["job_3", "job_5"], "max_retries": 2, "retry_delay_minutes": 5}
    assert sent_json(seen[1]) == {}


def test_wait_polls_until_a_final_status_and_reports_progress():
    client, seen, clock = scripted(ok(batch("queued", 0)), ok(batch("running", 50)), ok(batch("completed", 100)))
    progress: list[dict] = []
    done = client.batches.wait_for_completion("batch_abc", interval=5.0, on_progress=progress.append)
    assert done["status"] == "completed"
    assert [p["percentage"] for p in progress] == [0, 50, 100]
    assert len(seen) == 3 and clock.slept == [5.0, 5.0]


@pytest.mark.parametrize("final", ["failed", "cancelled", "timed_out"])
def test_wait_stops_at_every_final_status(final):
    client, seen, _ = scripted(ok(batch("running", 40)), ok(batch(final, 40)))
    assert client.wait_for_batch("batch_abc")["status"] == final
    assert len(seen) == 2


def test_wait_gives_up_at_the_deadline():
    client, seen, clock = scripted(*[ok(batch("running", 10)) for _ in range(10)])
    with pytest.raises(TimeoutError, match="batch_abc still running"):
        client.wait_for_batch("batch_abc", timeout=10.0, interval=4.0)
    # Polls at 0, 4, 8 and (a shortened last sleep) 10 seconds, then stops.
    assert clock.slept == [4.0, 4.0, 2.0] and len(seen) == 4


def test_webhooks():
    hook = {"id": "wh_1", "url": "https://app.test/hook", "events": ["batch.completed"], "secret": "whsec_1"}
    deliveries = [{"id": "d_1", "event": "batch.completed", "status_code": 200}]
    client, seen, _ = scripted(ok(hook, 201), ok([hook]), httpx.Response(204), ok(deliveries))
    assert client.create_webhook("https://app.test/hook", ["batch.completed"]) == hook
    assert client.list_webhooks() == [hook]
    assert client.delete_webhook("wh_1") is None
    assert client.webhook_deliveries("wh_1") == deliveries
    assert [(r.method, r.url.path) for r in seen] == [
        ("POST", "/v1/webhooks"),
        ("GET", "/v1/webhooks"),
        ("DELETE", "/v1/webhooks/wh_1"),
        ("GET", "/v1/webhooks/wh_1/deliveries"),
    ]
    assert sent_json(seen[0]) == {"url": "https://app.test/hook", "events": ["batch.completed"]}


# ---------------------------------------------------------------- CLI


@pytest.fixture
def api(monkeypatch):
    """The CLI's client, answering from a script; `made` records the URL and key it was given."""
    queue: list[httpx.Response] = []
    seen: list[httpx.Request] = []
    made: list[tuple[str, str | None]] = []
    clock = Clock()

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0)

    def make_client(api_url: str, api_key: str | None) -> BatchopsClient:
        made.append((api_url, api_key))
        return BatchopsClient(api_url, api_key, transport=httpx.MockTransport(handle), sleep=clock.sleep, clock=clock)

    monkeypatch.setattr(cli, "make_client", make_client)
    monkeypatch.setenv("BATCHOPS_API_KEY", "bo_env")
    return queue, seen, made


def test_cli_results_writes_the_file_and_prints_its_path(api, tmp_path, capsys):
    queue, seen, made = api
    queue.append(httpx.Response(200, content=b"job_id\njob_1\n", headers={"Content-Type": "text/csv"}))
    reports = tmp_path / "reports"
    argv = ["batch", "--api-url", "http://api.test", "results", "batch_abc", "--format", "csv", "--output"]
    assert cli.main([*argv, str(reports)]) == 0
    written = reports / "batch_abc.csv"
    assert written.read_bytes() == b"job_id\njob_1\n"
    assert capsys.readouterr().out.strip() == str(written)
    assert made == [("http://api.test", "bo_env")]
    assert query(seen[0]) == {"format": ["csv"], "include_raw": ["false"]}


def test_cli_results_follows_a_303_into_the_file(api, tmp_path, capsys):
    queue, seen, _ = api
    s3 = "https://bucket.s3.amazonaws.com/batch_abc.pdf?sig=1"
    queue += [httpx.Response(303, headers={"Location": s3}), httpx.Response(200, content=b"%PDF")]
    assert cli.main(["batch", "results", "batch_abc", "--format", "pdf", "--output", str(tmp_path)]) == 0
    assert (tmp_path / "batch_abc.pdf").read_bytes() == b"%PDF"
    assert "Authorization" not in seen[1].headers


def test_cli_json_results_are_printed_without_output(api, capsys):
    queue, _, _ = api
    queue.append(ok({"summary": {"critical_issues": 12}}))
    assert cli.main(["batch", "--api-key", "bo_flag", "results", "batch_abc"]) == 0
    assert json.loads(capsys.readouterr().out) == {"summary": {"critical_issues": 12}}


def test_cli_create_reads_the_config(api, tmp_path, capsys):
    queue, seen, _ = api
    config = {"name": "Q3", "type": "analysis", "jobs": JOBS, "options": {"max_parallel": 3}}
    (tmp_path / "batch-config.json").write_text(json.dumps(config))
    queue.append(ok(CREATED, 201))
    assert cli.main(["batch", "create", "--config", str(tmp_path / "batch-config.json")]) == 0
    assert json.loads(capsys.readouterr().out) == CREATED
    assert sent_json(seen[0]) == config


def test_cli_create_refuses_unknown_fields(api, tmp_path):
    _, seen, _ = api
    (tmp_path / "bad.json").write_text(json.dumps({"name": "Q3", "jobs": [], "prority": "high"}))
    with pytest.raises(SystemExit, match="prority"):
        cli.main(["batch", "create", "--config", str(tmp_path / "bad.json")])
    assert seen == []


def test_cli_watch_prints_progress_then_the_final_batch(api, capsys):
    queue, seen, _ = api
    queue += [ok(batch("running", 50)), ok(batch("completed", 100))]
    assert cli.main(["batch", "status", "batch_abc", "--watch", "--interval", "1"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["status"] == "completed"
    assert err.splitlines() == ["batch_abc: 50%", "batch_abc: 100%"]
    assert len(seen) == 2


def test_cli_watch_timeout_is_one_line_of_json_and_exit_1(api, capsys):
    queue, _, _ = api
    queue += [ok(batch("running", 5)) for _ in range(5)]
    assert cli.main(["batch", "status", "batch_abc", "--watch", "--interval", "1", "--timeout", "2"]) == 1
    assert json.loads(capsys.readouterr().err.splitlines()[-1])["code"] == "TIMEOUT"


def test_cli_cancel_retry_and_list(api, capsys):
    queue, seen, _ = api
    queue += [ok({"status": "cancelled"}), ok({"status": "cancelled"}), ok({"jobs_retried": 1}, 201)]
    queue.append(ok([], pagination={"page": 1, "per_page": 5, "total_pages": 0, "total_items": 0}))
    assert cli.main(["batch", "cancel", "b1", "--reason", "Emergency deployment"]) == 0
    assert cli.main(["batch", "cancel", "b1", "--keep-running"]) == 0
    assert cli.main(["batch", "retry", "b1", "--job-id", "job_3", "--job-id", "job_5", "--max-retries", "2"]) == 0
    assert cli.main(["batch", "list", "--status", "failed", "--per-page", "5"]) == 0
    assert sent_json(seen[0]) == {"reason": "Emergency deployment", "cancel_running_jobs": True}
    assert sent_json(seen[1]) == {"cancel_running_jobs": False}
    assert sent_json(seen[2]) == {"job_ids": ["job_3", "job_5"], "max_retries": 2}
    assert query(seen[3]) == {"status": ["failed"], "per_page": ["5"]}


def test_cli_webhooks(api, capsys):
    queue, seen, _ = api
    queue += [ok({"id": "wh_1", "secret": "whsec_1"}, 201), httpx.Response(204)]
    argv = ["webhook", "create", "--url", "https://app.test/hook", "--event", "batch.completed"]
    assert cli.main([*argv, "--event", "batch.failed"]) == 0
    assert json.loads(capsys.readouterr().out)["secret"] == "whsec_1"
    assert cli.main(["webhook", "delete", "wh_1"]) == 0
    assert json.loads(capsys.readouterr().out) == {"deleted": "wh_1"}
    assert sent_json(seen[0]) == {"url": "https://app.test/hook", "events": ["batch.completed", "batch.failed"]}
    assert (seen[1].method, seen[1].url.path) == ("DELETE", "/v1/webhooks/wh_1")


def test_cli_api_errors_go_to_stderr_and_exit_1(api, capsys):
    queue, _, _ = api
    queue.append(httpx.Response(404, json={"error": "Batch not found", "code": "NOT_FOUND", "details": None}))
    assert cli.main(["batch", "status", "missing"]) == 1
    assert json.loads(capsys.readouterr().err)["code"] == "NOT_FOUND"


def test_result_files_are_asked_for_by_their_type() -> None:
    # API Gateway hands a binary body back as bytes only when Accept names its type.
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"%PDF-1.7", headers={"Content-Type": "application/pdf"})

    client = BatchopsClient("http://api.test", "bo_test", transport=httpx.MockTransport(handle))
    assert client.batch_results("batch_1", format="pdf") == b"%PDF-1.7"
    assert seen[0].headers["Accept"] == "application/pdf"
