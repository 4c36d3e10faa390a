"""The Python SDK (`batchops_client`) against the real local stack: every resource (batches,
operations, events, jobs/runs/batch operations, tracking, webhooks) through `BatchopsClient`, a
few calls through `AsyncBatchopsClient`, and idempotency end to end (a replayed key, and a create
whose answer was lost after the server did the work, retried by the SDK without creating twice).

Batch jobs, registered jobs and webhooks call a real HTTP server on 127.0.0.1 (tests/job_endpoint.py).
The pro plan allows 3 unfinished batches at once and 25 a day, so each test waits for its
batches to finish and the file creates seven."""

from __future__ import annotations

import asyncio
import csv
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from batchops_client import (
    AsyncBatchopsClient,
    BatchopsClient,
    BatchopsError,
    NotFoundError,
    Retry,
    event_log_entry,
    new_correlation_id,
    new_trace_id,
    verify_webhook,
)
from batchops_client.models.batches import Progress
from batchops_client.models.operations import Operation
from tests.e2e.conftest import KEY_B, KEY_SDK
from tests.e2e.harness import RunningStack, wait_for
from tests.job_endpoint import JobEndpoints, Reply, job_endpoints

POLL = 0.25  # seconds between an SDK wait's polls
WAIT = 60.0  # an SDK wait's deadline


@pytest.fixture(scope="module")
def endpoints() -> Iterator[JobEndpoints]:
    with job_endpoints() as server:
        yield server


@pytest.fixture
def sdk(stack: RunningStack) -> Iterator[BatchopsClient]:
    with BatchopsClient(KEY_SDK, stack.api) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def http_job(job_id: str, url: str, body: Any = None) -> dict[str, Any]:
    return {"id": job_id, "type": "http", "config": {"url": url, "body": body if body is not None else {"job": job_id}}}


def entry(process: str, event_type: str, status: str, **optional: Any) -> dict[str, Any]:
    return event_log_entry(
        correlation_id=process,
        trace_id=new_trace_id(),
        application_id="sdk-e2e",
        target_system="batchops",
        originating_system="sdk-e2e",
        process_name="SDK_E2E",
        event_type=event_type,
        event_status=status,
        summary=f"{event_type} {status}",
        result=status,
        **optional,
    )


def tracked(n: int, message_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "event": "signup",
        "properties": {"n": n},
        "timestamp": "2026-03-01T10:00:00.000Z",
        "messageId": message_id,
        **extra,
    }


def names(sdk: BatchopsClient, name: str) -> list[str]:
    """The ids of the workspace's batches called `name`, read through `iterate` (every page)."""
    return [batch.batch_id for batch in sdk.batches.iterate(per_page=20) if batch.name == name]


# ---------------------------------------------------------------- batches


def test_batches_create_wait_status_list_results_and_isolation(
    stack: RunningStack, sdk: BatchopsClient, endpoints: JobEndpoints, tmp_path: Path
) -> None:
    work = f"/sdk/{unique('work')}"
    endpoints.script(work, Reply(200, {"metrics": {"score": 4}}, delay=0.2))
    name = unique("sdk-batch")
    jobs = [http_job(f"j{n}", endpoints.url(work), {"n": n}) for n in range(3)]
    created = sdk.batches.create(name, jobs, type="analysis", priority="high", options={"max_parallel": 2})
    assert (created.name, created.status, created.jobs.total, created.priority) == (name, "queued", 3, "high")
    assert created.signing_secret and created.signing_secret.startswith("whsec_")

    seen: list[Progress] = []
    done = sdk.batches.wait_for_completion(created.batch_id, on_progress=seen.append, poll_interval=POLL, timeout=WAIT)
    assert (done.status, done.succeeded, done.jobs.completed, done.jobs.failed) == ("completed", True, 3, 0)
    assert seen and seen[-1].percentage == 100 and seen[-1] == done.progress
    assert [p.percentage for p in seen] == sorted(p.percentage for p in seen)  # never goes back
    assert sorted(done.progress.completed_jobs) == ["j0", "j1", "j2"]
    # Every job call was signed with the batch's secret.
    calls = endpoints.calls_to(work)
    assert sorted(c.body["n"] for c in calls) == [0, 1, 2]
    assert all(verify_webhook(c.raw, c.headers, created.signing_secret).to_dict() == c.body for c in calls)

    status = sdk.batches.get_status(created.batch_id, include_jobs=True)
    assert (status.batch_id, status.name, status.type) == (created.batch_id, name, "analysis")
    assert status.status == "completed"
    assert status.individual_jobs is not None
    assert sorted((j["id"], j["status"]) for j in status.individual_jobs) == [
        ("j0", "completed"),
        ("j1", "completed"),
        ("j2", "completed"),
    ]
    assert status["progress"]["percentage"] == 100  # the Batches document's dict-style access

    page = sdk.batches.list(per_page=1)
    assert len(page.data) == 1 and page.pagination.per_page == 1
    assert page.pagination.total_pages == page.pagination.total_items >= 1
    assert names(sdk, name) == [created.batch_id]
    assert created.batch_id in {b.batch_id for b in sdk.batches.iterate(status="completed", per_page=2)}

    results = sdk.batches.get_results(created.batch_id)
    assert (results.batch_id, results.status, results.partial) == (created.batch_id, "completed", False)
    assert results.summary["jobs_total"] == 3 and results.summary["completed"] == 3
    assert results.aggregated_metrics["metrics.score"]["sum"] == 12
    assert sorted(j["id"] for j in results.job_results) == ["j0", "j1", "j2"]

    written = sdk.batches.get_results(created.batch_id, format="csv", output=tmp_path)
    assert written == tmp_path / f"{created.batch_id}.csv"
    with written.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:3] == ["job_id", "type", "status"]
    assert sorted((r[0], r[1], r[2]) for r in rows[1:]) == [(f"j{n}", "http", "completed") for n in range(3)]
    assert {r[rows[0].index("metrics.score")] for r in rows[1:]} == {"4"}

    sheet_path = sdk.batches.get_results(created.batch_id, format="xlsx", jobs=["j1"], output=tmp_path / "one.xlsx")
    assert sheet_path == tmp_path / "one.xlsx"
    sheet = openpyxl.load_workbook(sheet_path, read_only=True).active
    assert sheet is not None
    table = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert table[0][:3] == ["job_id", "type", "status"] and [row[:3] for row in table[1:]] == [
        ["j1", "http", "completed"]
    ]

    with BatchopsClient(KEY_B, stack.api) as other:
        for call in (
            lambda: other.batches.get_status(created.batch_id),
            lambda: other.batches.get_results(created.batch_id),
            lambda: other.batches.cancel(created.batch_id),
        ):
            with pytest.raises(NotFoundError) as refused:
                call()
            assert (refused.value.status, refused.value.code) == (404, "BATCH_NOT_FOUND")
        assert created.batch_id not in {b.batch_id for b in other.batches.iterate()}


def test_batches_cancel_a_slow_batch(sdk: BatchopsClient, endpoints: JobEndpoints) -> None:
    slow = f"/sdk/{unique('slow')}"
    endpoints.script(slow, Reply(200, {"ok": True}, delay=1.0))
    jobs = [http_job(f"j{n}", endpoints.url(slow)) for n in range(4)]
    created = sdk.batches.create(unique("sdk-cancel"), jobs, options={"max_parallel": 1})
    wait_for(lambda: endpoints.calls_to(slow), timeout=WAIT, what="the first job to start")

    cancelled = sdk.batches.cancel(created.batch_id, reason="changed my mind")
    assert (cancelled.batch_id, cancelled.status) == (created.batch_id, "cancelled")
    assert cancelled.reason == "changed my mind"
    assert cancelled.jobs_cancelled + cancelled.jobs_completed == 4 and cancelled.jobs_cancelled >= 2
    after = sdk.batches.wait_for_completion(created.batch_id, poll_interval=POLL, timeout=WAIT)
    assert (after.status, after.finished, after.succeeded) == ("cancelled", True, False)
    assert after.jobs.cancelled == cancelled.jobs_cancelled


def test_batches_retry_the_failed_job_into_a_new_batch(sdk: BatchopsClient, endpoints: JobEndpoints) -> None:
    good, bad = f"/sdk/{unique('good')}", f"/sdk/{unique('bad')}"
    endpoints.script(bad, Reply(500, {"error": "down"}))
    jobs = [http_job("ok", endpoints.url(good)), http_job("broken", endpoints.url(bad))]
    created = sdk.batches.create(unique("sdk-retry"), jobs, options={"max_retries": 0})
    failed = sdk.batches.wait_for_completion(created.batch_id, poll_interval=POLL, timeout=WAIT)
    assert (failed.status, failed.jobs.completed, failed.jobs.failed) == ("failed", 1, 1)
    assert failed.progress.failed_jobs == ["broken"]
    assert len(endpoints.calls_to(bad)) == 1  # max_retries 0: a 500 is not tried again

    endpoints.script(bad, Reply(200, {"fixed": True}))
    retried = sdk.batches.retry(created.batch_id)
    assert (retried.batch_id, retried.jobs_retried) == (created.batch_id, 1)
    assert retried.new_batch_id != created.batch_id
    again = sdk.batches.wait_for_completion(retried.new_batch_id, poll_interval=POLL, timeout=WAIT)
    assert (again.status, again.jobs.total, again.retry_of) == ("completed", 1, created.batch_id)
    assert sdk.batches.get_status(created.batch_id).retried_by == [retried.new_batch_id]
    assert len(endpoints.calls_to(bad)) == 2 and len(endpoints.calls_to(good)) == 1


# ---------------------------------------------------------------- idempotency


class LoseFirstCreateAnswer(httpx.HTTPTransport):
    """Forwards every request; the first `POST /v1/batches` reaches the stack (which creates the
    batch) and its answer is then dropped as a lost connection would drop it."""

    def __init__(self) -> None:
        super().__init__()
        self.creates: list[tuple[str, httpx.Response]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path == "/v1/batches":
            response.read()
            self.creates.append((request.headers["Idempotency-Key"], response))
            if len(self.creates) == 1:
                response.close()
                raise httpx.ReadError("connection reset after the request was sent", request=request)
        return response


def test_idempotent_batch_create_replayed_and_retried_after_a_lost_answer(
    stack: RunningStack, sdk: BatchopsClient, endpoints: JobEndpoints
) -> None:
    quick = endpoints.url(f"/sdk/{unique('quick')}")
    name, key = unique("sdk-idem"), unique("order")
    first = sdk.batches.create(name, [http_job("j", quick)], idempotency_key=key)
    second = sdk.batches.create(name, [http_job("j", quick)], idempotency_key=key)
    assert second.batch_id == first.batch_id and second.signing_secret == first.signing_secret
    with pytest.raises(BatchopsError) as reused:
        sdk.batches.create(name, [http_job("other", quick)], idempotency_key=key)
    assert reused.value.code == "IDEMPOTENCY_KEY_REUSED"

    transport, retries = LoseFirstCreateAnswer(), []
    lost_name = unique("sdk-lost")
    with BatchopsClient(
        KEY_SDK, stack.api, transport=transport, on_retry=retries.append, sleep=lambda seconds: None
    ) as flaky:
        made = flaky.batches.create(lost_name, [http_job("j", quick)])
    assert [type(r) for r in retries] == [Retry] and "ReadError" in retries[0].reason
    (key1, lost), (key2, replayed) = transport.creates
    assert key1 == key2  # the retry repeated the key, so the server answered with the first batch
    assert lost.status_code == replayed.status_code == 201
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert lost.json()["data"]["batch_id"] == made.batch_id

    for batch_id in (first.batch_id, made.batch_id):  # no unfinished batch left behind
        assert sdk.batches.wait_for_completion(batch_id, poll_interval=POLL, timeout=WAIT).succeeded
    assert names(sdk, name) == [first.batch_id]
    assert names(sdk, lost_name) == [made.batch_id]


# ---------------------------------------------------------------- operations


def test_operations_execute_transaction_dry_run_limits_and_async(sdk: BatchopsClient) -> None:
    bid = unique("sdk-ops")

    def op(op_id: str, status: str = "IN_PROGRESS", **fields: Any) -> dict[str, Any]:
        body = entry(new_correlation_id(), "PROCESS_START", status, batch_id=bid, **fields)
        return {"id": op_id, "method": "POST", "path": "/v1/events", "body": body}

    broken = Operation(id="broken", method="POST", path="/v1/events", body={"eventStatus": "SUCCESS"})

    sequential = sdk.operations.execute([op("a"), broken, op("b")])
    assert [(r.id, r.status) for r in sequential.results] == [("a", 201), ("broken", 422), ("b", 201)]
    assert (sequential.summary.succeeded, sequential.summary.failed, sequential.succeeded) == (2, 1, False)
    stopped = sdk.operations.execute([op("c"), broken, op("d")], continue_on_error=False)
    assert [r.status for r in stopped.results] == [201, 422, 424] and stopped.results[2].skipped
    parallel = sdk.operations.execute([op(f"p{n}") for n in range(5)], parallel=True)
    assert [r.id for r in parallel.results] == [f"p{n}" for n in range(5)]
    assert parallel.succeeded and parallel.summary.total == 5
    # a, b, c and the five parallel ones; d never ran.
    assert sdk.events.get_batch(bid).total_count == 8

    txn_ok, txn_failed = unique("sdk-txn"), unique("sdk-txn")

    def into(op_id: str, batch: str) -> dict[str, Any]:
        events = [entry(new_correlation_id(), "PROCESS_START", "IN_PROGRESS")]
        return {"id": op_id, "method": "POST", "path": "/v1/events/batch", "body": {"events": events, "batchId": batch}}

    done = sdk.operations.transaction([into("one", txn_ok), into("two", txn_ok)])
    assert done.succeeded and [r.status for r in done.results] == [201, 201]
    assert sdk.events.get_batch(txn_ok).total_count == 2
    failed = sdk.operations.transaction([into("first", txn_failed), broken, into("never", txn_failed)])
    assert [(r.id, r.status) for r in failed.results] == [("first", 201), ("broken", 422), ("never", 424)]
    assert failed.summary.model_dump() == {"total": 3, "succeeded": 1, "failed": 1, "skipped": 1}
    assert [r.id for r in failed.failed] == ["broken"]
    # Fail-fast: nothing after the failure ran. There is no rollback (the SDK's docstring says
    # so): the operation before it stays done.
    assert sdk.events.get_batch(txn_failed).total_count == 1
    # Failing at the first operation keeps nothing at all.
    nothing = unique("sdk-txn")
    first_fails = sdk.operations.transaction([broken, into("never", nothing)])
    assert [r.status for r in first_fails.results] == [422, 424]
    with pytest.raises(NotFoundError):
        sdk.events.get_batch(nothing)

    dry_bid = unique("sdk-dry")
    dry = sdk.operations.dry_run(
        [into("ok", dry_bid), broken, {"id": "nowhere", "method": "POST", "path": "/v1/x", "body": {}}]
    )
    assert [r.status for r in dry.results] == [200, 422, 404] and dry.valid is False
    assert dry.results[0].body == {"valid": True}
    assert sdk.operations.dry_run([into("ok", dry_bid)]).valid is True
    with pytest.raises(NotFoundError):
        sdk.events.get_batch(dry_bid)  # a dry run stores nothing

    limits = sdk.operations.limits()
    assert (limits.max_operations, limits.plan) == (100, "pro")
    assert "/v1/events" in limits.allowed_paths and "POST" in limits.allowed_methods
    assert limits.rate_limits is not None and limits.rate_limits.requests_per_second == 50

    async_bid = unique("sdk-async")
    queued = sdk.operations.submit_async([into("later", async_bid)])
    assert queued.status == "QUEUED" and queued.job_id == queued.id
    statuses: list[str] = []
    finished = sdk.operations.wait(
        queued.id, poll_interval=POLL, timeout=WAIT, on_status=lambda j: statuses.append(j.status)
    )
    assert finished.status == "COMPLETED" and finished.succeeded and statuses[-1] == "COMPLETED"
    assert finished.results is not None and [(r.id, r.status) for r in finished.results] == [("later", 201)]
    got = sdk.operations.get_async(queued.id)
    assert (got.status, got.summary, got.results) == (finished.status, finished.summary, finished.results)
    assert sdk.events.get_batch(async_bid).total_count == 1
    listed = next(job for job in sdk.operations.iterate_async(limit=5) if job.id == queued.id)
    assert listed.status == "COMPLETED" and listed.results is None  # lists carry no results
    assert queued.id in {job.id for job in sdk.operations.iterate_async(status="COMPLETED", limit=50)}


# ---------------------------------------------------------------- events


def test_events_create_batch_page_iterate_and_summary(sdk: BatchopsClient) -> None:
    bid = unique("sdk-events")
    done, broken = new_correlation_id(), new_correlation_id()
    one = sdk.events.create(entry(done, "PROCESS_START", "IN_PROGRESS", batch_id=bid, step_sequence=1))
    assert one.success and one.correlation_id == done and len(one.execution_ids) == 1

    batch = sdk.events.create_batch(
        [
            entry(done, "PROCESS_END", "SUCCESS", step_sequence=2),
            entry(broken, "PROCESS_START", "IN_PROGRESS"),
            {"eventStatus": "SUCCESS"},  # refused on its own, by index
            entry(broken, "STEP", "FAILURE", error_code="E42", error_message="no such customer"),
        ],
        batch_id=bid,
    )
    assert (batch.total_received, batch.total_inserted, batch.batch_id) == (4, 3, bid)
    assert [e.index for e in batch.errors] == [2] and "correlationId is required" in batch.errors[0].error
    assert len(batch.execution_ids) == 3 and sorted(set(batch.correlation_ids)) == sorted({done, broken})

    first = sdk.events.get_batch(bid, page_size=3)
    assert (first.batch_id, first.total_count, first.unique_correlation_ids, first.has_more) == (bid, 4, 2, True)
    assert (first.success_count, first.failure_count, len(first.events)) == (1, 1, 3)
    failures = sdk.events.get_batch(bid, event_status="FAILURE")
    assert [(e.correlation_id, e.error_code) for e in failures.events] == [(broken, "E42")]

    every = list(sdk.events.iterate_batch(bid, page_size=3))
    assert {e.execution_id for e in every} == {*one.execution_ids, *batch.execution_ids}
    assert all(e.batch_id == bid and e.process_name == "SDK_E2E" for e in every)
    assert [e.execution_id for e in every[:3]] == [e.execution_id for e in first.events]

    summary = sdk.events.get_summary(bid)
    assert (summary.batch_id, summary.total_processes, summary.completed, summary.failed, summary.in_progress) == (
        bid,
        2,
        1,
        1,
        0,
    )
    assert summary.correlation_ids == sorted([done, broken])


# ---------------------------------------------------------------- jobs, runs, batch operations


def test_jobs_runs_and_batch_operations(sdk: BatchopsClient, endpoints: JobEndpoints) -> None:
    path = f"/sdk/{unique('job')}"
    name = path.rsplit("/", 1)[1]
    job = sdk.jobs.create(name=name, endpoint_url=endpoints.url(path), slug=name, max_attempts=1, tags={"team": "sdk"})
    assert job.signing_secret and (job.name, job.endpoint_url, job.version, job["tags"]) == (
        name,
        endpoints.url(path),
        1,
        {"team": "sdk"},
    )
    endpoints.verify_with(path, job.signing_secret)
    endpoints.script(path, Reply(200, {"sent": True}))

    got = sdk.jobs.get(job.id)
    assert got.to_dict() == {k: v for k, v in job.to_dict().items() if k != "signing_secret"}
    by_slug = sdk.jobs.list(slug=name)
    assert [j.id for j in by_slug.data] == [job.id] and by_slug.has_more is False
    assert job.id in {j.id for j in sdk.jobs.iterate(limit=2)}
    changed = sdk.jobs.update(job.id, description="welcome emails", enabled=True)
    assert (changed.version, changed["description"]) == (2, "welcome emails")

    triggered = sdk.jobs.trigger(job.id, payload={"to": "a@example.com"}, metadata={"source": "sdk"})
    assert triggered.status == "queued" and triggered.idempotency_hit is False
    seen: list[str] = []
    run = sdk.runs.wait(triggered.id, poll_interval=POLL, timeout=WAIT, on_status=lambda r: seen.append(r.status))
    assert (run.status, run.result, run.job_id) == ("completed", {"sent": True}, job.id)
    assert run.metadata == {"source": "sdk"}
    assert seen[-1] == "completed" and sdk.runs.get(triggered.id).to_dict() == run.to_dict()
    [call] = endpoints.calls_to(path)
    assert call.verified and call.body["payload"] == {"to": "a@example.com"}

    bulk = sdk.jobs.trigger_bulk(job.id, [{"payload": {"n": n}} for n in range(3)])
    assert (bulk.total, bulk.created, bulk.duplicates, len(bulk.results)) == (3, 3, 0, 3)
    operation = sdk.batch_operations.wait(bulk.batch_id, poll_interval=POLL, timeout=WAIT)
    assert operation.finished and (operation.id, operation.job_id, operation.item_count) == (bulk.batch_id, job.id, 3)
    assert sdk.batch_operations.get(bulk.batch_id).finished_at == operation.finished_at
    assert next(o for o in sdk.batch_operations.iterate(limit=1) if o.id == bulk.batch_id).created_count == 3
    counts = sdk.batch_operations.run_counts(bulk.batch_id)
    assert (counts.total, counts.completed, counts.unsuccessful) == (3, 3, 0)
    runs = list(sdk.runs.iterate(batch_id=bulk.batch_id, limit=2))
    assert sorted(r.id for r in runs) == sorted(r.id for r in bulk.results)
    assert sorted(c.body["payload"].get("n", -1) for c in endpoints.calls_to(path)) == [-1, 0, 1, 2]
    assert all(c.verified for c in endpoints.calls_to(path))

    sdk.jobs.delete(job.id)
    with pytest.raises(NotFoundError):
        sdk.jobs.get(job.id)
    assert sdk.runs.get(triggered.id).status == "completed"  # its runs are kept


# ---------------------------------------------------------------- tracking


class Recording(httpx.HTTPTransport):
    """Forwards every request and keeps what was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return super().handle_request(request)


def stored(sdk: BatchopsClient, message_id: str) -> Any:
    try:
        return sdk.track.get_event(message_id)
    except NotFoundError:
        return None


def test_track_bulk_gzipped_and_upload(stack: RunningStack) -> None:
    run = uuid.uuid4().hex[:8]
    transport = Recording()
    with BatchopsClient(KEY_SDK, stack.api, transport=transport) as sdk:
        single = sdk.track.track(tracked(1, f"one-{run}", context={"app": "sdk"}))
        assert single.message_id == f"one-{run}"
        got = sdk.track.get_event(single.message_id)  # /v1/track stores at once
        assert (got.event, got.properties, got["context"]) == ("signup", {"n": 1}, {"app": "sdk"})

        small = sdk.track.bulk([tracked(n, f"small-{run}-{n}") for n in range(3)] + [{"event": "no properties"}])
        assert small.message_ids == [f"small-{run}-{n}" for n in range(3)]
        assert [(e.index, "properties" in e.error) for e in small.errors] == [(3, True)]

        big_events = [tracked(n, f"big-{run}-{n}", pad="z" * 600) for n in range(160)]
        assert len(json.dumps(big_events)) > 100_000
        big = sdk.track.bulk(big_events)
        assert big.message_ids == [e["messageId"] for e in big_events] and big.errors == []
        bulk_requests = [r for r in transport.sent if r.url.path == "/v1/bulk-track"]
        assert [r.headers.get("Content-Encoding") for r in bulk_requests] == [None, "gzip"]
        assert len(bulk_requests[1].content) < 100_000 / 5  # the pads compress well

        for message_id, n in ((f"small-{run}-2", 2), (f"big-{run}-159", 159)):
            event = wait_for(lambda m=message_id: stored(sdk, m), timeout=WAIT, interval=POLL, what=message_id)
            assert event.properties == {"n": n}
        assert stored(sdk, f"big-{run}-0")["pad"] == "z" * 600

        upload = sdk.track.upload([tracked(7, f"up-{run}"), {"event": "broken"}])
        assert upload.upload_id and upload.status == "pending"
        states: list[str] = []
        result = sdk.track.wait_for_upload(
            upload.upload_id, poll_interval=POLL, timeout=WAIT, on_status=lambda u: states.append(u.status)
        )
        assert result.message_ids == [f"up-{run}"] and [e.index for e in result.errors] == [1]
        assert states[-1] == "completed"
        final = sdk.track.get_upload(upload.upload_id)
        assert (final.status, final.accepted, final.rejected) == ("completed", 1, 1)
        assert wait_for(lambda: stored(sdk, f"up-{run}"), timeout=WAIT, interval=POLL).properties == {"n": 7}
    with BatchopsClient(KEY_B, stack.api) as other, pytest.raises(NotFoundError):
        other.track.get_event(f"one-{run}")


# ---------------------------------------------------------------- webhooks


def test_webhooks_create_list_deliver_verify_and_delete(sdk: BatchopsClient, endpoints: JobEndpoints) -> None:
    hook = f"/sdk/{unique('hook')}"
    subscription = sdk.webhooks.create(endpoints.url(hook), ["batch.created", "batch.completed"])
    try:
        assert subscription.secret and subscription.secret.startswith("whsec_")
        assert (subscription.url, subscription.events, subscription.status) == (
            endpoints.url(hook),
            ["batch.created", "batch.completed"],
            "active",
        )
        [listed] = [w for w in sdk.webhooks.list() if w.id == subscription.id]
        assert listed.url == subscription.url and listed.secret is None  # shown only on create

        created = sdk.batches.create(unique("sdk-hooked"), [http_job("j", endpoints.url(f"/sdk/{unique('w')}"))])
        assert sdk.batches.wait_for_completion(created.batch_id, poll_interval=POLL, timeout=WAIT).succeeded

        def ours() -> dict[str, Any]:
            return {c.body["event"]: c for c in endpoints.calls_to(hook) if c.body.get("batch_id") == created.batch_id}

        calls = wait_for(
            lambda: len(ours()) == 2 and ours(), timeout=WAIT, interval=POLL, what="both deliveries of the batch"
        )
        for kind, call in calls.items():
            event = verify_webhook(call.raw, call.headers, subscription.secret)
            assert (event.event, event.batch_id) == (kind, created.batch_id)
            assert sdk.webhooks.verify(call.raw.decode(), call.headers, subscription.secret) == event
        with pytest.raises(BatchopsError) as forged:
            verify_webhook(calls["batch.completed"].raw, calls["batch.completed"].headers, created.signing_secret)
        assert forged.value.code == "WEBHOOK_VERIFICATION_FAILED"

        ids = {call.headers["webhook-id"]: kind for kind, call in calls.items()}

        def delivered() -> list[Any]:
            found = [d for d in sdk.webhooks.deliveries(subscription.id) if d.id in ids and d.status == "delivered"]
            return found if len(found) == 2 else []

        logged = wait_for(delivered, timeout=WAIT, interval=POLL, what="the delivery log to show both deliveries")
        assert sorted((d.event, d.last_status_code) for d in logged) == [
            ("batch.completed", 200),
            ("batch.created", 200),
        ]
        assert all(d.attempts >= 1 and ids[d.id] == d.event for d in logged)
    finally:
        sdk.webhooks.delete(subscription.id)
    assert subscription.id not in {w.id for w in sdk.webhooks.list()}
    with pytest.raises(NotFoundError):
        sdk.webhooks.delete(subscription.id)


# ---------------------------------------------------------------- the async client


def test_async_client_across_resources(stack: RunningStack, endpoints: JobEndpoints) -> None:
    bid, process, run_tag = unique("sdk-aio"), new_correlation_id(), uuid.uuid4().hex[:8]
    path = f"/sdk/{unique('aio')}"
    endpoints.script(path, Reply(200, {"async": True}))

    async def scenario() -> dict[str, Any]:
        async with AsyncBatchopsClient(KEY_SDK, stack.api) as sdk:
            limits, created, tracked_one = await asyncio.gather(
                sdk.operations.limits(),
                sdk.events.create(entry(process, "PROCESS_START", "IN_PROGRESS", batch_id=bid)),
                sdk.track.track(tracked(3, f"aio-{run_tag}")),
            )
            page = await sdk.events.get_batch(bid)
            event = await sdk.track.get_event(tracked_one.message_id)
            job = await sdk.jobs.create(name=path.rsplit("/", 1)[1], endpoint_url=endpoints.url(path))
            triggered = await sdk.jobs.trigger(job.id, payload={"from": "asyncio"})
            run = await sdk.runs.wait(triggered.id, poll_interval=POLL, timeout=WAIT)
            entries = [e async for e in sdk.events.iterate_batch(bid)]
            batches = [b.batch_id async for b in sdk.batches.iterate(per_page=50)]
            await sdk.jobs.delete(job.id)
            try:
                await sdk.jobs.get(job.id)
                gone = False
            except NotFoundError:
                gone = True
            return {
                "limits": limits,
                "created": created,
                "page": page,
                "event": event,
                "run": run,
                "entries": entries,
                "batches": batches,
                "gone": gone,
            }

    out = asyncio.run(scenario())
    assert out["limits"].plan == "pro" and out["created"].correlation_id == process
    assert out["page"].total_count == 1 and out["page"].events[0].execution_id == out["created"].execution_id
    assert [e.execution_id for e in out["entries"]] == [out["created"].execution_id]
    assert (out["event"].message_id, out["event"].properties) == (f"aio-{run_tag}", {"n": 3})
    assert (out["run"].status, out["run"].result) == ("completed", {"async": True})
    assert [c.body["payload"] for c in endpoints.calls_to(path)] == [{"from": "asyncio"}]
    assert out["gone"] is True
    with BatchopsClient(KEY_SDK, stack.api) as sdk:
        assert out["batches"] == [b.batch_id for b in sdk.batches.iterate(per_page=50)]
