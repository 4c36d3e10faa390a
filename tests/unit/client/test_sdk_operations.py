"""`client.operations` (seed 003, `/v1/batch*`) against respx: the seed's camelCase bodies from
snake_case keywords, typed results, the async job's `data` envelope unwrapped (its `jobId` as
`id`), cursor pages walked while `nextCursor` is set (an empty page included), `wait` with an
injected sleep, idempotency keys kept across a retried POST, ids quoted into paths, typed errors."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import respx

from batchops_client import AsyncBatchopsClient, NotFoundError, WaitTimeout
from batchops_client.errors import ValidationError
from batchops_client.models.operations import AsyncOperation, DryRunResult, Limits, Operation, OperationsResult
from tests.unit.client.conftest import API, query, sent

OPS = [
    {"id": "create", "method": "POST", "path": "/v1/jobs", "body": {"name": "n", "endpoint_url": "https://x.test"}},
    {"id": "drop", "method": "DELETE", "path": "/v1/webhooks/wh_1"},
]
ANSWER = {
    "results": [
        {"id": "create", "status": 201, "body": {"id": "job_1"}},
        {"id": "drop", "status": 424, "body": {"error": "Skipped: a previous operation failed", "code": "SKIPPED"}},
    ],
    "summary": {"total": 2, "succeeded": 1, "failed": 0, "skipped": 1},
}


def job(status: str, **more) -> dict:
    return {"id": "opj_1", "status": status, "createdAt": "2026-04-09T12:00:00.000Z", **more}


def test_execute_sends_the_seed_body_and_parses_results(sdk, api):
    route = api.post("/v1/batch").mock(return_value=httpx.Response(200, json=ANSWER))
    result = sdk.operations.execute(OPS, continue_on_error=False, parallel=True)
    assert isinstance(result, OperationsResult)
    assert sent(route.calls.last.request) == {"operations": OPS, "continueOnError": False, "parallel": True}
    assert [r.id for r in result.results] == ["create", "drop"]
    assert result.results[0].succeeded and result.results[0].body == {"id": "job_1"}
    assert result.results[1].skipped and result.results[1].code == "SKIPPED" and not result.results[1].succeeded
    assert result.summary.skipped == 1 and not result.succeeded
    assert result.to_dict() == ANSWER


def test_execute_leaves_unset_options_to_the_api_and_takes_operation_models(sdk, api):
    route = api.post("/v1/batch").mock(return_value=httpx.Response(200, json=ANSWER))
    sdk.operations.execute([Operation(id="a", method="PATCH", path="/v1/jobs/job_1", body={"enabled": False})])
    assert sent(route.calls.last.request) == {
        "operations": [{"id": "a", "method": "PATCH", "path": "/v1/jobs/job_1", "body": {"enabled": False}}]
    }


def test_every_post_carries_an_idempotency_key_that_a_retry_repeats(sdk, api, waits):
    route = api.post("/v1/batch/transaction").mock(
        side_effect=[
            httpx.Response(503, json={"error": "busy"}),
            httpx.Response(200, json=ANSWER),
            httpx.Response(200, json=ANSWER),
        ]
    )
    sdk.operations.transaction(OPS)
    first, second = (call.request for call in route.calls)
    assert first.headers["Idempotency-Key"] and first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    # The transaction route forces fail-fast: no options are sent.
    assert sent(second) == {"operations": OPS}
    assert len(waits) == 1

    sdk.operations.transaction(OPS, idempotency_key="tx-42")
    assert route.calls.last.request.headers["Idempotency-Key"] == "tx-42"
    # A new call gets a new key.
    assert route.calls[0].request.headers["Idempotency-Key"] != "tx-42"


def test_dry_run_says_whether_every_operation_would_pass(sdk, api):
    answer = {
        "results": [
            {"id": "create", "status": 200, "body": {"valid": True}},
            {"id": "drop", "status": 404, "body": {"error": "Not found", "code": "NOT_FOUND"}},
        ],
        "summary": {"total": 2, "succeeded": 1, "failed": 1, "skipped": 0},
    }
    route = api.post("/v1/batch/dry-run").mock(return_value=httpx.Response(200, json=answer))
    result = sdk.operations.dry_run(OPS, parallel=False)
    assert isinstance(result, DryRunResult) and not result.valid
    assert [r.id for r in result.failed] == ["drop"]
    assert sent(route.calls.last.request) == {"operations": OPS, "parallel": False}


def test_limits_are_typed_and_read_under_the_wire_keys(sdk, api):
    body = {
        "maxOperations": 100,
        "timeoutMs": 60000,
        "allowedMethods": ["POST", "PATCH", "DELETE"],
        "allowedPaths": ["/v1/events", "/v1/jobs"],
        "maxBodyBytes": 5242880,
        "maxOperationBodyBytes": 102400,
        "plan": "pro",
        "rateLimits": {"requestsPerSecond": 50, "requestBurst": 100, "trackedEventsPerSecond": 1000},
    }
    route = api.get("/v1/batch/limits").mock(return_value=httpx.Response(200, json=body))
    limits = sdk.operations.limits()
    assert isinstance(limits, Limits)
    assert limits.max_operations == 100 and limits["maxOperations"] == 100 and limits.timeout_ms == 60000
    assert limits.rate_limits is not None and limits.rate_limits.tracked_events_per_second == 1000
    assert limits.to_dict() == body
    assert "Idempotency-Key" not in route.calls.last.request.headers


def test_submit_async_unwraps_the_envelope_and_names_the_job_id(sdk, api):
    route = api.post("/v1/batch/async").mock(
        return_value=httpx.Response(
            202, json={"data": {"jobId": "opj_1", "status": "QUEUED", "createdAt": "2026-04-09T12:00:00.000Z"}}
        )
    )
    queued = sdk.operations.submit_async(OPS, continue_on_error=True, idempotency_key="k-1")
    assert isinstance(queued, AsyncOperation)
    assert queued.id == queued.job_id == "opj_1" and queued["jobId"] == "opj_1"
    assert queued.status == "QUEUED" and not queued.finished and not queued.succeeded
    request = route.calls.last.request
    assert request.headers["Idempotency-Key"] == "k-1"
    assert sent(request) == {"operations": OPS, "continueOnError": True}


def test_get_async_quotes_the_id_and_parses_results(sdk, api):
    summary = {"total": 1, "succeeded": 1, "failed": 0, "skipped": 0}
    done = job("COMPLETED", results=[{"id": "op1", "status": 201, "body": {}}], summary=summary)
    route = api.route(method="GET", path__startswith="/v1/batch/async/").mock(
        return_value=httpx.Response(200, json={"data": done})
    )
    got = sdk.operations.get_async("a/b?c")
    assert route.calls.last.request.url.raw_path == b"/v1/batch/async/a%2Fb%3Fc"
    assert got.finished and got.succeeded and got.results is not None and got.results[0].status == 201
    assert got.created_at == "2026-04-09T12:00:00.000Z"


def test_a_completed_job_with_failed_operations_did_not_succeed(sdk, api):
    summary = {"total": 2, "succeeded": 1, "failed": 1, "skipped": 0}
    api.get("/v1/batch/async/opj_1").mock(
        return_value=httpx.Response(200, json={"data": job("COMPLETED", summary=summary)})
    )
    got = sdk.operations.get_async("opj_1")
    assert got.finished and not got.succeeded


def test_unknown_job_is_a_typed_not_found(sdk, api):
    api.get("/v1/batch/async/opj_x").mock(
        return_value=httpx.Response(
            404,
            json={"error": "Job not found", "code": "JOB_NOT_FOUND", "details": {"jobId": "opj_x"}},
            headers={"x-amzn-RequestId": "req-123"},
        )
    )
    with pytest.raises(NotFoundError) as caught:
        sdk.operations.get_async("opj_x")
    assert caught.value.status == 404 and caught.value.code == "JOB_NOT_FOUND"
    assert caught.value.details == {"jobId": "opj_x"} and caught.value.request_id == "req-123"


def test_a_refused_batch_is_a_validation_error_with_details(sdk, api):
    api.post("/v1/batch").mock(
        return_value=httpx.Response(
            422,
            json={
                "error": "Operation body must not exceed 100KB",
                "code": "VALIDATION_ERROR",
                "details": [{"index": 0}],
            },
        )
    )
    with pytest.raises(ValidationError) as caught:
        sdk.operations.execute(OPS)
    assert caught.value.details == [{"index": 0}]


def test_wait_polls_until_the_job_finishes(sdk, api, waits):
    api.get("/v1/batch/async/opj_1").mock(
        side_effect=[
            httpx.Response(200, json={"data": job("QUEUED")}),
            httpx.Response(200, json={"data": job("PROCESSING")}),
            httpx.Response(200, json={"data": job("FAILED", error="boom")}),
        ]
    )
    seen: list[str] = []
    done = sdk.operations.wait("opj_1", poll_interval=0.5, on_status=lambda j: seen.append(j.status))
    assert done.status == "FAILED" and done.finished and not done.succeeded and done.error == "boom"
    assert seen == ["QUEUED", "PROCESSING", "FAILED"] and waits == [0.5, 0.5]


def test_wait_times_out_with_the_last_state(sdk, api, waits):
    api.get("/v1/batch/async/opj_1").mock(return_value=httpx.Response(200, json={"data": job("PROCESSING")}))
    with pytest.raises(WaitTimeout) as caught:
        sdk.operations.wait("opj_1", poll_interval=1.0, timeout=3.0)
    assert caught.value.last.status == "PROCESSING" and "opj_1" in str(caught.value)
    assert sum(waits) == 3.0


def test_list_async_is_one_page_and_iterate_follows_the_cursor_through_an_empty_page(sdk, api):
    route = api.get("/v1/batch/async").mock(
        side_effect=[
            httpx.Response(
                200, json={"data": [job("COMPLETED", id="opj_3"), job("COMPLETED", id="opj_2")], "nextCursor": "c1"}
            ),
            # A filtered page can be empty with more to come.
            httpx.Response(200, json={"data": [], "nextCursor": "c2"}),
            httpx.Response(200, json={"data": [job("COMPLETED", id="opj_1")], "nextCursor": None}),
            httpx.Response(200, json={"data": [job("QUEUED", id="opj_9")], "nextCursor": "c9"}),
        ]
    )
    ids = [j.id for j in sdk.operations.iterate_async(status="COMPLETED")]
    assert ids == ["opj_3", "opj_2", "opj_1"]
    params = [query(call.request) for call in route.calls]
    assert params == [
        {"status": ["COMPLETED"], "limit": ["100"]},
        {"status": ["COMPLETED"], "limit": ["100"], "cursor": ["c1"]},
        {"status": ["COMPLETED"], "limit": ["100"], "cursor": ["c2"]},
    ]
    page = sdk.operations.list_async(limit=5)
    assert page.next_cursor == "c9" and [j.id for j in page.data] == ["opj_9"]
    assert query(route.calls.last.request) == {"limit": ["5"]}


def test_the_async_client_runs_the_same_calls():
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def main() -> None:
        with respx.mock(base_url=API) as api:
            submit = api.post("/v1/batch/async").mock(
                side_effect=[
                    httpx.Response(503),
                    httpx.Response(202, json={"data": {"jobId": "opj_1", "status": "QUEUED", "createdAt": "t"}}),
                ]
            )
            api.get("/v1/batch/async/opj_1").mock(
                side_effect=[
                    httpx.Response(200, json={"data": job("PROCESSING")}),
                    httpx.Response(200, json={"data": job("COMPLETED", summary={"total": 2, "succeeded": 2})}),
                ]
            )
            listed = api.get("/v1/batch/async").mock(
                side_effect=[
                    httpx.Response(200, json={"data": [job("QUEUED", id="opj_2")], "nextCursor": "c1"}),
                    httpx.Response(200, json={"data": [job("QUEUED", id="opj_1")]}),
                ]
            )
            async with AsyncBatchopsClient("bo_test", API, sleep=sleep) as sdk:
                queued = await sdk.operations.submit_async(OPS)
                done = await sdk.operations.wait(queued.id, poll_interval=2.0)
                ids = [j.id async for j in sdk.operations.iterate_async()]
            keys = {call.request.headers["Idempotency-Key"] for call in submit.calls}
            assert len(submit.calls) == 2 and len(keys) == 1
            assert done.succeeded and done.summary is not None and done.summary.total == 2
            assert ids == ["opj_2", "opj_1"] and query(listed.calls.last.request)["cursor"] == ["c1"]

    asyncio.run(main())
    assert waits[-1] == 2.0 and len(waits) == 2  # one retry backoff, one poll


def test_async_not_found_is_typed():
    async def main() -> None:
        with respx.mock(base_url=API) as api:
            api.post("/v1/batch/dry-run").mock(
                return_value=httpx.Response(404, json={"error": "Workspace not found", "code": "NOT_FOUND"})
            )
            async with AsyncBatchopsClient("bo_test", API) as sdk:
                with pytest.raises(NotFoundError) as caught:
                    await sdk.operations.dry_run(OPS)
            assert caught.value.code == "NOT_FOUND"

    asyncio.run(main())
