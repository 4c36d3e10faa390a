"""Every `batchops` command beyond `batch` as people run it: a subprocess against the local stack,
its JSON (`--json`) parsed and its exit code checked. Operations (sequential, parallel,
transaction, dry run, async), the event log, jobs with their runs and batch operations (calling a
real HTTP server on 127.0.0.1), bulk tracking from a JSON array and from NDJSON in several chunks,
and webhooks end to end: a subscription, a delivery of a real batch, its signature checked by
`webhooks verify`. A few commands' human output too: tables with the expected values.

test_client_cli.py covers `batch create/status/results/cancel`, exit codes and global options."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from batchops_client import event_log_entry, new_correlation_id, new_trace_id
from tests.e2e.conftest import KEY_CLI
from tests.e2e.harness import RunningStack, wait_for
from tests.e2e.test_client_cli import assert_one_line_error, batchops, env_for
from tests.job_endpoint import JobEndpoints, Reply, job_endpoints

POLL = ("--interval", "0.3", "--timeout", "60")
WAIT = 60.0


@pytest.fixture(scope="module")
def endpoints() -> Iterator[JobEndpoints]:
    with job_endpoints() as server:
        yield server


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def clean(done: subprocess.CompletedProcess[str], code: int) -> subprocess.CompletedProcess[str]:
    assert done.returncode == code, f"exit {done.returncode}, wanted {code}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done


def as_json(stack: RunningStack, *argv: str | Path, code: int = 0) -> Any:
    """`batchops --json ARGV`'s stdout, parsed, once it exited with `code`."""
    return json.loads(clean(batchops(stack, "--json", *argv), code).stdout)


def human(stack: RunningStack, *argv: str | Path, code: int = 0) -> str:
    """`batchops ARGV`'s tables, on a terminal wide enough that Rich folds no cell."""
    return clean(batchops(stack, *argv, env=env_for(stack, COLUMNS="250")), code).stdout


def write(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value))
    return path


def entry(process: str, event_type: str, status: str, **optional: Any) -> dict[str, Any]:
    return event_log_entry(
        correlation_id=process,
        trace_id=new_trace_id(),
        application_id="cli-e2e",
        target_system="batchops",
        originating_system="cli-e2e",
        process_name="CLI_E2E",
        event_type=event_type,
        event_status=status,
        summary=f"{event_type} {status}",
        result=status,
        **optional,
    )


def track_op(op_id: str, n: int) -> dict[str, Any]:
    body = {"event": "cli-op", "properties": {"n": n}, "timestamp": "2026-03-01T10:00:00.000Z"}
    return {"id": op_id, "method": "POST", "path": "/v1/track", "body": body}


BROKEN_OP = {"id": "broken", "method": "POST", "path": "/v1/events", "body": {"eventStatus": "SUCCESS"}}


def table_rows(output: str) -> list[list[str]]:
    """The cells of a Rich table's rows (SIMPLE_HEAD: columns split by runs of 2+ spaces or │)."""
    rows = []
    for line in output.splitlines():
        cells = [c.strip() for c in line.replace("│", "  ").split("  ") if c.strip()]
        if cells:
            rows.append(cells)
    return rows


# ---------------------------------------------------------------- ops


def test_ops_run_parallel_transaction_dry_run_async_status_list_and_limits(stack: RunningStack, tmp_path: Path) -> None:
    good = write(tmp_path / "good.json", [track_op(f"t{n}", n) for n in range(3)])
    mixed = write(tmp_path / "mixed.json", [track_op("a", 1), BROKEN_OP, track_op("b", 2)])

    sequential = as_json(stack, "ops", "run", good)
    assert [r["id"] for r in sequential["results"]] == ["t0", "t1", "t2"]
    assert all(200 <= r["status"] < 300 for r in sequential["results"]), sequential
    assert sequential["summary"] == {"total": 3, "succeeded": 3, "failed": 0, "skipped": 0}

    # A failing operation: the results still on stdout, exit 1.
    failed = as_json(stack, "ops", "run", mixed, code=1)
    assert [(r["id"], r["status"] < 300) for r in failed["results"]] == [("a", True), ("broken", False), ("b", True)]
    assert failed["results"][1]["status"] == 422
    assert failed["summary"] == {"total": 3, "succeeded": 2, "failed": 1, "skipped": 0}

    parallel = as_json(
        stack, "ops", "run", write(tmp_path / "many.json", [track_op(f"p{n}", n) for n in range(6)]), "--parallel"
    )
    assert [r["id"] for r in parallel["results"]] == [f"p{n}" for n in range(6)]
    assert parallel["summary"]["succeeded"] == 6

    # A transaction fails fast: the operation after the failure is skipped (424).
    transaction = as_json(stack, "ops", "run", mixed, "--transaction", code=1)
    assert [(r["id"], r["status"]) for r in transaction["results"]][1:] == [("broken", 422), ("b", 424)]
    assert transaction["summary"] == {"total": 3, "succeeded": 1, "failed": 1, "skipped": 1}
    assert as_json(stack, "ops", "run", good, "--transaction")["summary"]["succeeded"] == 3

    dry_ok = as_json(stack, "ops", "run", good, "--dry-run")
    assert [(r["id"], r["status"], r["body"]) for r in dry_ok["results"]] == [
        (f"t{n}", 200, {"valid": True}) for n in range(3)
    ]
    dry_bad = as_json(stack, "ops", "run", mixed, "--dry-run", code=1)
    assert [r["status"] for r in dry_bad["results"]] == [200, 422, 200]

    finished = as_json(stack, "ops", "run", good, "--async", "--wait", *POLL)
    job_id = finished["id"]
    assert finished["status"] == "COMPLETED" and [r["id"] for r in finished["results"]] == ["t0", "t1", "t2"]
    assert finished["summary"]["succeeded"] == 3

    status = as_json(stack, "ops", "status", job_id)
    assert (status["id"], status["status"], status["results"]) == (job_id, "COMPLETED", finished["results"])

    page = as_json(stack, "ops", "list")
    assert job_id in [job["id"] for job in page["data"]]
    every = as_json(stack, "ops", "list", "--all", "--status", "COMPLETED")
    assert isinstance(every, list) and job_id in [job["id"] for job in every]
    assert all(job["status"] == "COMPLETED" for job in every)

    limits = as_json(stack, "ops", "limits")
    assert (limits["plan"], limits["maxOperations"]) == ("pro", 100)
    assert "POST" in limits["allowedMethods"] and "/v1/track" in limits["allowedPaths"]

    # Human output: the results table and its summary caption.
    table = human(stack, "ops", "run", mixed, code=1)
    rows = table_rows(table)
    assert rows[[r[0] for r in rows].index("broken")][:2] == ["broken", "422"], table
    assert "3 operations: 2 succeeded, 1 failed, 0 skipped" in table


# ---------------------------------------------------------------- events


def test_events_create_create_batch_get_batch_and_summary(stack: RunningStack, tmp_path: Path) -> None:
    bid = unique("cli-events")
    done, broken = new_correlation_id(), new_correlation_id()

    one = as_json(
        stack,
        "events",
        "create",
        write(tmp_path / "one.json", entry(done, "PROCESS_START", "IN_PROGRESS", batch_id=bid)),
    )
    assert one["success"] is True and one["correlationId"] == done and len(one["executionIds"]) == 1

    entries = [
        entry(done, "PROCESS_END", "SUCCESS"),
        entry(broken, "PROCESS_START", "IN_PROGRESS"),
        {"eventStatus": "SUCCESS"},  # refused on its own, by index
        entry(broken, "STEP", "FAILURE", error_code="E42", error_message="no such customer"),
    ]
    batch = as_json(stack, "events", "create-batch", write(tmp_path / "many.json", entries), "--batch-id", bid, code=1)
    assert (batch["totalReceived"], batch["totalInserted"]) == (4, 3)
    assert [e["index"] for e in batch["errors"]] == [2] and "correlationId" in batch["errors"][0]["error"]
    stored = {*one["executionIds"], *batch["executionIds"]}
    assert len(stored) == 4

    first = as_json(stack, "events", "get-batch", bid, "--page-size", "3")
    assert (first["batchId"], first["totalCount"], first["hasMore"], len(first["events"])) == (bid, 4, True, 3)
    every = as_json(stack, "events", "get-batch", bid, "--all")
    assert isinstance(every, list) and {e["executionId"] for e in every} == stored
    failures = as_json(stack, "events", "get-batch", bid, "--status", "FAILURE")
    assert [(e["correlationId"], e["errorCode"]) for e in failures["events"]] == [(broken, "E42")]

    summary = as_json(stack, "events", "summary", bid)
    assert (summary["batchId"], summary["totalProcesses"], summary["completed"], summary["failed"]) == (bid, 2, 1, 1)

    # Human output: the entries table and its counts.
    table = human(stack, "events", "get-batch", bid, "--status", "FAILURE")
    assert f"event batch {bid}" in table
    # The counts are the batch's, whatever the filter: as the JSON gives them.
    counts = (failures["totalCount"], failures["successCount"], failures["failureCount"])
    assert counts == (1, 1, 1)
    assert "page 1: 1 entries, 1 succeeded, 1 failed" in table
    [row] = [r for r in table_rows(table) if "FAILURE" in r]
    assert broken in row and "STEP" in row


# ---------------------------------------------------------------- jobs, runs, batch operations


def test_jobs_runs_and_batch_operations(stack: RunningStack, endpoints: JobEndpoints, tmp_path: Path) -> None:
    path, down = f"/cli/{unique('job')}", f"/cli/{unique('down')}"
    name = path.rsplit("/", 1)[1]
    endpoints.script(path, Reply(200, {"sent": True}))
    endpoints.script(down, Reply(500, {"error": "down"}))

    spec = {"name": name, "slug": name, "endpoint_url": endpoints.url(path), "max_attempts": 1}
    job = as_json(stack, "jobs", "create", write(tmp_path / "job.json", spec))
    assert (job["name"], job["endpoint_url"], job["version"]) == (name, endpoints.url(path), 1)
    assert job["signing_secret"].startswith("whsec_")
    endpoints.verify_with(path, job["signing_secret"])

    got = as_json(stack, "jobs", "get", job["id"])
    assert got == {k: v for k, v in job.items() if k != "signing_secret"}
    listed = as_json(stack, "jobs", "list", "--slug", name)
    assert [j["id"] for j in listed["data"]] == [job["id"]]
    assert job["id"] in [j["id"] for j in as_json(stack, "jobs", "list", "--all", "--limit", "2")]

    changed = as_json(stack, "jobs", "update", job["id"], write(tmp_path / "change.json", {"description": "welcome"}))
    assert (changed["version"], changed["description"]) == (2, "welcome")

    run = as_json(stack, "jobs", "trigger", job["id"], "--payload", '{"to": "a@example.com"}', "--wait", *POLL)
    assert (run["status"], run["result"], run["job_id"]) == ("completed", {"sent": True}, job["id"])
    [call] = endpoints.calls_to(path)
    assert call.verified and call.body["payload"] == {"to": "a@example.com"}

    assert as_json(stack, "runs", "get", run["id"]) == run
    assert as_json(stack, "runs", "wait", run["id"], *POLL)["status"] == "completed"

    items = write(tmp_path / "items.json", [{"payload": {"n": n}} for n in range(3)])
    operation = as_json(stack, "jobs", "trigger-bulk", job["id"], items, "--wait", *POLL)
    assert (operation["job_id"], operation["item_count"], operation["created_count"]) == (job["id"], 3, 3)
    assert operation["finished_at"]
    assert sorted(c.body["payload"].get("n", -1) for c in endpoints.calls_to(path)) == [-1, 0, 1, 2]

    assert as_json(stack, "batch-operations", "get", operation["id"])["finished_at"] == operation["finished_at"]
    assert operation["id"] in [o["id"] for o in as_json(stack, "batch-operations", "list")["data"]]
    assert as_json(stack, "batch-operations", "wait", operation["id"], *POLL)["id"] == operation["id"]

    runs = as_json(stack, "runs", "list", "--job-id", job["id"])
    assert len(runs["data"]) == 4 and run["id"] in [r["id"] for r in runs["data"]]
    assert {r["status"] for r in runs["data"]} == {"completed"}

    # Point the job at a failing endpoint: --wait and `runs get` then exit 1.
    as_json(stack, "jobs", "update", job["id"], write(tmp_path / "down.json", {"endpoint_url": endpoints.url(down)}))
    failed = as_json(stack, "jobs", "trigger", job["id"], "--wait", *POLL, code=1)
    assert failed["status"] == "failed"
    assert as_json(stack, "runs", "get", failed["id"], code=1)["status"] == "failed"

    # Human output: the jobs table.
    table = human(stack, "jobs", "list", "--slug", name)
    [row] = [r for r in table_rows(table) if job["id"] in r] or [table]
    assert name in row and endpoints.url(down) in row, table

    assert as_json(stack, "jobs", "delete", job["id"]) == {"deleted": job["id"]}
    gone = clean(batchops(stack, "jobs", "get", job["id"]), 3)
    assert_one_line_error(gone, "404")
    assert as_json(stack, "runs", "get", run["id"])["status"] == "completed"  # its runs are kept


# ---------------------------------------------------------------- track


def tracked(n: int, message_id: str) -> dict[str, Any]:
    return {"event": "signup", "properties": {"n": n}, "timestamp": "2026-03-01T10:00:00.000Z", "messageId": message_id}


def stored_event(stack: RunningStack, message_id: str) -> Any:
    with httpx.Client(base_url=stack.api, headers={"Authorization": f"Bearer {KEY_CLI}"}, timeout=30) as http:
        got = http.get(f"/v1/track/events/{message_id}")
    if got.status_code == 404:
        return None
    assert got.status_code == 200, got.text
    return got.json()


def test_track_a_json_array_and_ndjson_in_chunks(stack: RunningStack, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    array = write(tmp_path / "events.json", [tracked(n, f"arr-{run}-{n}") for n in range(5)])
    sent = as_json(stack, "track", array)
    assert sent == {"status": "ok", "messageIds": [f"arr-{run}-{n}" for n in range(5)]}

    # 301 lines, 100 a chunk: four chunks; the bad one in the third chunk is named by its index in the file.
    lines = [tracked(n, f"nd-{run}-{n}") for n in range(300)]
    lines.insert(250, {"event": "no properties"})
    ndjson = tmp_path / "events.ndjson"
    ndjson.write_text("".join(json.dumps(line) + "\n" for line in lines))
    streamed = as_json(stack, "track", ndjson, "--chunk-events", "100", code=1)
    assert streamed["messageIds"] == [f"nd-{run}-{n}" for n in range(300)]
    assert [e["index"] for e in streamed["errors"]] == [250] and "properties" in streamed["errors"][0]["error"]

    for message_id, n in ((f"arr-{run}-4", 4), (f"nd-{run}-299", 299)):
        event = wait_for(lambda m=message_id: stored_event(stack, m), timeout=WAIT, interval=0.3, what=message_id)
        assert event["properties"] == {"n": n}

    # Human output: the counts, and the rejected event by its index.
    table = human(stack, "track", ndjson, "--chunk-events", "100", code=1)
    counts = {r[0]: r[1] for r in table_rows(table) if len(r) == 2}
    assert (counts["events"], counts["accepted"], counts["rejected"]) == ("301", "300", "1"), table
    assert "properties" in counts["250"], table  # the rejected table: INDEX, ERROR


# ---------------------------------------------------------------- webhooks


def test_webhooks_create_list_deliver_verify_and_delete(
    stack: RunningStack, endpoints: JobEndpoints, tmp_path: Path
) -> None:
    hook = f"/cli/{unique('hook')}"
    subscription = as_json(stack, "webhooks", "create", "--url", endpoints.url(hook), "--event", "batch.completed")
    hook_id, secret = subscription["id"], subscription["secret"]
    try:
        assert secret.startswith("whsec_")
        assert (subscription["url"], subscription["events"], subscription["status"]) == (
            endpoints.url(hook),
            ["batch.completed"],
            "active",
        )
        [listed] = [w for w in as_json(stack, "webhooks", "list") if w["id"] == hook_id]
        assert listed["url"] == endpoints.url(hook) and not listed.get("secret")  # shown only on create

        config = {
            "name": unique("cli-hooked"),
            "jobs": [{"id": "j", "type": "http", "config": {"url": endpoints.url("/cli/w")}}],
        }
        made = as_json(stack, "batch", "create", "--config", write(tmp_path / "batch.json", config))
        watched = as_json(stack, "batch", "status", made["batch_id"], "--watch", *POLL)
        assert watched["status"] == "completed"

        call = wait_for(
            lambda: next((c for c in endpoints.calls_to(hook) if c.body.get("batch_id") == made["batch_id"]), None),
            timeout=WAIT,
            interval=0.3,
            what="the batch.completed delivery",
        )

        def delivered() -> Any:
            log = as_json(stack, "webhooks", "deliveries", hook_id)
            return next((d for d in log if d["id"] == call.headers["webhook-id"] and d["status"] == "delivered"), None)

        logged = wait_for(delivered, timeout=WAIT, interval=0.3, what="the delivery log to show the delivery")
        assert (logged["event"], logged["last_status_code"]) == ("batch.completed", 200)

        headers = [f"{name}: {call.headers[name]}" for name in ("webhook-id", "webhook-timestamp", "webhook-signature")]
        body = tmp_path / "body.json"
        body.write_bytes(call.raw)
        flags = [arg for header in headers for arg in ("--header", header)]
        event = as_json(stack, "webhooks", "verify", body, "--secret", secret, *flags)
        assert (event["event"], event["batch_id"]) == ("batch.completed", made["batch_id"])

        tampered = tmp_path / "tampered.json"
        tampered.write_bytes(call.raw.replace(b"batch.completed", b"batch.failed"))
        assert tampered.read_bytes() != call.raw
        forged = clean(batchops(stack, "webhooks", "verify", tampered, "--secret", secret, *flags), 1)
        assert_one_line_error(forged)
        assert forged.stdout == ""

        # Human output: the subscription in the list's table.
        table = human(stack, "webhooks", "list")
        [row] = [r for r in table_rows(table) if hook_id in r] or [table]
        assert endpoints.url(hook) in row and "active" in row, table
    finally:
        deleted = batchops(stack, "--json", "webhooks", "delete", hook_id)
    assert json.loads(clean(deleted, 0).stdout) == {"deleted": hook_id}
    assert hook_id not in [w["id"] for w in as_json(stack, "webhooks", "list")]
    assert_one_line_error(clean(batchops(stack, "webhooks", "delete", hook_id), 3), "404")
