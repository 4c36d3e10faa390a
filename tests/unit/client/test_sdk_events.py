"""`client.events` (seed 000, the event log) against respx: paths, bodies, params and headers;
typed answers; page-number pagination; retries after 429; typed errors; and the entry builder
(the platform's Java SDK's body, valid for the API)."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
import respx

from batchops.models.event_log import EventLogEntry as ServerEntry
from batchops_client import AsyncBatchopsClient, BatchopsClient, NotFoundError, RateLimitError, ValidationError
from batchops_client.models.events import EventBatchCreated, EventBatchPage, EventLogEntry
from batchops_client.resources.events import event_log_entry, new_correlation_id, new_span_id, new_trace_id
from tests.event_log_sdk_bodies import ALL_FIELDS, MINIMAL

BASE = "http://api.test"
REQUIRED = {
    "correlation_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "trace_id": "0af7651916cd43dd8448eb211c80319c",
    "application_id": "hr-portal",
    "target_system": "workday",
    "originating_system": "hr-portal",
    "process_name": "EMPLOYEE_ONBOARDING",
    "event_type": "PROCESS_START",
    "event_status": "IN_PROGRESS",
    "summary": "Started onboarding for employee E-1001",
    "result": "STARTED",
}


def client(waits: list[float] | None = None, **options) -> BatchopsClient:
    sleep = waits.append if waits is not None else (lambda seconds: None)
    return BatchopsClient("bo_test", BASE, sleep=sleep, **options)


def stored(n: int, status: str = "SUCCESS") -> dict:
    return {
        "eventLogId": n,
        "executionId": f"exec-{n}",
        "correlationId": REQUIRED["correlation_id"],
        "traceId": REQUIRED["trace_id"],
        "batchId": "b1",
        "applicationId": "hr-portal",
        "targetSystem": "workday",
        "originatingSystem": "hr-portal",
        "processName": "EMPLOYEE_ONBOARDING",
        "eventType": "STEP",
        "eventStatus": status,
        "identifiers": {},
        "summary": "s",
        "result": "r",
        "eventTimestamp": "2026-03-01T10:00:00.000Z",
        "createdAt": "2026-03-01T10:00:01.000Z",
        "httpStatusCode": None,
    }


def page(numbers: list[int], number: int, has_more: bool) -> dict:
    return {
        "batchId": "b1",
        "events": [stored(n) for n in numbers],
        "totalCount": 5,
        "uniqueCorrelationIds": 1,
        "successCount": 5,
        "failureCount": 0,
        "page": number,
        "pageSize": 2,
        "hasMore": has_more,
    }


# ---------------------------------------------------------------- calls


@respx.mock(base_url=BASE)
def test_create_posts_the_entry_with_an_idempotency_key(respx_mock):
    route = respx_mock.post("/v1/events").respond(
        201, json={"success": True, "executionIds": ["exec-1"], "correlationId": REQUIRED["correlation_id"]}
    )
    entry = event_log_entry(**REQUIRED)
    created = client().events.create(entry)
    request = route.calls.last.request
    assert json.loads(request.content) == entry
    assert request.headers["Authorization"] == "Bearer bo_test" and request.headers["Idempotency-Key"]
    assert created.execution_id == "exec-1" and created["correlationId"] == REQUIRED["correlation_id"]
    client().events.create(entry, idempotency_key="k-1")
    assert route.calls.last.request.headers["Idempotency-Key"] == "k-1"


@respx.mock(base_url=BASE)
def test_create_batch_sends_batch_id_and_types_the_per_item_errors(respx_mock):
    answer = {
        "success": True,
        "totalReceived": 2,
        "totalInserted": 1,
        "executionIds": ["exec-1"],
        "correlationIds": [REQUIRED["correlation_id"]],
        "batchId": "b1",
        "errors": [{"index": 1, "error": "correlationId: must be 32 lowercase hex characters"}],
    }
    route = respx_mock.post("/v1/events/batch").respond(201, json=answer)
    entries = [event_log_entry(**REQUIRED), {"correlationId": "nope"}]
    created = client().events.create_batch(entries, batch_id="b1")
    assert json.loads(route.calls.last.request.content) == {"events": entries, "batchId": "b1"}
    assert isinstance(created, EventBatchCreated)
    assert (created.total_received, created.total_inserted, created.execution_ids) == (2, 1, ["exec-1"])
    assert created.errors[0].index == 1 and created["totalReceived"] == 2
    assert created.to_dict() == answer

    client().events.create_batch(entries[:1])
    assert "batchId" not in json.loads(route.calls.last.request.content)


@respx.mock(base_url=BASE)
def test_get_batch_encodes_the_id_and_sends_the_platforms_params(respx_mock):
    # The API decodes the segment with unquote_plus (the Java SDK's URLEncoder): "+" must go as %2B.
    route = respx_mock.get(url__regex=r"/v1/events/batch/[^/]+$").respond(200, json=page([1, 2], 1, True))
    got = client().events.get_batch("run 7+a", page=3, page_size=2, event_status="FAILURE")
    request = route.calls.last.request
    assert request.url.raw_path.decode().split("?")[0] == "/v1/events/batch/run%207%2Ba"
    assert dict(request.url.params) == {"page": "3", "pageSize": "2", "eventStatus": "FAILURE"}
    assert isinstance(got, EventBatchPage) and got.has_more and got.total_count == 5
    assert [event.execution_id for event in got.events] == ["exec-1", "exec-2"]
    assert got.events[0].event_log_id == 1 and got.events[0]["eventStatus"] == "SUCCESS"


@respx.mock(base_url=BASE)
def test_iterate_batch_walks_every_page_in_order(respx_mock):
    pages = [page([5, 4], 1, True), page([3, 2], 2, True), page([1], 3, False)]
    route = respx_mock.get("/v1/events/batch/b1").mock(side_effect=[httpx.Response(200, json=p) for p in pages])
    events = list(client().events.iterate_batch("b1", event_status="SUCCESS", page_size=2))
    assert all(isinstance(event, EventLogEntry) for event in events)
    assert [event.execution_id for event in events] == ["exec-5", "exec-4", "exec-3", "exec-2", "exec-1"]
    asked = [dict(call.request.url.params) for call in route.calls]
    assert asked == [{"page": str(n), "pageSize": "2", "eventStatus": "SUCCESS"} for n in (1, 2, 3)]


@respx.mock(base_url=BASE)
def test_iterate_batch_stops_at_an_empty_page(respx_mock):
    route = respx_mock.get("/v1/events/batch/b1").respond(200, json=page([], 1, True))
    assert list(client().events.iterate_batch("b1")) == []
    assert route.call_count == 1


@respx.mock(base_url=BASE)
def test_summary_is_typed(respx_mock):
    summary = {
        "batchId": "b1",
        "totalProcesses": 3,
        "completed": 1,
        "inProgress": 1,
        "failed": 1,
        "correlationIds": ["a", "b", "c"],
        "startedAt": "2026-03-01T10:00:00.000Z",
        "lastEventAt": None,
    }
    respx_mock.get("/v1/events/batch/b1/summary").respond(200, json=summary)
    got = client().events.get_summary("b1")
    assert (got.total_processes, got.in_progress, got.last_event_at) == (3, 1, None)
    assert got["correlationIds"] == ["a", "b", "c"]


def test_the_async_client_serves_the_same_calls():
    async def scenario():
        async with AsyncBatchopsClient("bo_test", BASE) as api:
            created = await api.events.create(event_log_entry(**REQUIRED))
            found = [event.execution_id async for event in api.events.iterate_batch("b1", page_size=2)]
            return created, found

    with respx.mock(base_url=BASE) as mock:
        mock.post("/v1/events").respond(201, json={"executionIds": ["exec-9"], "correlationId": "c"})
        mock.get("/v1/events/batch/b1").mock(
            side_effect=[httpx.Response(200, json=page([2], 1, True)), httpx.Response(200, json=page([1], 2, False))]
        )
        created, found = asyncio.run(scenario())
    assert created.execution_ids == ["exec-9"] and found == ["exec-2", "exec-1"]


# ---------------------------------------------------------------- errors and retries

LIMITED = {"error": "Rate limit exceeded.", "code": "RATE_LIMITED"}


@respx.mock(base_url=BASE)
def test_a_429_is_retried_after_retry_after(respx_mock):
    route = respx_mock.get("/v1/events/batch/b1/summary").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3"}, json=LIMITED),
            httpx.Response(200, json={"batchId": "b1", "correlationIds": []}),
        ]
    )
    waits: list[float] = []
    assert client(waits).events.get_summary("b1").batch_id == "b1"
    assert route.call_count == 2 and waits == [3.0]


@respx.mock(base_url=BASE)
def test_retries_end_with_the_429_as_a_rate_limit_error(respx_mock):
    route = respx_mock.post("/v1/events").respond(429, headers={"Retry-After": "3"}, json=LIMITED)
    waits: list[float] = []
    with pytest.raises(RateLimitError) as refused:
        client(waits, max_retries=2).events.create(event_log_entry(**REQUIRED))
    assert (refused.value.status, refused.value.code, refused.value.retry_after) == (429, "RATE_LIMITED", 3.0)
    assert route.call_count == 3 and waits == [3.0, 3.0]
    # Every attempt of one call repeats its Idempotency-Key.
    assert len({call.request.headers["Idempotency-Key"] for call in route.calls}) == 1


@respx.mock(base_url=BASE)
def test_refusals_are_typed_and_not_retried(respx_mock):
    missing = respx_mock.get("/v1/events/batch/nope").respond(
        404, json={"error": "No events for batch nope", "code": "BATCH_NOT_FOUND"}
    )
    invalid = respx_mock.post("/v1/events").respond(
        422, json={"error": "Request validation failed", "code": "VALIDATION_ERROR", "details": [{"field": "x"}]}
    )
    with pytest.raises(NotFoundError) as not_found:
        client().events.get_batch("nope")
    with pytest.raises(ValidationError) as refused:
        client().events.create({"correlationId": "x"})
    assert not_found.value.code == "BATCH_NOT_FOUND" and refused.value.details == [{"field": "x"}]
    assert missing.call_count == 1 and invalid.call_count == 1


# ---------------------------------------------------------------- the entry builder


def test_ids_have_the_formats_the_api_requires():
    assert re.fullmatch(r"[0-9a-f]{32}", new_correlation_id()) and re.fullmatch(r"[0-9a-f]{32}", new_trace_id())
    assert re.fullmatch(r"[0-9a-f]{16}", new_span_id())
    assert new_correlation_id() != new_correlation_id()


def test_the_minimal_entry_is_the_java_sdks_body_byte_for_byte():
    built = event_log_entry(**REQUIRED, span_id="00f067aa0ba902b7", event_timestamp="2026-03-01T10:00:00.123456Z")
    assert json.dumps(built, separators=(",", ":")) == MINIMAL


def test_every_field_in_the_java_sdks_order():
    sent = json.loads(ALL_FIELDS)
    snake = {re.sub(r"([A-Z])", r"_\1", k).lower(): v for k, v in sent.items()}
    built = event_log_entry(**snake)
    assert json.dumps(built, separators=(",", ":")) == ALL_FIELDS


def test_what_the_builder_fills_in_is_valid():
    built = event_log_entry(**REQUIRED)
    assert re.fullmatch(r"[0-9a-f]{16}", built["spanId"]) and built["identifiers"] == {} and built["metadata"] == {}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", built["eventTimestamp"])
    ServerEntry.model_validate(built)


def test_unknown_field_names_are_a_type_error():
    with pytest.raises(TypeError, match="eventName"):
        event_log_entry(**REQUIRED, eventName="x")
