"""The request logic every SDK call shares, sync and async: configuration, retries with full
jitter that honour Retry-After, idempotency keys that retries repeat, typed errors, pagination."""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx

from batchops_client import (
    APIConnectionError,
    AsyncBatchopsClient,
    AuthenticationError,
    BatchopsClient,
    BatchopsError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    RateLimitError,
    Retry,
    RetryPolicy,
    ServerError,
    ValidationError,
)
from batchops_client._core import retry_after

API = "http://api.test"
CREATED = {"success": True, "data": {"batch_id": "batch_1", "name": "n", "status": "queued"}}
JOBS = [{"id": "job_1", "type": "analysis"}]


def client(**options) -> tuple[BatchopsClient, list[float], list[Retry]]:
    waits: list[float] = []
    notices: list[Retry] = []
    made = BatchopsClient("bo_test", API, sleep=waits.append, on_retry=notices.append, **options)
    return made, waits, notices


# ---------------------------------------------------------------- configuration


def test_key_and_url_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("BATCHOPS_API_KEY", "bo_env")
    monkeypatch.setenv("BATCHOPS_BASE_URL", "http://env.test/")
    with respx.mock(base_url="http://env.test") as api:
        route = api.get("/v1/batches/b").respond(json={"data": {"batch_id": "b", "name": "n", "status": "queued"}})
        BatchopsClient().batches.get_status("b")
    assert route.calls.last.request.headers["Authorization"] == "Bearer bo_env"
    assert route.calls.last.request.headers["User-Agent"].startswith("batchops-python/")


def test_arguments_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("BATCHOPS_API_KEY", "bo_env")
    monkeypatch.setenv("BATCHOPS_BASE_URL", "http://env.test")
    assert BatchopsClient("bo_arg", "http://arg.test").base_url == "http://arg.test"


@pytest.mark.parametrize("make", [BatchopsClient, AsyncBatchopsClient])
def test_a_missing_key_or_url_is_a_clear_error(monkeypatch, make):
    monkeypatch.delenv("BATCHOPS_API_KEY", raising=False)
    monkeypatch.delenv("BATCHOPS_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match=r"api_key or \$BATCHOPS_API_KEY and base_url or \$BATCHOPS_BASE_URL"):
        make()
    with pytest.raises(ConfigurationError, match=r"BATCHOPS_BASE_URL") as missing:
        make(api_key="bo_x")
    assert "BATCHOPS_API_KEY" not in str(missing.value)


# ---------------------------------------------------------------- retries


@respx.mock(base_url=API)
def test_429_502_503_504_are_retried_and_retry_after_is_honoured(respx_mock):
    route = respx_mock.post("/v1/batches").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}, json={"error": "slow down", "code": "RATE_LIMITED"}),
            httpx.Response(502),
            httpx.Response(503, headers={"Retry-After": "2"}),
            httpx.Response(201, json=CREATED),
        ]
    )
    sdk, waits, notices = client(max_retries=3)
    assert sdk.batches.create("n", JOBS).batch_id == "batch_1"
    assert route.call_count == 4
    assert waits[0] == 7.0 and waits[2] == 2.0
    # No Retry-After: full jitter, a uniform draw in [0, initial * 2**attempt].
    assert 0.0 <= waits[1] <= RetryPolicy().initial_backoff * 2
    assert [(n.attempt, n.retry_after) for n in notices] == [(1, True), (2, False), (3, True)]
    assert notices[0].reason == "429 Too Many Requests" and notices[0].seconds == 7.0


@respx.mock(base_url=API)
def test_504_and_dropped_connections_are_retried_then_reported(respx_mock):
    respx_mock.get("/v1/batches/b").mock(
        side_effect=[httpx.Response(504), httpx.ConnectError("refused"), httpx.ReadError("reset")]
    )
    sdk, waits, _ = client(max_retries=2)
    with pytest.raises(APIConnectionError, match="could not reach") as failed:
        sdk.batches.get_status("b")
    assert isinstance(failed.value.__cause__, httpx.ReadError)
    assert len(waits) == 2


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422, 500])
def test_other_answers_are_not_retried(status):
    with respx.mock(base_url=API) as api:
        route = api.get("/v1/batches/b").respond(status, json={"error": "no", "code": "X"})
        sdk, waits, _ = client()
        with pytest.raises(BatchopsError):
            sdk.batches.get_status("b")
    assert route.call_count == 1 and waits == []


@respx.mock(base_url=API)
def test_the_last_429_becomes_a_rate_limit_error_with_its_retry_after(respx_mock):
    limited = httpx.Response(429, headers={"Retry-After": "3"}, json={"error": "slow down", "code": "RATE_LIMITED"})
    route = respx_mock.get("/v1/batches/b").mock(side_effect=[limited, limited, limited])
    sdk, waits, _ = client(max_retries=2)
    with pytest.raises(RateLimitError) as refused:
        sdk.batches.get_status("b")
    assert (refused.value.status, refused.value.code, refused.value.retry_after) == (429, "RATE_LIMITED", 3.0)
    assert route.call_count == 3 and waits == [3.0, 3.0]


@respx.mock(base_url=API)
def test_a_retry_after_longer_than_the_cap_is_raised_not_waited(respx_mock):
    respx_mock.post("/v1/batches").respond(429, headers={"Retry-After": "299"}, json={"code": "RATE_LIMITED"})
    sdk, waits, _ = client(max_retry_after=60)
    with pytest.raises(RateLimitError) as refused:
        sdk.batches.create("n", JOBS)
    assert refused.value.retry_after == 299.0 and waits == []


def test_retry_after_as_an_http_date():
    when = datetime.now(UTC) + timedelta(seconds=30)
    seconds = retry_after(httpx.Response(429, headers={"Retry-After": format_datetime(when, usegmt=True)}))
    assert seconds is not None and 25 <= seconds <= 30
    assert retry_after(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after(httpx.Response(429)) is None


def test_full_jitter_stays_within_its_cap():
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=4.0)
    assert [policy.backoff(n, draw=lambda low, high: high) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(0 <= policy.backoff(n) <= 4.0 for n in range(20))


# ---------------------------------------------------------------- idempotency keys


@respx.mock(base_url=API)
def test_every_post_carries_a_key_its_retries_repeat(respx_mock):
    route = respx_mock.post("/v1/batches").mock(
        side_effect=[
            httpx.Response(503),
            httpx.ConnectError("dropped"),
            httpx.Response(201, json=CREATED),
            httpx.Response(201, json=CREATED),
        ]
    )
    sdk, _, _ = client()
    sdk.batches.create("n", JOBS)
    sdk.batches.create("n", JOBS)
    keys = [call.request.headers["Idempotency-Key"] for call in route.calls]
    assert keys[0] == keys[1] == keys[2], "a retried create must repeat its key"
    assert keys[3] != keys[0], "another create is another key"


@respx.mock(base_url=API)
def test_a_given_idempotency_key_is_sent_and_gets_are_sent_without(respx_mock):
    post = respx_mock.post("/v1/batches").respond(201, json=CREATED)
    get = respx_mock.get("/v1/batches/b").respond(json={"data": {"batch_id": "b", "name": "n", "status": "queued"}})
    sdk, _, _ = client()
    sdk.batches.create("n", JOBS, idempotency_key="order-42")
    sdk.batches.get_status("b")
    assert post.calls.last.request.headers["Idempotency-Key"] == "order-42"
    assert "Idempotency-Key" not in get.calls.last.request.headers


# ---------------------------------------------------------------- typed errors


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ValidationError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (409, ConflictError),
        (413, ValidationError),
        (415, ValidationError),
        (422, ValidationError),
        (500, ServerError),
    ],
)
def test_errors_are_typed_and_keep_the_error_shape(status, kind):
    body = {"error": "Batch x not found", "code": "BATCH_NOT_FOUND", "details": [{"field": "batch_id"}]}
    with respx.mock(base_url=API) as api:
        api.get("/v1/batches/x").respond(status, json=body, headers={"x-amzn-RequestId": "req-123"})
        sdk, _, _ = client(max_retries=0)
        with pytest.raises(kind) as raised:
            sdk.batches.get_status("x")
    error = raised.value
    assert (error.status, error.code, error.details, error.request_id) == (
        status,
        "BATCH_NOT_FOUND",
        [{"field": "batch_id"}],
        "req-123",
    )
    assert str(error) == f"{status} BATCH_NOT_FOUND: Batch x not found (request req-123)"


@respx.mock(base_url=API)
def test_an_answer_that_is_not_json_is_still_a_typed_error(respx_mock):
    respx_mock.get("/v1/batches/x").respond(502, text="<html>Bad Gateway</html>")
    sdk, _, _ = client(max_retries=0)
    with pytest.raises(ServerError) as raised:
        sdk.batches.get_status("x")
    assert raised.value.status == 502 and raised.value.message == "Bad Gateway"
    assert raised.value.body == "<html>Bad Gateway</html>"


# ---------------------------------------------------------------- the async client


def test_the_async_client_retries_and_raises_the_same_way():
    async def scenario() -> tuple[str, list[float], int]:
        waits: list[float] = []

        async def sleep(seconds: float) -> None:
            waits.append(seconds)

        with respx.mock(base_url=API) as api:
            route = api.post("/v1/batches").mock(
                side_effect=[httpx.Response(429, headers={"Retry-After": "5"}), httpx.Response(201, json=CREATED)]
            )
            api.get("/v1/batches/gone").respond(404, json={"error": "gone", "code": "BATCH_NOT_FOUND"})
            async with AsyncBatchopsClient("bo_test", API, sleep=sleep) as sdk:
                created = await sdk.batches.create("n", JOBS)
                with pytest.raises(NotFoundError):
                    await sdk.batches.get_status("gone")
            keys = {call.request.headers["Idempotency-Key"] for call in route.calls}
        return created.batch_id, waits, len(keys)

    assert asyncio.run(scenario()) == ("batch_1", [5.0], 1)


def test_async_methods_are_coroutine_functions_with_the_plans_signature():
    sdk = AsyncBatchopsClient("bo_test", API)
    assert inspect.iscoroutinefunction(sdk.batches.create)
    assert "idempotency_key" in inspect.signature(sdk.batches.create).parameters
    assert "self" not in inspect.signature(BatchopsClient("bo_test", API).batches.create).parameters
    assert sdk.batches.create.__doc__ and "POST /v1/batches" in sdk.batches.create.__doc__


@respx.mock(base_url=API)
def test_a_key_still_in_progress_is_retried_not_reported(respx_mock):
    # A 504 while the first attempt still runs, then the retry meets its own key in progress: giving
    # up there would report as failed a create that happened.
    in_progress = {"error": "A request with this key is in progress", "code": "IDEMPOTENCY_IN_PROGRESS"}
    route = respx_mock.post("/v1/batches").mock(
        side_effect=[httpx.Response(504), httpx.Response(409, json=in_progress), httpx.Response(201, json=CREATED)]
    )
    sdk, waits, _ = client()
    assert sdk.batches.create("n", JOBS).batch_id == "batch_1"
    assert route.call_count == 3 and len(waits) == 2
    assert len({call.request.headers["Idempotency-Key"] for call in route.calls}) == 1


@respx.mock(base_url=API)
def test_other_conflicts_are_not_retried(respx_mock):
    route = respx_mock.delete("/v1/batches/b").respond(409, json={"error": "done", "code": "BATCH_ALREADY_FINISHED"})
    sdk, waits, _ = client()
    with pytest.raises(ConflictError):
        sdk.batches.cancel("b")
    assert route.call_count == 1 and waits == []


@respx.mock(base_url=API)
def test_a_success_that_is_not_json_is_a_clear_error(respx_mock):
    respx_mock.get("/v1/batches/b").respond(200, text="<html>a login page</html>")
    sdk, _, _ = client()
    with pytest.raises(BatchopsError, match="not JSON") as raised:
        sdk.batches.get_status("b")
    assert raised.value.code == "INVALID_RESPONSE" and "login page" in raised.value.body


def test_a_base_url_without_a_scheme_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="http:// or https://"):
        BatchopsClient("bo_test", "127.0.0.1:3000")
