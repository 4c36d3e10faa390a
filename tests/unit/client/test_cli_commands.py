"""The `batchops` commands beyond `batch`, in-process against a respx-mocked API: what each sends,
what it shows, its exit code, and the live progress of its waits; `track` streaming an NDJSON
file in chunks."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path

import httpx
import respx
from standardwebhooks.webhooks import Webhook as StandardWebhook

from tests.unit.client.test_cli import BASE, Sleeps, run


def write(tmp_path: Path, name: str, value) -> str:
    target = tmp_path / name
    target.write_text(value if isinstance(value, str) else json.dumps(value), encoding="utf-8")
    return str(target)


OPERATIONS = [
    {"id": "a", "method": "GET", "path": "/v1/batches"},
    {"id": "b", "method": "GET", "path": "/v1/batches/nope"},
]


# --- ops ----------------------------------------------------------------------------------------


def test_ops_run_shows_each_result_and_exits_1_when_one_failed(tmp_path):
    answer = {
        "results": [
            {"id": "a", "status": 200, "body": {"data": []}},
            {"id": "b", "status": 404, "body": {"error": "Batch nope not found", "code": "BATCH_NOT_FOUND"}},
        ],
        "summary": {"total": 2, "succeeded": 1, "failed": 1, "skipped": 0},
    }
    with respx.mock(base_url=BASE) as api:
        route = api.post("/v1/batch").respond(200, json=answer)
        result = run("ops", "run", write(tmp_path, "ops.json", OPERATIONS), "--parallel", "--stop-on-error")
    assert result.exit_code == 1, result.output
    assert json.loads(route.calls.last.request.content) == {
        "operations": OPERATIONS,
        "parallel": True,
        "continueOnError": False,
    }
    row = next(line for line in result.stdout.splitlines() if "BATCH_NOT_FOUND" in line)
    assert "404" in row
    assert "2 operations: 1 succeeded, 1 failed, 0 skipped" in result.stdout
    assert "1 of 2 operations failed" in result.stderr


def test_ops_run_transaction_json(tmp_path):
    answer = {"results": [{"id": "a", "status": 200, "body": {}}], "summary": {"total": 1, "succeeded": 1}}
    with respx.mock(base_url=BASE) as api:
        api.post("/v1/batch/transaction").respond(200, json=answer)
        result = run(
            "ops", "run", write(tmp_path, "ops.json", {"operations": OPERATIONS[:1]}), "--transaction", "--json"
        )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == answer


def test_ops_run_exclusive_modes_are_usage_errors(tmp_path):
    file = write(tmp_path, "ops.json", OPERATIONS)
    assert run("ops", "run", file, "--transaction", "--dry-run").exit_code == 2
    assert run("ops", "run", file, "--wait").exit_code == 2
    assert run("ops", "run", write(tmp_path, "bad.json", {"ops": []})).exit_code == 2


def test_ops_run_async_wait_polls_with_progress(tmp_path):
    sleeps = Sleeps()
    done = {
        "id": "job_1",
        "status": "COMPLETED",
        "results": [{"id": "a", "status": 200, "body": {}}, {"id": "b", "status": 200, "body": {}}],
        "summary": {"total": 2, "succeeded": 2, "failed": 0, "skipped": 0},
    }
    with respx.mock(base_url=BASE) as api:
        api.post("/v1/batch/async").respond(202, json={"data": {"id": "job_1", "status": "QUEUED"}})
        api.get("/v1/batch/async/job_1").mock(
            side_effect=[
                httpx.Response(200, json={"data": {"id": "job_1", "status": "PROCESSING"}}),
                httpx.Response(200, json={"data": done}),
            ]
        )
        result = run(
            "ops", "run", write(tmp_path, "ops.json", OPERATIONS), "--async", "--wait", "--interval", "2", sleeps=sleeps
        )
    assert result.exit_code == 0, result.output
    assert sleeps.waits == [2]
    assert "2/2" in result.stderr and "COMPLETED" in result.stderr
    assert "2 operations: 2 succeeded" in result.stdout


def test_ops_status_of_a_failed_async_job_exits_1():
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/batch/async/job_1").respond(200, json={"data": {"id": "job_1", "status": "FAILED", "error": "x"}})
        result = run("ops", "status", "job_1")
    assert result.exit_code == 1
    assert "async job_1 ended FAILED" in result.stderr


def test_ops_limits_record():
    limits = {"maxOperations": 100, "timeoutMs": 29000, "allowedMethods": ["GET", "POST"], "plan": "pro"}
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/batch/limits").respond(200, json=limits)
        result = run("ops", "limits")
    assert result.exit_code == 0
    assert "maxOperations" in result.stdout and "29000" in result.stdout


# --- jobs, runs, batch operations ---------------------------------------------------------------


def run_body(status: str, run_id: str = "run_1") -> dict:
    return {"id": run_id, "job_id": "job_1", "status": status, "attempt": 1, "batch_id": "bop_1"}


def test_jobs_trigger_wait_on_a_failed_run_exits_1():
    with respx.mock(base_url=BASE) as api:
        trigger = api.post("/v1/jobs/job_1/trigger").respond(202, json={"id": "run_1", "status": "queued"})
        api.get("/v1/runs/run_1").mock(
            side_effect=[httpx.Response(200, json=run_body("executing")), httpx.Response(200, json=run_body("failed"))]
        )
        result = run("jobs", "trigger", "job_1", "--payload", '{"image": "a.png"}', "--wait", "--json")
    assert result.exit_code == 1, result.output
    assert json.loads(trigger.calls.last.request.content) == {"payload": {"image": "a.png"}}
    assert json.loads(result.stdout)["status"] == "failed"
    assert "run run_1 ended failed" in result.stderr


def test_jobs_trigger_bad_payload_is_a_usage_error():
    result = run("jobs", "trigger", "job_1", "--payload", "{nope")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --payload: not JSON")


def test_runs_wait_timeout_exits_4():
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/runs/run_1").respond(200, json=run_body("executing"))
        result = run("runs", "wait", "run_1", "--interval", "1", "--timeout", "2")
    assert result.exit_code == 4
    assert "WAIT_TIMEOUT" in result.stderr


def test_trigger_bulk_wait_counts_the_runs(tmp_path):
    items = [{"payload": {"n": n}} for n in range(3)]
    operation = {"id": "bop_1", "job_id": "job_1", "item_count": 3, "created_count": 3}
    runs = {"data": [run_body("completed", f"run_{n}") for n in range(3)], "has_more": False}
    with respx.mock(base_url=BASE) as api:
        bulk = api.post("/v1/jobs/job_1/trigger-bulk").respond(
            201, json={"batch_id": "bop_1", "total": 3, "created": 3, "results": []}
        )
        api.get("/v1/batch-operations/bop_1").mock(
            side_effect=[
                httpx.Response(200, json=operation),
                httpx.Response(200, json={**operation, "finished_at": "2026-12-07T10:00:00Z"}),
            ]
        )
        api.get("/v1/runs", params={"batch_id": "bop_1"}).respond(200, json=runs)
        result = run("jobs", "trigger-bulk", "job_1", write(tmp_path, "items.json", items), "--wait")
    assert result.exit_code == 0, result.output
    assert json.loads(bulk.calls.last.request.content) == {"items": items}
    assert "3/3" in result.stderr and "0 failed" in result.stderr
    assert "bop_1" in result.stdout


def test_batch_operation_with_failed_runs_exits_1():
    operation = {
        "id": "bop_1",
        "job_id": "job_1",
        "item_count": 2,
        "created_count": 2,
        "finished_at": "2026-12-07T10:00:00Z",
    }
    runs = {"data": [run_body("completed"), run_body("failed", "run_2")], "has_more": False}
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/batch-operations/bop_1").respond(200, json=operation)
        api.get("/v1/runs").respond(200, json=runs)
        result = run("batch-operations", "get", "bop_1")
    assert result.exit_code == 1
    assert "1 of 2 runs did not complete" in result.stderr


def test_jobs_list_table_and_json():
    page = {
        "data": [{"id": "job_1", "name": "resize", "endpoint_url": "https://example.com/r", "slug": "resize"}],
        "has_more": True,
        "next_cursor": "c2",
    }
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/jobs").respond(200, json=page)
        table = run("jobs", "list")
        raw = run("jobs", "list", "--json")
    assert table.exit_code == 0
    assert "resize" in table.stdout and "https://example.com/r" in table.stdout and "--cursor c2" in table.stdout
    assert json.loads(raw.stdout) == page


def test_jobs_create_update_delete(tmp_path):
    job = {"id": "job_1", "name": "resize", "endpoint_url": "https://example.com/r", "signing_secret": "whsec_j"}
    with respx.mock(base_url=BASE) as api:
        create = api.post("/v1/jobs").respond(201, json=job)
        update = api.patch("/v1/jobs/job_1").respond(200, json=job)
        delete = api.delete("/v1/jobs/job_1").respond(204)
        created = run(
            "jobs", "create", write(tmp_path, "job.json", {"name": "resize", "endpoint_url": "https://example.com/r"})
        )
        updated = run("jobs", "update", "job_1", write(tmp_path, "patch.json", {"description": None}))
        deleted = run("jobs", "delete", "job_1", "--json")
    assert created.exit_code == updated.exit_code == deleted.exit_code == 0
    assert json.loads(create.calls.last.request.content)["name"] == "resize" and "whsec_j" in created.stdout
    assert json.loads(update.calls.last.request.content) == {"description": None}
    assert delete.called and json.loads(deleted.stdout) == {"deleted": "job_1"}


# --- events -------------------------------------------------------------------------------------


def test_events_create_batch_with_refused_entries_exits_1(tmp_path):
    answer = {
        "success": True,
        "totalReceived": 2,
        "totalInserted": 1,
        "executionIds": ["e1"],
        "batchId": "imp_1",
        "errors": [{"index": 1, "error": "eventType is required"}],
    }
    with respx.mock(base_url=BASE) as api:
        route = api.post("/v1/events/batch").respond(200, json=answer)
        result = run(
            "events", "create-batch", write(tmp_path, "e.json", {"events": [{}, {}]}), "--batch-id", "imp_1", "--json"
        )
    assert result.exit_code == 1
    assert json.loads(route.calls.last.request.content)["batchId"] == "imp_1"
    assert json.loads(result.stdout) == answer
    assert "1 entries refused" in result.stderr


def test_events_get_batch_table():
    page = {
        "batchId": "imp_1",
        "events": [
            {
                "executionId": "e1",
                "correlationId": "c1",
                "traceId": "t1",
                "eventType": "PROCESS",
                "eventStatus": "FAILURE",
                "stepName": "load",
                "eventTimestamp": "2026-12-07T10:00:00Z",
            }
        ],
        "totalCount": 1,
        "successCount": 0,
        "failureCount": 1,
        "page": 1,
        "pageSize": 20,
        "hasMore": False,
    }
    with respx.mock(base_url=BASE) as api:
        route = api.get("/v1/events/batch/imp_1").respond(200, json=page)
        result = run("events", "get-batch", "imp_1", "--status", "FAILURE")
    assert result.exit_code == 0, result.output
    assert route.calls.last.request.url.params["eventStatus"] == "FAILURE"
    row = next(line for line in result.stdout.splitlines() if "e1" in line)
    assert "c1" in row and "FAILURE" in row and "load" in row
    assert "1 entries, 0 succeeded, 1 failed" in result.stdout


# --- track --------------------------------------------------------------------------------------


def test_track_streams_an_ndjson_file_in_chunks(tmp_path):
    events = [{"event": "signup", "properties": {"n": n}, "timestamp": "2026-12-07T10:00:00Z"} for n in range(25)]
    file = write(tmp_path, "events.ndjson", "\n".join(json.dumps(event) for event in events) + "\n\n")
    bodies: list[list] = []

    def bulk(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        start = sum(len(body) for body in bodies)
        bodies.append(sent)
        errors = [{"index": 2, "error": "timestamp is invalid"}] if len(bodies) == 2 else []
        accepted = [f"m{start + i}" for i in range(len(sent)) if not (errors and i == 2)]
        return httpx.Response(200, json={"status": "ok", "messageIds": accepted, "errors": errors})

    with respx.mock(base_url=BASE) as api:
        api.post("/v1/bulk-track").mock(side_effect=bulk)
        result = run("track", file, "--chunk-events", "10", "--json")
    assert [len(body) for body in bodies] == [10, 10, 5]
    assert [event for body in bodies for event in body] == events
    output = json.loads(result.stdout)
    assert len(output["messageIds"]) == 24
    assert output["errors"] == [{"index": 12, "error": "timestamp is invalid"}]
    assert result.exit_code == 1
    assert "25/25" in result.stderr and "1 failed" in result.stderr


def test_track_a_json_array_shows_a_summary(tmp_path):
    events = [{"event": "e", "properties": {}, "timestamp": "2026-12-07T10:00:00Z"}] * 3
    with respx.mock(base_url=BASE) as api:
        route = api.post("/v1/bulk-track").respond(200, json={"status": "ok", "messageIds": ["a", "b", "c"]})
        result = run("track", write(tmp_path, "events.json", json.dumps(events, indent=2)))
    assert result.exit_code == 0, result.output
    assert route.call_count == 1 and json.loads(route.calls.last.request.content) == events
    assert "accepted" in result.stdout and "3" in result.stdout


def test_track_a_bad_line_is_a_usage_error(tmp_path):
    with respx.mock(base_url=BASE) as api:
        route = api.post("/v1/bulk-track").respond(200, json={"status": "ok", "messageIds": ["m0"]})
        result = run("track", write(tmp_path, "events.ndjson", '{"event": "e"}\n{nope\n'), "--chunk-events", "1")
    assert result.exit_code == 2
    assert route.call_count == 1
    assert "line 2: not JSON" in result.stderr
    assert "(1 events before it were sent: 1 accepted)" in result.stderr


# --- webhooks -----------------------------------------------------------------------------------


def test_webhooks_create_and_list():
    hook = {"id": "wh_1", "url": "https://example.com/h", "events": ["batch.completed"], "secret": "whsec_s"}
    with respx.mock(base_url=BASE) as api:
        create = api.post("/v1/webhooks").respond(201, json={"success": True, "data": hook})
        api.get("/v1/webhooks").respond(200, json={"success": True, "data": [{**hook, "secret": None}]})
        created = run("webhooks", "create", "--url", "https://example.com/h", "--event", "batch.completed")
        listed = run("webhooks", "list")
    assert created.exit_code == 0 and "whsec_s" in created.stdout
    assert json.loads(create.calls.last.request.content) == {
        "url": "https://example.com/h",
        "events": ["batch.completed"],
    }
    assert "wh_1" in listed.stdout and "https://example.com/h" in listed.stdout


def test_webhooks_verify(tmp_path):
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    body = json.dumps({"event": "batch.completed", "batch_id": "batch_1", "data": {}})
    now = datetime.now(timezone.utc)  # noqa: UP017 - the client's tests run on 3.9 too
    signature = StandardWebhook(secret).sign("msg_1", now, body)
    headers = ["--header", "webhook-id: msg_1", "--header", f"webhook-timestamp: {int(now.timestamp())}"]
    file = write(tmp_path, "body.json", body)
    good = run("webhooks", "verify", file, "--secret", secret, *headers, "--header", f"Webhook-Signature: {signature}")
    bad = run("webhooks", "verify", file, "--secret", secret, *headers, "--header", "webhook-signature: v1,AAAA")
    assert good.exit_code == 0, good.output
    assert "batch_1" in good.stdout
    assert bad.exit_code == 1
    assert bad.stderr.startswith("error: WEBHOOK_VERIFICATION_FAILED")
