"""`client.jobs`, `client.runs`, `client.batch_operations` (seed 001 in Strait's shapes) against
respx: snake_case bodies as the server reads them, PATCH nulls only when asked, triggers with the
run's idempotency key in header and body, Strait's cursor pages followed on `has_more` (an empty
page included), waits with an injected sleep, ids quoted into paths, typed errors."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import respx

from batchops_client import AsyncBatchopsClient, BatchopsClient, ConflictError, NotFoundError, WaitTimeout
from batchops_client.models.jobs import BatchOperation, BulkTrigger, Job, Run, RunCounts, TriggerDryRun, TriggeredRun
from tests.unit.client.conftest import API, query, sent

JOB = {
    "id": "job_1",
    "project_id": "ws-a",
    "name": "welcome",
    "slug": None,
    "endpoint_url": "https://hooks.example.com/welcome",
    "method": "POST",
    "headers": {},
    "timeout_secs": 30,
    "max_attempts": 3,
    "retry_backoff_secs": 2,
    "dedup_window_secs": 0,
    "enabled": True,
    "paused": False,
    "version": 1,
    "created_at": "2026-04-09T12:00:00Z",
    "updated_at": "2026-04-09T12:00:00Z",
    "signing_secret": "whsec_abc",
    "tags": {"team": "growth"},
}


def run(status: str, run_id: str = "run_1", **more) -> dict:
    return {"id": run_id, "job_id": "job_1", "project_id": "ws-a", "status": status, "attempt": 1, **more}


def bop(finished_at=None, **more) -> dict:
    return {
        "id": "bop_1",
        "project_id": "ws-a",
        "job_id": "job_1",
        "item_count": 3,
        "created_count": 2,
        "created_by": "apikey:k1",
        "created_at": "2026-04-09T12:00:00Z",
        "finished_at": finished_at,
        **more,
    }


# ---------------------------------------------------------------- jobs


def test_create_takes_keywords_or_a_dict_and_keeps_extra_settings(sdk, api):
    route = api.post("/v1/jobs").mock(return_value=httpx.Response(201, json=JOB))
    job = sdk.jobs.create(name="welcome", endpoint_url=JOB["endpoint_url"], max_attempts=5, run_ttl_secs=60)
    assert isinstance(job, Job) and job.id == "job_1" and job.signing_secret == "whsec_abc"
    assert job["tags"] == {"team": "growth"} and job.to_dict() == JOB
    assert sent(route.calls.last.request) == {
        "name": "welcome",
        "endpoint_url": JOB["endpoint_url"],
        "max_attempts": 5,
        "run_ttl_secs": 60,
    }
    assert route.calls.last.request.headers["Idempotency-Key"]

    sdk.jobs.create({"name": "welcome", "endpoint_url": "https://a.test", "slug": "w"}, slug="w2")
    # A keyword wins over the dict's value.
    assert sent(route.calls.last.request) == {"name": "welcome", "endpoint_url": "https://a.test", "slug": "w2"}


def test_get_update_delete_quote_the_id(sdk, api):
    get = api.route(method="GET", path__startswith="/v1/jobs/").mock(return_value=httpx.Response(200, json=JOB))
    patch = api.route(method="PATCH", path__startswith="/v1/jobs/").mock(
        return_value=httpx.Response(200, json={**JOB, "version": 2})
    )
    delete = api.route(method="DELETE", path__startswith="/v1/jobs/").mock(return_value=httpx.Response(204))

    assert sdk.jobs.get("job/../x", project_id="ws-a").name == "welcome"
    assert get.calls.last.request.url.raw_path == b"/v1/jobs/job%2F..%2Fx?project_id=ws-a"

    changed = sdk.jobs.update("job_1", {"description": None}, enabled=False, timeout_secs=None)
    assert changed.version == 2 and patch.calls.last.request.url.path == "/v1/jobs/job_1"
    # The dict's null clears a setting; a keyword's None is left out.
    assert sent(patch.calls.last.request) == {"description": None, "enabled": False}
    assert "Idempotency-Key" not in patch.calls.last.request.headers

    assert sdk.jobs.delete("job 1") is None
    assert delete.calls.last.request.url.raw_path == b"/v1/jobs/job%201"


def test_list_is_one_page_and_iterate_follows_has_more(sdk, api):
    route = api.get("/v1/jobs").mock(
        side_effect=[
            httpx.Response(200, json={"data": [JOB, {**JOB, "id": "job_2"}], "has_more": True, "next_cursor": "c1"}),
            httpx.Response(200, json={"data": [{**JOB, "id": "job_3"}], "has_more": False}),
            httpx.Response(200, json={"data": [JOB], "has_more": True, "next_cursor": "c5"}),
        ]
    )
    assert [j.id for j in sdk.jobs.iterate(tag_key="team", tag_value="growth")] == ["job_1", "job_2", "job_3"]
    first, second = (query(call.request) for call in route.calls)
    assert first == {"tag_key": ["team"], "tag_value": ["growth"], "limit": ["100"]}
    assert second == {**first, "cursor": ["c1"]}
    page = sdk.jobs.list(limit=1, slug="welcome")
    assert page.has_more and page.next_cursor == "c5" and page.data[0].id == "job_1"
    assert query(route.calls.last.request) == {"limit": ["1"], "slug": ["welcome"]}


def test_unknown_job_is_not_found_with_code_details_and_request_id(sdk, api):
    api.get("/v1/jobs/job_x").mock(
        return_value=httpx.Response(
            404,
            json={"error": "Job job_x not found", "code": "JOB_NOT_FOUND", "details": {"job_id": "job_x"}},
            headers={"x-amzn-RequestId": "req-9"},
        )
    )
    with pytest.raises(NotFoundError) as caught:
        sdk.jobs.get("job_x")
    error = caught.value
    assert (error.status, error.code, error.details, error.request_id) == (
        404,
        "JOB_NOT_FOUND",
        {"job_id": "job_x"},
        "req-9",
    )


# ---------------------------------------------------------------- triggers


def test_trigger_sends_the_run_key_in_header_and_body_and_repeats_it_on_retry(sdk, api, waits):
    route = api.post("/v1/jobs/job_1/trigger").mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "1"}),
            httpx.Response(
                201, json={"id": "run_1", "status": "delayed", "payload_hash": "h", "idempotency_hit": False}
            ),
        ]
    )
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    triggered = sdk.jobs.trigger(
        "job_1", payload={"to": "a@b.c"}, priority=7, scheduled_at=when, metadata={"k": "v"}, idempotency_key="order-1"
    )
    assert isinstance(triggered, TriggeredRun) and triggered.id == "run_1" and not triggered.finished
    first, second = (call.request for call in route.calls)
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"] == "order-1"
    assert sent(second) == {
        "payload": {"to": "a@b.c"},
        "priority": 7,
        "metadata": {"k": "v"},
        "scheduled_at": "2030-01-02T03:04:05+02:00",
        "idempotency_key": "order-1",
    }
    assert waits == [1.0]


def test_trigger_without_a_key_sends_a_fresh_header_key_only(sdk, api):
    route = api.post("/v1/jobs/job_1/trigger").mock(
        return_value=httpx.Response(200, json={"id": "run_0", "status": "completed", "idempotency_hit": True})
    )
    hit = sdk.jobs.trigger("job_1")
    assert hit.idempotency_hit and hit.succeeded and hit.payload_hash is None
    sdk.jobs.trigger("job_1")
    first, second = (call.request for call in route.calls)
    assert sent(first) == {} and first.headers["Idempotency-Key"] != second.headers["Idempotency-Key"]


def test_trigger_dry_run(sdk, api):
    answer = {
        "job": {
            "id": "job_1",
            "name": "welcome",
            "slug": None,
            "execution_mode": "http",
            "queue": "default",
            "timeout_secs": 30,
            "max_attempts": 3,
            "version": 1,
        },
        "payload_hash": "abc",
        "payload": {"n": 1},
        "scheduled_at": None,
        "expires_at": None,
        "validation_warnings": [],
    }
    route = api.post("/v1/jobs/job_1/trigger").mock(return_value=httpx.Response(200, json=answer))
    dry = sdk.jobs.trigger_dry_run("job_1", payload={"n": 1})
    assert isinstance(dry, TriggerDryRun) and dry.job.queue == "default" and dry.payload_hash == "abc"
    assert sent(route.calls.last.request) == {"payload": {"n": 1}, "dry_run": True}


def test_trigger_bulk_posts_items_to_the_seed_path(sdk, api):
    answer = {
        "batch_id": "bop_1",
        "results": [
            {"id": "run_1", "status": "queued", "idempotency_hit": False},
            {"id": "run_1", "status": "queued", "idempotency_hit": True},
        ],
        "total": 2,
        "created": 1,
    }
    route = api.post("/v1/jobs/job%2F1/trigger-bulk").mock(return_value=httpx.Response(201, json=answer))
    when = datetime(2030, 1, 1, tzinfo=timezone(timedelta(hours=2)))
    items = [
        {"payload": {"n": 1}, "idempotency_key": "a", "scheduled_at": when},
        {"payload": {"n": 1}, "idempotency_key": "a"},
    ]
    bulk = sdk.jobs.trigger_bulk("job/1", items, idempotency_key="bulk-1")
    assert isinstance(bulk, BulkTrigger) and bulk.batch_operation_id == "bop_1" and bulk.duplicates == 1
    assert bulk.results[1].idempotency_hit
    request = route.calls.last.request
    assert request.headers["Idempotency-Key"] == "bulk-1"
    assert sent(request) == {
        "items": [
            {"payload": {"n": 1}, "idempotency_key": "a", "scheduled_at": "2030-01-01T00:00:00+02:00"},
            {"payload": {"n": 1}, "idempotency_key": "a"},
        ]
    }


def test_a_disabled_job_is_a_conflict(sdk, api):
    api.post("/v1/jobs/job_1/trigger").mock(
        return_value=httpx.Response(409, json={"error": "Job is disabled", "code": "JOB_DISABLED"})
    )
    with pytest.raises(ConflictError) as caught:
        sdk.jobs.trigger("job_1")
    assert caught.value.code == "JOB_DISABLED"


# ---------------------------------------------------------------- runs


def test_run_get_and_wait_until_finished(sdk, api, waits):
    route = api.get("/v1/runs/run_1").mock(
        side_effect=[
            httpx.Response(200, json=run("queued")),
            httpx.Response(200, json=run("executing")),
            httpx.Response(
                200,
                json=run(
                    "failed",
                    error="HTTP 500",
                    error_class="server",
                    error_detail={"code": "HTTP_ERROR", "message": "HTTP 500", "http_status": 500},
                ),
            ),
        ]
    )
    seen: list[str] = []
    done = sdk.runs.wait("run_1", poll_interval=0.25, on_status=lambda r: seen.append(r.status))
    assert isinstance(done, Run) and done.finished and not done.succeeded
    assert done.error_detail is not None and done.error_detail.http_status == 500
    assert seen == ["queued", "executing", "failed"] and waits == [0.25, 0.25] and len(route.calls) == 3


def test_run_wait_times_out_with_the_last_run(sdk, api, waits):
    api.get("/v1/runs/run_1").mock(return_value=httpx.Response(200, json=run("delayed")))
    with pytest.raises(WaitTimeout) as caught:
        sdk.runs.wait("run_1", poll_interval=2.0, timeout=5.0)
    assert caught.value.last.status == "delayed" and sum(waits) == 5.0


def test_runs_list_sends_filters_and_iterate_goes_past_an_empty_page(sdk, api):
    route = api.get("/v1/runs").mock(
        side_effect=[
            httpx.Response(200, json={"data": [run("completed", "run_3")], "has_more": True, "next_cursor": "c1"}),
            # A filtered page can be empty while more runs match.
            httpx.Response(200, json={"data": [], "has_more": True, "next_cursor": "c2"}),
            httpx.Response(200, json={"data": [run("failed", "run_1")], "has_more": False}),
        ]
    )
    ids = [r.id for r in sdk.runs.iterate(job_id="job_1", statuses=["completed", "failed"], limit=2)]
    assert ids == ["run_3", "run_1"]
    params = [query(call.request) for call in route.calls]
    assert params[0] == {"job_id": ["job_1"], "statuses": ["completed,failed"], "limit": ["2"]}
    assert params[1]["cursor"] == ["c1"] and params[2]["cursor"] == ["c2"]


# ---------------------------------------------------------------- batch operations


def test_batch_operation_get_wait_and_counts(sdk, api, waits):
    api.get("/v1/batch-operations/bop_1").mock(
        side_effect=[
            httpx.Response(200, json=bop()),
            httpx.Response(200, json=bop("2026-04-09T12:05:00Z")),
        ]
    )
    done = sdk.batch_operations.wait("bop_1", poll_interval=3.0)
    assert isinstance(done, BatchOperation) and done.finished and done.succeeded
    assert (done.total, done.created_count, done.duplicates) == (3, 2, 1) and waits == [3.0]

    runs = api.get("/v1/runs").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "data": [run("completed", "run_1"), run("failed", "run_2")],
                    "has_more": True,
                    "next_cursor": "c1",
                },
            ),
            httpx.Response(200, json={"data": [run("completed", "run_3")], "has_more": False}),
        ]
    )
    counts = sdk.batch_operations.run_counts("bop_1")
    assert isinstance(counts, RunCounts)
    assert (counts.total, counts.completed, counts.failed, counts.unsuccessful) == (3, 2, 1, 1)
    assert query(runs.calls[0].request) == {"batch_id": ["bop_1"], "limit": ["100"]}
    assert query(runs.calls[1].request)["cursor"] == ["c1"]


def test_batch_operation_wait_times_out(sdk, api, waits):
    api.get("/v1/batch-operations/bop_1").mock(return_value=httpx.Response(200, json=bop()))
    with pytest.raises(WaitTimeout) as caught:
        sdk.batch_operations.wait("bop_1", poll_interval=1.0, timeout=2.0)
    assert not caught.value.last.finished and waits == [1.0, 1.0]


def test_batch_operations_list_and_iterate(sdk, api):
    route = api.get("/v1/batch-operations").mock(
        side_effect=[
            httpx.Response(200, json={"data": [bop(id="bop_2")], "has_more": True, "next_cursor": "c1"}),
            httpx.Response(200, json={"data": [bop(id="bop_1")], "has_more": False}),
            httpx.Response(200, json={"data": [], "has_more": False}),
        ]
    )
    assert [b.id for b in sdk.batch_operations.iterate()] == ["bop_2", "bop_1"]
    assert query(route.calls[1].request) == {"limit": ["100"], "cursor": ["c1"]}
    page = sdk.batch_operations.list(project_id="ws-a")
    assert page.data == [] and not page.has_more
    assert query(route.calls.last.request) == {"project_id": ["ws-a"]}


def test_unknown_batch_operation_is_not_found_and_its_id_is_quoted(sdk, api):
    route = api.route(method="GET", path__startswith="/v1/batch-operations/").mock(
        return_value=httpx.Response(404, json={"error": "not found", "code": "BATCH_OPERATION_NOT_FOUND"})
    )
    with pytest.raises(NotFoundError) as caught:
        sdk.batch_operations.get("bop?x=1")
    assert caught.value.code == "BATCH_OPERATION_NOT_FOUND"
    assert route.calls.last.request.url.raw_path == b"/v1/batch-operations/bop%3Fx%3D1"


# ---------------------------------------------------------------- async client


def test_the_async_client_triggers_waits_and_pages():
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def main() -> None:
        with respx.mock(base_url=API) as api:
            trigger = api.post("/v1/jobs/job_1/trigger").mock(
                side_effect=[
                    httpx.Response(502),
                    httpx.Response(
                        201, json={"id": "run_1", "status": "queued", "payload_hash": "h", "idempotency_hit": False}
                    ),
                ]
            )
            api.get("/v1/runs/run_1").mock(
                side_effect=[httpx.Response(200, json=run("executing")), httpx.Response(200, json=run("completed"))]
            )
            api.get("/v1/jobs").mock(
                side_effect=[
                    httpx.Response(200, json={"data": [JOB], "has_more": True, "next_cursor": "c1"}),
                    httpx.Response(200, json={"data": [{**JOB, "id": "job_2"}], "has_more": False}),
                ]
            )
            api.get("/v1/runs/run_x").mock(
                return_value=httpx.Response(404, json={"error": "no", "code": "RUN_NOT_FOUND"})
            )
            async with AsyncBatchopsClient("bo_test", API, sleep=sleep) as sdk:
                triggered = await sdk.jobs.trigger("job_1", payload={"a": 1})
                done = await sdk.runs.wait(triggered.id, poll_interval=4.0)
                jobs = [job.id async for job in sdk.jobs.iterate()]
                with pytest.raises(NotFoundError):
                    await sdk.runs.get("run_x")
            keys = {call.request.headers["Idempotency-Key"] for call in trigger.calls}
            assert len(trigger.calls) == 2 and len(keys) == 1
            assert done.succeeded and jobs == ["job_1", "job_2"]

    asyncio.run(main())
    assert waits[-1] == 4.0 and len(waits) == 2


def test_a_jobs_runs_walk_every_page_of_that_job():
    with respx.mock(base_url="http://api.test") as api:
        route = api.get("/v1/runs").mock(
            side_effect=[
                httpx.Response(
                    200,
                    json={
                        "data": [{"id": "r1", "job_id": "job 1", "status": "completed"}],
                        "has_more": True,
                        "next_cursor": "c1",
                    },
                ),
                httpx.Response(
                    200, json={"data": [{"id": "r2", "job_id": "job 1", "status": "failed"}], "has_more": False}
                ),
            ]
        )
        client = BatchopsClient("bo_test", "http://api.test")
        assert [run.id for run in client.jobs.runs("job 1", status="failed")] == ["r1", "r2"]
    first, second = (dict(call.request.url.params) for call in route.calls)
    assert first == {"job_id": "job 1", "status": "failed", "limit": "100"}
    assert second == {**first, "cursor": "c1"}
