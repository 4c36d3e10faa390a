"""Event log surface (seed 000) through the real function handlers, on moto: the platform's
EventLogEntry, its answers and its counting rules, with the seed's per-item errors."""

from __future__ import annotations

import json
import math
import re
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.event_log_sdk_bodies import ALL_FIELDS, BATCH, MINIMAL, PAGE_KEYS, RECORD_KEYS, SUMMARY_KEYS
from tests.support import api_event, invoke, load_function, log_entry

pytestmark = pytest.mark.usefixtures("aws")

CREATE_BATCH = load_function("create_event_batch")
CREATE_ONE = load_function("create_event")
GET_BATCH = load_function("get_event_batch")
SUMMARY = load_function("get_event_batch_summary")

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SDK_CORR = "4bf92f3577b34da6a3ce929d0e0e4736"
SDK_BATCH = "batch-hr-upload-20260301"


def corr(name: str) -> str:
    return str(log_entry(name)["correlationId"])


def entry(name: str = "p", status: str = "IN_PROGRESS", *, second: int = 0, **extra: Any) -> dict[str, Any]:
    """A valid entry for process `name`, timestamped 10:00:`second` unless `extra` says otherwise."""
    return log_entry(name, status, **{"eventTimestamp": f"2026-03-01T10:00:{second:02d}.000Z", **extra})


def post_batch(body: Any, workspace: str = "ws-a", headers: dict[str, str] | None = None):
    return invoke(CREATE_BATCH, api_event("create_event_batch", body=body, workspace=workspace, headers=headers))


def post_raw(module, name: str, raw: str, workspace: str = "ws-a"):
    return invoke(module, api_event(name, raw_body=raw, workspace=workspace))


def post_one(body: Any, workspace: str = "ws-a"):
    return invoke(CREATE_ONE, api_event("create_event", body=body, workspace=workspace))


def batch_event(name: str, batch_id: str, **options: Any) -> dict[str, Any]:
    """As API Gateway sends it: the path percent-encoded, the path parameter decoded."""
    event = api_event(name, path_params={"batchId": quote(batch_id, safe="")}, **options)
    event["pathParameters"] = {"batchId": batch_id}
    return event


def get_batch(batch_id: str, workspace: str = "ws-a", **query: str):
    return invoke(GET_BATCH, batch_event("get_event_batch", batch_id, query=query, workspace=workspace))


def summary(batch_id: str, workspace: str = "ws-a"):
    return invoke(SUMMARY, batch_event("get_event_batch_summary", batch_id, workspace=workspace))


# ---------------------------------------------------------------- the Java SDK's bodies


def test_the_java_sdks_batch_body_gets_the_platforms_answer():
    status, _, body = post_raw(CREATE_BATCH, "create_event_batch", BATCH)
    assert status == 201, body
    # keys in the platform's order; no batchId (none was sent) and no errors (none happened)
    assert list(body) == ["success", "totalReceived", "totalInserted", "executionIds", "correlationIds"]
    assert body["success"] is True and body["totalReceived"] == 2 and body["totalInserted"] == 2
    assert all(UUID.match(e) for e in body["executionIds"]) and len(set(body["executionIds"])) == 2
    assert body["correlationIds"] == [SDK_CORR]  # distinct

    # Sent again: the entry without an idempotencyKey is stored again, the keyed one answers its
    # first executionId, and both count as inserted (as on the platform).
    status, _, again = post_raw(CREATE_BATCH, "create_event_batch", BATCH)
    assert status == 201
    assert again["totalInserted"] == 2
    assert again["executionIds"][0] not in body["executionIds"]
    assert again["executionIds"][1] == body["executionIds"][1]


def test_single_create_with_the_sdks_minimal_body_answers_in_the_platforms_shape():
    status, _, body = post_raw(CREATE_ONE, "create_event", MINIMAL)
    assert status == 201
    assert list(body) == ["success", "executionIds", "correlationId"]
    assert body["success"] is True and body["correlationId"] == SDK_CORR
    (execution_id,) = body["executionIds"]
    assert UUID.match(execution_id)


def test_a_stored_entry_comes_back_with_every_key_in_the_platforms_order():
    _, _, created = post_raw(CREATE_ONE, "create_event", ALL_FIELDS)
    status, _, page = get_batch(SDK_BATCH)
    assert status == 200
    (stored,) = page["events"]
    assert list(stored) == RECORD_KEYS
    sent = json.loads(ALL_FIELDS)
    assert stored == {
        **sent,
        "eventLogId": stored["eventLogId"],
        "executionId": created["executionIds"][0],
        "eventTimestamp": "2026-03-01T10:00:01.500Z",
        "createdAt": stored["createdAt"],
        "isDeleted": False,
    }
    assert isinstance(stored["eventLogId"], int) and stored["eventLogId"] >= 1
    assert ISO_MS.match(stored["createdAt"])


def test_fields_not_sent_come_back_null_and_empty_objects_stay_objects():
    post_batch({"events": [json.loads(MINIMAL)], "batchId": "nulls"})
    (stored,) = get_batch("nulls")[2]["events"]
    assert list(stored) == RECORD_KEYS
    absent = set(RECORD_KEYS) - set(json.loads(MINIMAL)) - {"eventLogId", "executionId", "createdAt", "isDeleted"}
    assert {k: stored[k] for k in absent if k != "batchId"} == dict.fromkeys(absent - {"batchId"})
    assert stored["batchId"] == "nulls"
    assert stored["identifiers"] == {} and stored["metadata"] == {}
    # the platform stores datetime2(3): digits past the millisecond are cut, not rounded
    assert stored["eventTimestamp"] == "2026-03-01T10:00:00.123Z"


def test_event_log_ids_are_distinct_and_rise_in_the_order_entries_are_stored():
    post_batch({"events": [entry(f"p{i}") for i in range(5)], "batchId": "ids"})
    post_one(entry("later", batchId="ids"))
    events = get_batch("ids")[2]["events"]
    ids = [e["eventLogId"] for e in events]
    # equal timestamps: the later stored comes first (newest first)
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 6
    assert events[0]["correlationId"] == corr("later")


# ---------------------------------------------------------------- per-item validation


def _without(name: str) -> dict[str, Any]:
    item = entry()
    del item[name]
    return item


INVALID = [
    (_without("correlationId"), "correlationId is required"),
    (_without("traceId"), "traceId is required"),
    (_without("identifiers"), "identifiers is required"),
    (_without("eventTimestamp"), "eventTimestamp is required"),
    (_without("result"), "result is required"),
    (entry(correlationId="4BF92F3577B34DA6A3CE929D0E0E4736"), "correlationId must be 32 lowercase hex characters"),
    (entry(correlationId="c1"), "correlationId must be 32 lowercase hex characters (W3C Trace Context)"),
    (entry(correlationId="4bf92f3577b34da6a3ce929d0e0e4736\n"), "correlationId must be 32 lowercase hex"),
    (entry(correlationId=7), "correlationId must be a string"),
    (entry(spanId="00f067aa0ba902b"), "spanId must be 16 lowercase hex characters"),
    (entry(parentSpanId="00F067AA0BA902B7"), "parentSpanId must be 16 lowercase hex characters"),
    (entry(spanLinks=["a3ce929d0e0e4736", "nope"]), "spanLinks.1 must be 16 lowercase hex characters"),
    (entry(spanLinks="a3ce929d0e0e4736"), "spanLinks must be an array"),
    (entry(eventType="FOO"), "eventType must be one of PROCESS_START, STEP, PROCESS_END, ERROR"),
    (entry(eventStatus="STARTED"), "eventStatus must be one of SUCCESS, FAILURE, IN_PROGRESS, SKIPPED, WARNING"),
    (entry(eventStatus="success"), "eventStatus must be one of"),
    (entry(httpMethod="TRACE"), "httpMethod must be one of GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS"),
    (entry(httpStatusCode=99), "httpStatusCode must be between 100 and 599"),
    (entry(httpStatusCode=600), "httpStatusCode must be between 100 and 599"),
    (entry(httpStatusCode="200"), "httpStatusCode must be an integer"),
    (entry(httpStatusCode=200.5), "httpStatusCode must be an integer"),
    (entry(stepSequence=-1), "stepSequence must be between 0 and 2147483647"),
    (entry(stepSequence=True), "stepSequence must be an integer"),
    (entry(executionTimeMs=2**31), "executionTimeMs must be between 0 and 2147483647"),
    (entry(traceId=""), "traceId must be at least 1 characters"),
    (entry(traceId="t" * 201), "traceId must be at most 200 characters"),
    # JavaScript lengths: an emoji is two UTF-16 code units, so 101 of them are 202
    (entry(applicationId="\U0001f600" * 101), "applicationId must be at most 200 characters"),
    (entry(processName="p" * 511), "processName must be at most 510 characters"),
    (entry(summary=""), "summary must be at least 1 characters"),
    (entry(result="r" * 2049), "result must be at most 2048 characters"),
    (entry(accountId="a" * 65), "accountId must be at most 64 characters"),
    (entry(stepName="s" * 511), "stepName must be at most 510 characters"),
    (entry(endpoint="e" * 511), "endpoint must be at most 510 characters"),
    (entry(errorCode="e" * 101), "errorCode must be at most 100 characters"),
    (entry(errorMessage="e" * 2049), "errorMessage must be at most 2048 characters"),
    (entry(batchId="b" * 201), "batchId must be at most 200 characters"),
    (entry(batchId="hr/upload"), "batchId must not contain '/'"),
    (entry(idempotencyKey="k" * 129), "idempotencyKey must be at most 128 characters"),
    (entry(idempotencyKey=""), "idempotencyKey must be at least 1 characters"),
    (entry(identifiers=[]), "identifiers must be an object"),
    (entry(identifiers=None), "identifiers must be an object"),
    (entry(metadata=None), "metadata must not be null (leave it out instead)"),
    (entry(spanId=None), "spanId must not be null (leave it out instead)"),
    (entry(requestPayload={"id": 1}), "requestPayload must be a string"),
    (entry(eventTimestamp="2026-03-01 10:00:00Z"), "eventTimestamp must be an ISO 8601 date-time with Z or an offset"),
    (entry(eventTimestamp="2026-03-01T10:00:00"), "eventTimestamp must be an ISO 8601 date-time"),
    (entry(eventTimestamp="2026-03-01T10:00:00z"), "eventTimestamp must be an ISO 8601 date-time"),
    (entry(eventTimestamp="2026-02-30T10:00:00Z"), "eventTimestamp must be an ISO 8601 date-time"),
    (entry(eventTimestamp="2026-03-01T24:00:00Z"), "eventTimestamp must be an ISO 8601 date-time"),
    (entry(eventTimestamp="2026-03-01T10:00:60Z"), "eventTimestamp must be an ISO 8601 date-time"),
    (entry(eventTimestamp="2026-03-01T10:00:00+05"), "eventTimestamp must be an ISO 8601 date-time"),
    (entry(eventTimestamp="2026-03-01T10:00:00+24:00"), "eventTimestamp must be an ISO 8601 date-time"),
    (entry(eventTimestamp=1772359200000), "eventTimestamp must be a string"),
    (entry(eventTimestamp="0000-01-01T00:00:00Z"), "eventTimestamp must be between 0001-01-01 and 9999-12-31"),
    (entry(eventTimestamp="9999-12-31T23:59:59-01:00"), "eventTimestamp must be between 0001-01-01 and 9999-12-31"),
    (entry(metadata=json.loads('{"a":' * 40 + "1" + "}" * 40)), "metadata must not nest deeper than 32 levels"),
    # 30,000 four-byte characters: 60,000 in JavaScript, 120,000 bytes of UTF-8
    (entry(summary="\U0001f600" * 30_000), "event exceeds 102400 bytes"),
    ("not an object", "event must be an object"),
    ([entry()], "event must be an object"),
]


@pytest.mark.parametrize(("item", "message"), INVALID, ids=[m[:60] for _, m in INVALID])
def test_each_invalid_item_is_a_per_item_error_by_index(item, message):
    status, _, body = post_batch({"events": [entry("a"), item, entry("b")], "batchId": "v"})
    assert status == 201, body
    assert body["success"] is True and body["totalReceived"] == 3 and body["totalInserted"] == 2
    assert body["correlationIds"] == [corr("a"), corr("b")]
    ((error),) = body["errors"]
    assert error["index"] == 1
    assert error["error"].startswith("Validation failed: " + message), error["error"]


def test_a_missing_correlation_id_reads_exactly_as_the_seed_shows():
    events = [entry(f"p{i}") for i in range(10)]
    del events[4]["correlationId"]
    status, _, body = post_batch({"events": events, "batchId": SDK_BATCH})
    assert status == 201
    assert body["errors"] == [{"index": 4, "error": "Validation failed: correlationId is required"}]
    assert body["totalReceived"] == 10 and body["totalInserted"] == 9 and len(body["executionIds"]) == 9
    assert body["batchId"] == SDK_BATCH


def test_several_problems_in_one_item_are_joined_in_field_order():
    bad = entry(eventStatus="DONE", spanId="x")
    del bad["correlationId"]
    _, _, body = post_batch({"events": [entry(), bad]})
    assert body["errors"] == [
        {
            "index": 1,
            "error": "Validation failed: correlationId is required; spanId must be 16 lowercase hex characters; "
            "eventStatus must be one of SUCCESS, FAILURE, IN_PROGRESS, SKIPPED, WARNING",
        }
    ]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2026-03-01T10:00:00Z", "2026-03-01T10:00:00.000Z"),
        ("2026-03-01T10:00:00.1Z", "2026-03-01T10:00:00.100Z"),
        ("2026-03-01T10:00:00.123456789Z", "2026-03-01T10:00:00.123Z"),
        ("2026-03-01T10:00Z", "2026-03-01T10:00:00.000Z"),
        ("2026-03-01T10:00:00+05:30", "2026-03-01T04:30:00.000Z"),
        ("2026-03-01T10:00:00+0530", "2026-03-01T04:30:00.000Z"),
        ("2026-03-01T00:30:00.999-01:00", "2026-03-01T01:30:00.999Z"),
        ("2024-02-29T10:00:00Z", "2024-02-29T10:00:00.000Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"),
    ],
)
def test_accepted_timestamps_are_stored_in_utc_milliseconds(sent, stored):
    post_batch({"events": [entry(eventTimestamp=sent)], "batchId": "ts"})
    assert get_batch("ts")[2]["events"][0]["eventTimestamp"] == stored


def test_what_the_platform_accepts_beyond_the_obvious():
    sent = entry(accountId=None, stepSequence=2.0, unknownField="ignored", batchId="lenient", spanLinks=[])
    status, _, body = post_batch({"events": [sent, entry("no-batch", batchId="")]})
    assert status == 201 and "errors" not in body and body["totalInserted"] == 2
    (stored,) = get_batch("lenient")[2]["events"]
    assert stored["accountId"] is None and "unknownField" not in stored
    assert stored["stepSequence"] == 2 and isinstance(stored["stepSequence"], int) and stored["spanLinks"] == []
    # an empty per-entry batchId is stored as sent, in no batch a URL could name
    (empty,) = [i for i in scan_entries() if i["correlationId"] == corr("no-batch")]
    assert empty["batchId"] == "" and "gsi1pk" not in empty


def scan_entries() -> list[dict[str, Any]]:
    import boto3

    from batchops.dal.items import deserialize

    items = boto3.client("dynamodb").scan(TableName="DomainTable")["Items"]
    return [i for i in map(deserialize, items) if i.get("type") == "event"]


def test_nothing_valid_is_422_with_per_item_details_and_nothing_stored():
    status, _, body = post_batch({"events": [_without("correlationId"), {"eventStatus": "SUCCESS"}], "batchId": "none"})
    assert status == 422
    assert body["code"] == "VALIDATION_FAILED" and isinstance(body["error"], str)
    assert body["details"][0] == {"index": 0, "error": "Validation failed: correlationId is required"}
    assert body["details"][1]["index"] == 1
    assert get_batch("none")[0] == 404


# ---------------------------------------------------------------- idempotencyKey


def test_a_stored_idempotency_key_answers_the_first_execution_id_and_changes_nothing():
    first = entry("first", "SUCCESS", idempotencyKey="emp-1", batchId="keys")
    _, _, one = post_batch({"events": [first]})
    original = one["executionIds"][0]
    # the same key again, other content and another batch: the stored entry stays as it was
    retry = entry("other", "FAILURE", idempotencyKey="emp-1")
    status, _, body = post_batch({"events": [retry, entry("new")], "batchId": "elsewhere"})
    assert status == 201 and "errors" not in body
    assert body["executionIds"][0] == original and body["totalInserted"] == 2
    assert body["correlationIds"] == [corr("other"), corr("new")]  # from the request, as the platform
    (stored,) = get_batch("keys")[2]["events"]
    assert (stored["executionId"], stored["eventStatus"], stored["batchId"]) == (original, "SUCCESS", "keys")
    assert get_batch("elsewhere")[2]["totalCount"] == 1
    # and through POST /v1/events
    status, _, single = post_one(entry("x", idempotencyKey="emp-1"))
    assert (status, single["executionIds"]) == (201, [original])


def test_an_idempotency_key_repeated_in_one_request_is_stored_once():
    events = [entry("a", idempotencyKey="dup"), entry("b"), entry("c", "SUCCESS", idempotencyKey="dup")]
    status, _, body = post_batch({"events": events, "batchId": "dups"})
    assert status == 201 and "errors" not in body
    assert body["totalInserted"] == 3
    assert body["executionIds"][0] == body["executionIds"][2] != body["executionIds"][1]
    _, _, page = get_batch("dups")
    assert page["totalCount"] == 2
    assert {e["correlationId"] for e in page["events"]} == {corr("a"), corr("b")}


def test_a_single_create_key_is_found_by_a_later_batch():
    _, _, one = post_one(entry("s", idempotencyKey="from-single"))
    _, _, body = post_batch({"events": [entry("s", idempotencyKey="from-single")]})
    assert body["executionIds"] == one["executionIds"]


def test_idempotency_keys_belong_to_a_workspace():
    _, _, a = post_batch({"events": [entry(idempotencyKey="shared")], "batchId": "k"}, workspace="ws-a")
    _, _, b = post_batch({"events": [entry(idempotencyKey="shared")], "batchId": "k"}, workspace="ws-b")
    assert a["executionIds"] != b["executionIds"]
    assert get_batch("k", workspace="ws-b")[2]["totalCount"] == 1


def test_a_key_taken_by_a_concurrent_request_answers_the_winners_execution_id(monkeypatch):
    """Two requests with one new key: both see it free, the conditional write decides, and the loser
    answers the winner's executionId (the platform answers 409 or a per-item SQL error here)."""
    from batchops.dal import batch

    real = batch.put_new_items

    def racing(table, items, **kwargs):
        # Another request stores the same key just before this one writes.
        winner = {**items[0], "executionId": "winner-execution-id", "pk": items[0]["pk"]}
        batch.put_items(table, [winner])
        return real(table, items, **kwargs)

    monkeypatch.setattr(batch, "put_new_items", racing)
    _, _, body = post_batch({"events": [entry(idempotencyKey="race")]})
    assert body["executionIds"] == ["winner-execution-id"]


# ---------------------------------------------------------------- batchId


def test_batch_id_is_echoed_only_when_sent_and_overrides_each_entrys_own():
    status, _, body = post_batch({"events": [entry("a", batchId="own-1"), entry("b")]})
    assert status == 201 and "batchId" not in body
    assert get_batch("own-1")[2]["totalCount"] == 1
    # no batch at all: stored, in no batch
    (unbatched,) = [i for i in scan_entries() if i["correlationId"] == corr("b")]
    assert "batchId" not in unbatched and "gsi1pk" not in unbatched

    _, _, body = post_batch({"events": [entry("c", batchId="own-2"), entry("d")], "batchId": "outer"})
    assert body["batchId"] == "outer"
    assert get_batch("own-2")[0] == 404
    page = get_batch("outer")[2]
    assert page["totalCount"] == 2 and {e["batchId"] for e in page["events"]} == {"outer"}


@pytest.mark.parametrize(
    ("batch_id", "field_error"),
    [
        ("", "batchId must be at least 1 characters"),
        ("b" * 201, "batchId must be at most 200 characters"),
        ("hr/upload", "batchId must not contain '/'"),
        (0, "batchId must be a string"),
    ],
)
def test_a_bad_request_batch_id_is_422(batch_id, field_error):
    status, _, body = post_batch({"events": [entry()], "batchId": batch_id})
    assert (status, body["code"]) == (422, "VALIDATION_FAILED")
    assert body["details"][0]["field"] == "batchId" and body["details"][0]["error"].startswith(field_error)


def test_batch_ids_that_need_encoding_are_kept_and_read_back():
    for batch_id in ("hr upload 2026", "50%", "%41", "#1?x", "a+b", "Zürich", "ü" * 200):
        post_batch({"events": [entry()], "batchId": batch_id})
        status, _, page = get_batch(batch_id)
        assert status == 200 and page["batchId"] == batch_id and page["totalCount"] == 1
        assert summary(batch_id)[2]["batchId"] == batch_id
    # a space may come as "+" (form encoding, the Java SDK's URLEncoder); a literal "+" then as %2B
    plus = invoke(SUMMARY, api_event("get_event_batch_summary", path_params={"batchId": "hr+upload+2026"}))
    assert plus[0] == 200 and plus[2]["batchId"] == "hr upload 2026"
    status, _, body = get_batch("ü" * 201)
    assert (status, body["details"]) == (422, [{"field": "batchId", "error": "batchId must be at most 200 characters"}])


# ---------------------------------------------------------------- GET batch: page, order, counts

# The research's worked example: A completes, B fails, C is running, D fails a step then ends well.
WORKED = [
    entry("A", "SUCCESS", second=1, eventType="PROCESS_START"),
    entry("A", "SUCCESS", second=2, eventType="STEP"),
    entry("A", "SUCCESS", second=3, eventType="PROCESS_END"),
    entry("B", "SUCCESS", second=4, eventType="PROCESS_START"),
    entry("B", "FAILURE", second=5, eventType="STEP"),
    entry("B", "FAILURE", second=6, eventType="PROCESS_END"),
    entry("C", "IN_PROGRESS", second=7, eventType="PROCESS_START"),
    entry("D", "FAILURE", second=8, eventType="STEP"),
    entry("D", "SUCCESS", second=9, eventType="PROCESS_END"),
]


def test_page_shape_order_and_whole_batch_counts():
    post_batch({"events": WORKED, "batchId": "worked"})
    status, _, page = get_batch("worked", pageSize="4")
    assert status == 200
    assert list(page) == PAGE_KEYS
    # newest eventTimestamp first
    assert [e["eventTimestamp"][17:19] for e in page["events"]] == ["09", "08", "07", "06"]
    # totalCount counts events; the others count processes (distinct correlationIds) with at least
    # one event of that status, whatever its type: B and D count as both
    assert {k: v for k, v in page.items() if k != "events"} == {
        "batchId": "worked",
        "totalCount": 9,
        "uniqueCorrelationIds": 4,
        "successCount": 3,
        "failureCount": 2,
        "page": 1,
        "pageSize": 4,
        "hasMore": True,
    }


def test_the_status_filter_narrows_the_events_and_total_but_not_the_process_counts():
    post_batch({"events": WORKED, "batchId": "filtered"})
    _, _, page = get_batch("filtered", eventStatus="FAILURE")
    assert [e["eventTimestamp"][17:19] for e in page["events"]] == ["08", "06", "05"]
    assert (page["totalCount"], page["uniqueCorrelationIds"], page["successCount"], page["failureCount"]) == (
        3,
        4,
        3,
        2,
    )
    _, _, none = get_batch("filtered", eventStatus="WARNING")
    assert none["events"] == [] and none["totalCount"] == 0 and none["hasMore"] is False
    assert none["uniqueCorrelationIds"] == 4


def test_pages_and_has_more():
    post_batch({"events": [entry(f"p{i}", second=i) for i in range(25)], "batchId": "pages"})
    _, _, first = get_batch("pages", colour="blue")  # unknown query parameters are ignored
    assert (first["page"], first["pageSize"], len(first["events"]), first["hasMore"]) == (1, 20, 20, True)
    _, _, second = get_batch("pages", page="2")
    assert (len(second["events"]), second["hasMore"]) == (5, False)
    seen = [e["correlationId"] for e in first["events"] + second["events"]]
    assert seen == [corr(f"p{i}") for i in reversed(range(25))]
    status, _, beyond = get_batch("pages", page="3")
    assert status == 200 and beyond["events"] == [] and beyond["totalCount"] == 25 and beyond["hasMore"] is False
    _, _, exact = get_batch("pages", page="5", pageSize="5")
    assert len(exact["events"]) == 5 and exact["hasMore"] is False
    _, _, whole = get_batch("pages", pageSize="100")
    assert len(whole["events"]) == 25


@pytest.mark.parametrize(
    "query",
    [
        {"pageSize": "0"},
        {"pageSize": "101"},
        {"page": "0"},
        {"page": "-1"},
        {"page": "x"},
        {"page": "1.5"},
        {"eventStatus": "failure"},
        {"eventStatus": "STARTED"},
    ],
)
def test_bad_query_values_are_422(query):
    post_batch({"events": [entry()], "batchId": "q"})
    status, _, body = get_batch("q", **query)
    assert (status, body["code"]) == (422, "VALIDATION_FAILED")
    assert body["details"][0]["field"] == next(iter(query))


def test_a_page_too_large_for_one_response_says_how_to_get_it():
    # 60 entries of about 95 KB: 5.7 MB in one page, over what a Lambda response may carry
    big = [entry(f"big{i}", requestPayload="x" * 95_000) for i in range(60)]
    for half in (big[:30], big[30:]):
        assert post_batch({"events": half, "batchId": "huge"})[0] == 201
    status, _, body = get_batch("huge", pageSize="60")
    assert (status, body["code"]) == (422, "PAGE_TOO_LARGE")
    assert body["details"][0]["field"] == "pageSize"
    fitting = int(re.search(r"first (\d+) events fit", body["error"]).group(1))
    assert 50 <= fitting < 60
    status, _, page = get_batch("huge", pageSize=str(fitting))
    assert status == 200 and len(page["events"]) == fitting


# ---------------------------------------------------------------- summary


def test_summary_counts_processes_as_the_platform_does():
    post_batch({"events": WORKED, "batchId": "sum"})
    status, _, body = summary("sum")
    assert status == 200
    # D has a FAILURE and a PROCESS_END SUCCESS, so it is both completed and failed; C, really still
    # running, is not counted: in progress is what is left of 4 - 2 - 2, at least 0
    assert body == {
        "batchId": "sum",
        "totalProcesses": 4,
        "completed": 2,
        "inProgress": 0,
        "failed": 2,
        "correlationIds": sorted(corr(n) for n in "ABCD"),
        "startedAt": "2026-03-01T10:00:01.000Z",
        "lastEventAt": "2026-03-01T10:00:09.000Z",
    }
    assert list(body) == SUMMARY_KEYS


def test_summary_of_a_finished_a_failed_and_a_running_process():
    events = [
        entry("done", second=1),
        entry("done", "SUCCESS", second=5),  # PROCESS_END SUCCESS
        entry("broken", second=2),
        entry("broken", "FAILURE", second=3, eventType="ERROR"),
        entry("running", second=4),
        entry("running", "SUCCESS", second=6, eventType="STEP"),  # a step's SUCCESS does not complete it
        # timestamps are event times, in UTC, not times of receipt
        entry("running", "WARNING", eventTimestamp="2026-03-01T11:00:30+01:00", eventType="STEP"),
    ]
    post_batch({"events": events, "batchId": "three"})
    body = summary("three")[2]
    assert (body["totalProcesses"], body["completed"], body["failed"], body["inProgress"]) == (3, 1, 1, 1)
    assert (body["startedAt"], body["lastEventAt"]) == ("2026-03-01T10:00:01.000Z", "2026-03-01T10:00:30.000Z")


def test_unknown_and_other_workspaces_batches_are_404():
    post_batch({"events": [entry()], "batchId": "private"}, workspace="ws-a")
    for workspace, batch_id in (("ws-b", "private"), ("ws-a", "never-written")):
        for status, _, body in (get_batch(batch_id, workspace=workspace), summary(batch_id, workspace=workspace)):
            assert (status, body["code"]) == (404, "BATCH_NOT_FOUND")
    assert get_batch("private")[0] == summary("private")[0] == 200


# ---------------------------------------------------------------- POST /v1/events


def test_single_create_stores_in_its_own_batch_and_refuses_with_field_details():
    status, _, body = post_one(entry("solo", "SUCCESS", batchId="solo-batch"))
    assert status == 201 and body["correlationId"] == corr("solo")
    assert get_batch("solo-batch")[2]["events"][0]["executionId"] == body["executionIds"][0]

    bad = entry(correlationId="C1", spanId=None)
    del bad["traceId"]
    status, _, body = post_one(bad)
    assert (status, body["code"]) == (422, "VALIDATION_FAILED")
    assert {d["field"]: d["error"] for d in body["details"]} == {
        "correlationId": "correlationId must be 32 lowercase hex characters (W3C Trace Context)",
        "traceId": "traceId is required",
        "spanId": "spanId must not be null (leave it out instead)",
    }
    status, _, body = post_one(entry(summary="\U0001f600" * 30_000))
    assert (status, body["code"]) == (422, "VALIDATION_FAILED")
    assert body["details"] == [{"field": "body", "error": "Validation failed: event exceeds 102400 bytes"}]


def test_json_values_are_kept_exactly():
    metadata = {"tiny": 2.2250738585072014e-308, "huge": 10**40, "pi": 3.14159, "one": 1.0, "nested": [1, None, True]}
    identifiers = {"employeeId": "E-1001", "name": "Zoë 😀", "n": 10**30}
    post_batch({"events": [entry(metadata=metadata, identifiers=identifiers, spanLinks=[])], "batchId": "meta"})
    (stored,) = get_batch("meta")[2]["events"]
    # equal as parsed JSON: 10**40 would have come back as the float 1e40 had it been rounded
    assert stored["metadata"] == metadata and stored["identifiers"] == identifiers and stored["spanLinks"] == []
    assert isinstance(stored["metadata"]["huge"], int) and isinstance(stored["metadata"]["one"], float)


@pytest.mark.parametrize(("literal", "says"), [("NaN", "NaN"), ("-Infinity", "-Infinity"), ("1e400", "too large")])
def test_nan_and_infinity_are_not_json_and_refuse_the_whole_request(literal, says):
    # Python's parser takes NaN and Infinity (and reads 1e400 as Infinity); no JSON parser does, so
    # the body is malformed JSON (docs/decisions.md, "One parsing path"): nothing is stored.
    raw = (
        '{"events": ['
        + json.dumps(entry("ok"))
        + ", "
        + json.dumps(entry()).replace('"metadata": {}', '"metadata": {"x": ' + literal + "}")
        + '], "batchId": "nan"}'
    )
    status, _, body = post_raw(CREATE_BATCH, "create_event_batch", raw)
    assert (status, body["code"]) == (400, "MALFORMED_JSON"), body
    assert says in body["error"]
    assert scan_entries() == []


# ---------------------------------------------------------------- lone UTF-16 surrogates

# JSON's \u escapes can name half of a surrogate pair on its own. Python's parser keeps it, but it is
# not Unicode text: it has no UTF-8 form, so it could be neither answered nor stored. The body is
# therefore not I-JSON (RFC 7493), and the whole request is 400 MALFORMED_JSON, before any entry is
# read (docs/decisions.md, "One parsing path"); the entry model still refuses one per item, naming
# the field (tests/unit/test_event_log_models.py), should one ever reach it another way.
MARK = "__LONE_SURROGATE__"
LONE = "lone UTF-16 surrogate"


def with_lone_surrogate(item: dict[str, Any], escape: str = "x\\ud800") -> str:
    """The item as raw JSON text with each `MARK` in it (a key or a string) turned into `escape`:
    the escape is in the body, as a client's JSON library writes it, not a Python string."""
    raw = json.dumps(item).replace(MARK, escape)
    assert "\\u" in raw
    return raw


FREE_TEXT_FIELDS = [
    "accountId",
    "traceId",
    "batchId",
    "applicationId",
    "targetSystem",
    "originatingSystem",
    "processName",
    "stepName",
    "summary",
    "result",
    "endpoint",
    "errorCode",
    "errorMessage",
    "requestPayload",
    "responsePayload",
    "idempotencyKey",
]
# (entry, where the lone surrogate is)
SURROGATE_CASES = [
    *[(entry(**{name: MARK}), name) for name in FREE_TEXT_FIELDS],
    (entry(identifiers={"k": MARK}), "identifiers.k"),
    (entry(identifiers={MARK: 1}), "a key of identifiers"),
    (entry(metadata={"a": [1, {"b": MARK}]}), "metadata.a.1.b"),
    (entry(metadata={"a": {MARK: None}}), "a key of metadata.a"),
    (entry(metadata={"x": "ok", "list": ["ok", MARK, MARK]}), "metadata.list.1"),
]
SURROGATE_IDS = [where for _, where in SURROGATE_CASES]


@pytest.mark.parametrize(("item", "where"), SURROGATE_CASES, ids=SURROGATE_IDS)
def test_a_lone_surrogate_anywhere_in_an_entry_refuses_the_whole_batch_as_malformed_json(item, where):
    raw = '{"events": [' + json.dumps(entry("a")) + ", " + with_lone_surrogate(item) + ", "
    raw += json.dumps(entry("b")) + '], "batchId": "lone"}'
    status, _, body = post_raw(CREATE_BATCH, "create_event_batch", raw)
    assert (status, body["code"]) == (400, "MALFORMED_JSON"), body
    assert LONE in body["error"] and "details" not in body
    assert scan_entries() == []
    assert get_batch("lone")[0] == 404


@pytest.mark.parametrize(("item", "where"), SURROGATE_CASES, ids=SURROGATE_IDS)
def test_a_lone_surrogate_in_a_single_create_is_400_malformed_json(item, where):
    # a low surrogate this time: both halves are refused
    status, _, body = post_raw(CREATE_ONE, "create_event", with_lone_surrogate(item, "\\udc00y"))
    assert (status, body["code"]) == (400, "MALFORMED_JSON"), body
    assert LONE in body["error"]
    assert scan_entries() == []


def test_a_lone_surrogate_in_the_requests_batch_id_is_400_malformed_json():
    raw = json.dumps({"events": [entry()], "batchId": MARK}).replace(MARK, "\\udbff")
    status, _, body = post_raw(CREATE_BATCH, "create_event_batch", raw)
    assert (status, body["code"]) == (400, "MALFORMED_JSON")
    assert scan_entries() == []


def test_a_surrogate_pair_is_one_character_and_is_kept():
    # \ud83d\ude00 is one emoji: the parser joins the pair, and the entry is stored and answered.
    item = entry(summary=MARK, requestPayload=MARK, identifiers={MARK: [MARK]}, batchId="pair")
    status, _, body = post_raw(CREATE_ONE, "create_event", with_lone_surrogate(item, "\\ud83d\\ude00"))
    assert status == 201, body
    (stored,) = get_batch("pair")[2]["events"]
    assert stored["summary"] == stored["requestPayload"] == "\U0001f600"
    assert stored["identifiers"] == {"\U0001f600": ["\U0001f600"]}


# ---------------------------------------------------------------- request-level errors


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        ("{not json", 400, "MALFORMED_JSON"),
        ("[1, 2]", 422, "VALIDATION_FAILED"),
        ('"events"', 422, "VALIDATION_FAILED"),
        ('{"events": "nope"}', 422, "VALIDATION_FAILED"),
        ('{"events": []}', 422, "VALIDATION_FAILED"),
        ("", 422, "VALIDATION_FAILED"),
        ('{"events": [' + "[" * 5000 + "]" * 5000 + "]}", 400, "MALFORMED_JSON"),
    ],
)
def test_bad_request_bodies(raw, status, code):
    got_status, _, body = post_raw(CREATE_BATCH, "create_event_batch", raw)
    assert (got_status, body["code"]) == (status, code)
    assert isinstance(body["error"], str) and body["error"]


def test_more_than_1000_events_is_422_and_1000_is_accepted():
    status, _, body = post_batch({"events": [entry()] * 1001})
    assert status == 422
    assert body["details"] == [{"field": "events", "error": "events must have at most 1000 items"}]
    status, _, body = post_batch({"events": [entry(f"c{i}") for i in range(1000)], "batchId": "big"})
    assert status == 201 and body["totalInserted"] == 1000 and len(body["correlationIds"]) == 1000
    _, _, page = get_batch("big", pageSize="100", page="10")
    assert page["totalCount"] == 1000 and len(page["events"]) == 100 and page["hasMore"] is False


def test_body_over_the_limit_is_413(monkeypatch):
    from batchops.settings import reset_settings

    monkeypatch.setenv("BATCHOPS_MAX_BODY_BYTES", "1000")
    reset_settings()
    status, _, body = post_batch({"events": [entry(f"p{i}") for i in range(10)]})
    assert (status, body["code"]) == (413, "PAYLOAD_TOO_LARGE")


def test_missing_authorizer_context_is_401_not_500():
    status, _, body = post_batch({"events": [entry()]}, workspace=None)
    assert (status, body) == (401, {"error": "Unauthorized", "code": "UNAUTHORIZED"})


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", "application/gzip"])
def test_non_json_content_types_are_415(content_type):
    event = api_event("create_event_batch", raw_body='{"events": []}', headers={"Content-Type": content_type})
    status, _, body = invoke(CREATE_BATCH, event)
    assert (status, body["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")


def test_body_that_is_not_utf8_is_400_malformed_json():
    event = api_event("create_event_batch", raw_body=b"\xff\xfe{\x00", headers={"Content-Type": "application/json"})
    status, _, body = invoke(CREATE_BATCH, event)
    assert (status, body["code"]) == (400, "MALFORMED_JSON")


# ---------------------------------------------------------------- storage failures


class RefusingWrites:
    """The real (moto) client, except that AWS never takes some writes: BatchWriteItem hands back
    entries whose summary starts with `stubborn` as UnprocessedItems (as throttled writes come
    back), TransactWriteItems (keyed entries) is always throttled, and with `no_ids` the eventLogId
    counter cannot be updated."""

    def __init__(self, real, *, no_ids: bool = False):
        self.real = real
        self.no_ids = no_ids

    def __getattr__(self, name):
        return getattr(self.real, name)

    def batch_write_item(self, RequestItems):
        ((table, requests),) = RequestItems.items()
        kept = [r for r in requests if not r["PutRequest"]["Item"]["summary"]["S"].startswith("stubborn")]
        refused = [r for r in requests if r not in kept]
        if kept:
            self.real.batch_write_item(RequestItems={table: kept})
        return {"UnprocessedItems": {table: refused} if refused else {}}

    def transact_write_items(self, **_):
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "TransactWriteItems")

    def update_item(self, **request):
        if self.no_ids:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "UpdateItem")
        return self.real.update_item(**request)


@pytest.fixture
def refusing(aws, monkeypatch):
    from batchops.dal import batch, clients
    from batchops.settings import reset_settings

    monkeypatch.setattr(batch, "MAX_DELAY", 0.0)
    monkeypatch.setenv("BATCHOPS_BATCH_WRITE_MAX_ATTEMPTS", "3")
    reset_settings()

    def install(**options: bool) -> None:
        clients.set_client("dynamodb", RefusingWrites(clients.dynamodb(), **options))

    return install


def test_entries_aws_never_takes_are_reported_per_item_not_dropped(refusing):
    refusing()
    events = [entry("a"), entry("b", summary="stubborn b"), entry("c", idempotencyKey="k-c"), entry("d")]
    status, _, body = post_batch({"events": events, "batchId": "partial"})
    assert status == 201
    not_stored = "Could not be stored after retries; send this event again"
    assert body["errors"] == [{"index": 1, "error": not_stored}, {"index": 2, "error": not_stored}]
    assert body["totalInserted"] == 2 and body["correlationIds"] == [corr("a"), corr("d")]
    _, _, page = get_batch("partial")
    assert sorted(e["executionId"] for e in page["events"]) == sorted(body["executionIds"])


def test_a_batch_aws_refuses_entirely_is_503_with_per_item_details(refusing):
    refusing()
    events = [entry("a", summary="stubborn a"), entry("b", idempotencyKey="k-b"), {"eventStatus": "SUCCESS"}]
    status, _, body = post_batch({"events": events, "batchId": "refused"})
    assert (status, body["code"]) == (503, "STORAGE_ERROR")
    assert [d["index"] for d in body["details"]] == [0, 1, 2]
    assert body["details"][2]["error"].startswith("Validation failed: ")
    assert get_batch("refused")[0] == 404


def test_when_ids_cannot_be_drawn_nothing_is_stored_and_the_answer_is_503(refusing):
    refusing(no_ids=True)
    status, _, body = post_batch({"events": [entry()], "batchId": "no-ids"})
    assert (status, body["code"]) == (503, "STORAGE_ERROR")
    status, _, body = post_one(entry())
    # the client learns what to do, not what AWS said
    assert (status, body) == (
        503,
        {"error": "Could not number the events; send the request again", "code": "STORAGE_ERROR"},
    )


# ---------------------------------------------------------------- properties

json_values = st.recursive(
    # JSON's values: json.dumps would write an infinite float as `Infinity`, which is not JSON
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
FIELDS = list(entry())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(
            json_values,
            st.builds(
                lambda base, changes: {**base, **changes},
                st.just(entry()),
                st.dictionaries(st.sampled_from([*FIELDS, "extra"]), json_values, max_size=3),
            ),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_any_items_get_an_answer_for_every_index_never_a_server_error(items):
    status, _, body = post_batch({"events": items, "batchId": "prop"})
    assert status in (201, 422), body
    if status == 201:
        answered = body["totalInserted"] + len(body.get("errors", []))
        assert answered == len(items) == body["totalReceived"]
    else:
        assert [d["index"] for d in body["details"]] == list(range(len(items)))


# Raw JSON text for what a client may put inside identifiers and metadata: lone surrogates (as the
# \u escapes a JSON library writes), integers of up to 4,300 digits, numbers past a double (1e400
# parses as Infinity), NaN, strings that look like numbers, and deep nesting.
_texts = st.text(alphabet=st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=6) | st.sampled_from(
    ["NaN", "Infinity", "-Infinity", "1e400", "null", "", "\ud800", "x\udfff", "\ud83d"]
)
# Longer integers fail Python's JSON parser on the whole body (sys.get_int_max_str_digits()) before
# any entry is read: a body-parsing matter, outside what one entry can do.
_huge_ints = st.builds(lambda sign, digits: sign + "9" * digits, st.sampled_from(["", "-"]), st.integers(16, 4300))
_raw_leaves = st.one_of(
    st.sampled_from(["null", "true", "false", "1e400", "-1e400", "1e-400", "-0", "NaN", "Infinity", "-Infinity"]),
    st.integers().map(str),
    _huge_ints,
    st.floats().map(json.dumps),
    _texts.map(json.dumps),
)


def _raw_object(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{json.dumps(key)}:{value}" for key, value in pairs) + "}"


_raw_values = st.recursive(
    _raw_leaves,
    lambda inner: (
        st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
        | st.lists(st.tuples(_texts, inner), max_size=4).map(_raw_object)
    ),
    max_leaves=12,
)
_raw_deep = st.builds(
    lambda depth, leaf, arrays: (
        ("[" * depth + leaf + "]" * depth) if arrays else ('{"a":' * depth + leaf + "}" * depth)
    ),
    st.integers(1, 300),
    _raw_leaves,
    st.booleans(),
)
_raw_objects = st.one_of(
    st.lists(st.tuples(_texts, _raw_values | _raw_deep), max_size=4).map(_raw_object),
    _raw_values,  # not always an object: then a per-item error
)


def _is_i_json(raw: str) -> bool:
    """Whether Python's lenient parser makes of `raw` only values that are JSON and Unicode: no
    NaN or Infinity (1e400 parses as Infinity), and no lone surrogate (no UTF-8 form). Every value
    is checked as the text is read: a later duplicate key must not hide a refused one."""

    def finite(text: str) -> float:
        if math.isinf(float(text)):
            raise ValueError(text)
        return float(text)

    def unicode_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        json.dumps(pairs, ensure_ascii=False, allow_nan=False).encode("utf-8")
        return dict(pairs)

    try:
        json.loads(raw, parse_float=finite, object_pairs_hook=unicode_pairs)
    except (ValueError, UnicodeEncodeError):
        return False
    return True


OPEN_OBJECT_PROBLEMS = (
    "Validation failed: identifiers ",
    "Validation failed: metadata ",
    "Validation failed: event exceeds 102400 bytes",  # thousands of 4,300-digit numbers
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_raw_objects, _raw_objects), min_size=1, max_size=4))
def test_no_value_inside_identifiers_or_metadata_makes_the_batch_route_answer_5xx(pairs):
    batch_id = f"hostile-{uuid.uuid4().hex}"
    raws = []
    for n, (identifiers, metadata) in enumerate(pairs):
        fixed = json.dumps({k: v for k, v in entry(f"h{n}").items() if k not in ("identifiers", "metadata")})
        raws.append(fixed[:-1] + f', "identifiers": {identifiers}, "metadata": {metadata}}}')
    raw = '{"events": [' + ",".join(raws) + f'], "batchId": "{batch_id}"}}'
    status, _, body = post_raw(CREATE_BATCH, "create_event_batch", raw)
    if not _is_i_json(raw):
        # a lone surrogate, NaN or a number past a double: the body is not JSON any route can take
        assert (status, body["code"]) == (400, "MALFORMED_JSON"), body
        return
    assert status in (201, 422), body
    refused = {e["index"]: e["error"] for e in body.get("errors", body.get("details", []))}
    assert all(m.startswith(OPEN_OBJECT_PROBLEMS) for m in refused.values()), refused
    accepted = [n for n in range(len(pairs)) if n not in refused]
    assert (status == 201) == bool(accepted)
    if not accepted:
        return
    assert body["totalInserted"] == len(accepted) and body["totalReceived"] == len(pairs)
    # what was accepted comes back as it was sent
    stored = {e["correlationId"]: e for e in get_batch(batch_id, pageSize="100")[2]["events"]}
    for n in accepted:
        entry_stored = stored[corr(f"h{n}")]
        assert entry_stored["identifiers"] == json.loads(pairs[n][0])
        assert entry_stored["metadata"] == json.loads(pairs[n][1])
    # and one of them alone through POST /v1/events is a 201 too
    status, _, one = post_raw(CREATE_ONE, "create_event", raws[accepted[0]])
    assert status == 201, one
