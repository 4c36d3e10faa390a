"""Event log surface (seed 000) through the real function handlers, on moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import api_event, invoke, load_function

pytestmark = pytest.mark.usefixtures("aws")

CREATE_BATCH = load_function("create_event_batch")
CREATE_ONE = load_function("create_event")
GET_BATCH = load_function("get_event_batch")
SUMMARY = load_function("get_event_batch_summary")


def entry(n: int, *, status: str = "SUCCESS", corr: str | None = None, ts: str | None = None, **extra: Any):
    item = {
        "correlationId": corr or f"corr-{n}",
        "executionId": f"exec-{n}",
        "eventStatus": status,
        "timestamp": ts or f"2026-03-01T10:00:{n:02d}.000Z",
    }
    item.update(extra)
    return item


def post_batch(body: Any, workspace: str = "ws-a", headers: dict[str, str] | None = None):
    return invoke(CREATE_BATCH, api_event("create_event_batch", body=body, workspace=workspace, headers=headers))


def get_batch(batch_id: str, workspace: str = "ws-a", **query: str):
    return invoke(
        GET_BATCH,
        api_event("get_event_batch", path_params={"batchId": batch_id}, query=query, workspace=workspace),
    )


def summary(batch_id: str, workspace: str = "ws-a"):
    return invoke(SUMMARY, api_event("get_event_batch_summary", path_params={"batchId": batch_id}, workspace=workspace))


def test_batch_create_reports_per_item_errors_exactly_as_the_seed():
    events = [entry(i) for i in range(10)]
    del events[4]["correlationId"]
    status, _, body = post_batch({"events": events, "batchId": "batch-hr-upload-20260301"})
    assert status == 201
    assert body["success"] is True
    assert body["totalReceived"] == 10
    assert body["totalInserted"] == 9
    assert body["batchId"] == "batch-hr-upload-20260301"
    assert body["errors"] == [{"index": 4, "error": "Validation failed: correlationId is required"}]
    assert body["executionIds"] == [f"exec-{i}" for i in range(10) if i != 4]
    assert body["correlationIds"] == [f"corr-{i}" for i in range(10) if i != 4]


def test_batch_id_is_absent_not_null_without_one_and_ids_are_generated():
    status, _, body = post_batch({"events": [{"correlationId": "c1", "eventStatus": "STARTED"}]})
    assert status == 201
    assert "batchId" not in body
    assert body["errors"] == []
    (execution_id,) = body["executionIds"]
    assert execution_id.startswith("exec-") and len(execution_id) == len("exec-") + 36


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"eventStatus": "SUCCESS"}, "Validation failed: correlationId is required"),
        ({"correlationId": "c"}, "Validation failed: eventStatus is required"),
        (
            {"correlationId": "c", "eventStatus": "DONE"},
            "Validation failed: eventStatus must be one of STARTED, IN_PROGRESS, SUCCESS, FAILURE",
        ),
        (
            {"correlationId": "", "eventStatus": "STARTED"},
            "Validation failed: correlationId must be at least 1 characters",
        ),
        (
            {"correlationId": "c" * 201, "eventStatus": "STARTED"},
            "Validation failed: correlationId must be at most 200 characters",
        ),
        ({"correlationId": 7, "eventStatus": "STARTED"}, "Validation failed: correlationId must be a string"),
        (
            {"correlationId": "c", "eventStatus": "STARTED", "timestamp": "yesterday"},
            "Validation failed: timestamp must be an ISO 8601 date-time",
        ),
        (
            {"correlationId": "c", "eventStatus": "STARTED", "metadata": [1]},
            "Validation failed: metadata must be an object",
        ),
        (
            {"correlationId": "c", "eventStatus": "STARTED", "colour": "red"},
            "Validation failed: colour is not allowed (put extra data in metadata)",
        ),
        ("not an object", "Validation failed: event must be an object"),
        (
            {"correlationId": "c", "eventStatus": "STARTED", "timestamp": 1700000000},
            "Validation failed: timestamp must be an ISO 8601 date-time string",
        ),
        (
            {"correlationId": "c", "eventStatus": "STARTED", "timestamp": "0001-01-01T00:00:00+01:00"},
            "Validation failed: timestamp must be an ISO 8601 date-time between years 1000 and 9999",
        ),
        (
            {"correlationId": "c", "eventStatus": "STARTED", "timestamp": "9999-12-31T23:59:59-01:00"},
            "Validation failed: timestamp must be an ISO 8601 date-time between years 1000 and 9999",
        ),
        (
            {
                "correlationId": "c",
                "eventStatus": "STARTED",
                "metadata": json.loads('{"a":' * 300 + "1" + "}" * 300),
            },
            "Validation failed: metadata must not nest deeper than 32 levels",
        ),
        (
            # 60,000 four-byte characters: under 100 KB of characters, over it in UTF-8 bytes
            {"correlationId": "c", "eventStatus": "STARTED", "metadata": {"text": "\U0001f600" * 60_000}},
            "Validation failed: event exceeds 102400 bytes",
        ),
    ],
)
def test_each_invalid_item_is_reported_by_index(item, message):
    status, _, body = post_batch({"events": [entry(1), item]})
    assert status == 201
    assert body["totalInserted"] == 1
    assert body["errors"] == [{"index": 1, "error": message}]


def test_all_invalid_is_422_with_the_same_details_and_nothing_stored():
    status, _, body = post_batch({"events": [{"eventStatus": "SUCCESS"}, {"correlationId": "x"}], "batchId": "b-none"})
    assert status == 422
    assert body["code"] == "VALIDATION_FAILED"
    assert isinstance(body["error"], str)
    assert body["details"] == [
        {"index": 0, "error": "Validation failed: correlationId is required"},
        {"index": 1, "error": "Validation failed: eventStatus is required"},
    ]
    status, _, body = get_batch("b-none")
    assert status == 404


def test_duplicate_execution_ids_in_request_and_in_store_are_per_item_errors():
    status, _, body = post_batch({"events": [entry(1), entry(1, corr="other")], "batchId": "dups"})
    assert status == 201
    assert body["executionIds"] == ["exec-1"]
    assert body["errors"] == [{"index": 1, "error": "Duplicate executionId exec-1 in this request"}]

    status, _, body = post_batch({"events": [entry(1), entry(2)], "batchId": "dups"})
    assert status == 201
    assert body["executionIds"] == ["exec-2"]
    assert body["errors"] == [{"index": 0, "error": "executionId exec-1 already exists"}]

    # all duplicates: nothing valid, 422, and the stored entry is unchanged
    status, _, body = post_batch({"events": [entry(1, status="FAILURE")], "batchId": "dups"})
    assert status == 422
    assert body["details"] == [{"index": 0, "error": "executionId exec-1 already exists"}]
    _, _, page = get_batch("dups")
    assert [e["executionId"] for e in page["events"]] == ["exec-1", "exec-2"]
    assert page["events"][0]["eventStatus"] == "SUCCESS"


def test_posting_to_an_existing_batch_adds_to_it():
    post_batch({"events": [entry(1), entry(2)], "batchId": "grow"})
    post_batch({"events": [entry(3)], "batchId": "grow"})
    _, _, page = get_batch("grow")
    assert page["totalCount"] == 3


def test_get_batch_pages_in_timestamp_order_with_whole_batch_counts():
    events = [
        entry(5, status="SUCCESS", corr="a"),
        entry(1, status="STARTED", corr="a"),
        entry(3, status="FAILURE", corr="b"),
        entry(2, status="STARTED", corr="b"),
        entry(4, status="IN_PROGRESS", corr="c"),
    ]
    post_batch({"events": events, "batchId": "paged"})
    status, _, page = get_batch("paged", page="1", pageSize="2")
    assert status == 200
    assert [e["executionId"] for e in page["events"]] == ["exec-1", "exec-2"]
    assert page == {
        **page,
        "batchId": "paged",
        "totalCount": 5,
        "uniqueCorrelationIds": 3,
        "successCount": 1,
        "failureCount": 1,
        "page": 1,
        "pageSize": 2,
        "hasMore": True,
    }
    _, _, last = get_batch("paged", page="3", pageSize="2")
    assert [e["executionId"] for e in last["events"]] == ["exec-5"]
    assert last["hasMore"] is False
    stored = last["events"][0]
    assert stored == {
        "correlationId": "a",
        "executionId": "exec-5",
        "eventStatus": "SUCCESS",
        "eventName": None,
        "timestamp": "2026-03-01T10:00:05.000Z",
        "message": None,
        "metadata": None,
        "batchId": "paged",
    }


def test_get_batch_status_filter_counts_matching_events_only():
    post_batch(
        {
            "events": [entry(1, status="SUCCESS"), entry(2, status="FAILURE"), entry(3, status="SUCCESS")],
            "batchId": "f",
        }
    )
    _, _, page = get_batch("f", eventStatus="SUCCESS")
    assert page["totalCount"] == 2
    assert {e["eventStatus"] for e in page["events"]} == {"SUCCESS"}
    assert page["successCount"] == 2 and page["failureCount"] == 1


def test_default_paging_and_unknown_query_parameters_are_ignored():
    post_batch({"events": [entry(i) for i in range(25)], "batchId": "d"})
    status, _, page = get_batch("d", colour="blue")
    assert status == 200
    assert page["page"] == 1 and page["pageSize"] == 20 and len(page["events"]) == 20 and page["hasMore"] is True


@pytest.mark.parametrize(
    "query", [{"pageSize": "0"}, {"pageSize": "101"}, {"page": "0"}, {"page": "x"}, {"eventStatus": "DONE"}]
)
def test_bad_query_values_are_422(query):
    post_batch({"events": [entry(1)], "batchId": "q"})
    status, _, body = get_batch("q", **query)
    assert status == 422
    assert body["code"] == "VALIDATION_FAILED"
    assert body["details"][0]["field"] == next(iter(query))


def test_summary_classifies_processes_by_their_latest_event():
    events = [
        entry(1, status="STARTED", corr="done"),
        entry(2, status="SUCCESS", corr="done"),
        entry(3, status="STARTED", corr="broken"),
        entry(4, status="FAILURE", corr="broken"),
        entry(5, status="FAILURE", corr="recovered"),
        entry(6, status="IN_PROGRESS", corr="recovered"),
        entry(7, status="STARTED", corr="running"),
    ]
    post_batch({"events": events, "batchId": "sum"})
    status, _, body = summary("sum")
    assert status == 200
    assert body == {
        "batchId": "sum",
        "totalProcesses": 4,
        "completed": 1,
        "inProgress": 2,
        "failed": 1,
        "correlationIds": ["done", "broken", "recovered", "running"],
        "startedAt": "2026-03-01T10:00:01.000Z",
        "lastEventAt": "2026-03-01T10:00:07.000Z",
    }


def test_unknown_batch_is_404_for_events_and_summary():
    status, _, body = get_batch("nope")
    assert (status, body["code"]) == (404, "BATCH_NOT_FOUND")
    status, _, body = summary("nope")
    assert (status, body["code"]) == (404, "BATCH_NOT_FOUND")


def test_another_workspaces_batch_is_404():
    post_batch({"events": [entry(1)], "batchId": "private"}, workspace="ws-a")
    assert get_batch("private", workspace="ws-b")[0] == 404
    assert summary("private", workspace="ws-b")[0] == 404
    assert get_batch("private", workspace="ws-a")[0] == 200
    # the same executionId is free in another workspace
    status, _, body = post_batch({"events": [entry(1)], "batchId": "private"}, workspace="ws-b")
    assert status == 201 and body["totalInserted"] == 1


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        ("{not json", 400, "MALFORMED_JSON"),
        ("[1, 2]", 422, "VALIDATION_FAILED"),
        ('"events"', 422, "VALIDATION_FAILED"),
        ('{"events": "nope"}', 422, "VALIDATION_FAILED"),
        ('{"events": []}', 422, "VALIDATION_FAILED"),
        (
            '{"events": [{"correlationId": "c", "eventStatus": "STARTED"}], "batchId": ""}',
            422,
            "VALIDATION_FAILED",
        ),
        (
            '{"events": [{"correlationId": "c", "eventStatus": "STARTED"}], "batchId": 0}',
            422,
            "VALIDATION_FAILED",
        ),
        (
            json.dumps({"events": [{"correlationId": "c", "eventStatus": "STARTED"}], "batchId": "b" * 201}),
            422,
            "VALIDATION_FAILED",
        ),
        ("", 422, "VALIDATION_FAILED"),
    ],
)
def test_bad_request_bodies(raw, status, code):
    got_status, _, body = invoke(CREATE_BATCH, api_event("create_event_batch", raw_body=raw))
    assert (got_status, body["code"]) == (status, code)
    assert isinstance(body["error"], str) and body["error"]


def test_more_than_1000_events_is_422_and_1000_is_accepted():
    too_many = {"events": [{"correlationId": "c", "eventStatus": "STARTED"}] * 1001}
    status, _, body = post_batch(too_many)
    assert status == 422
    assert body["details"] == [{"field": "events", "error": "events must have at most 1000 items"}]
    status, _, body = post_batch(
        {
            "events": [{"correlationId": f"c{i}", "eventStatus": "STARTED"} for i in range(1000)],
            "batchId": "big",
        }
    )
    assert status == 201 and body["totalInserted"] == 1000
    _, _, page = get_batch("big", pageSize="100", page="10")
    assert page["totalCount"] == 1000 and len(page["events"]) == 100 and page["hasMore"] is False


def test_body_over_the_limit_is_413(monkeypatch):
    from batchops.settings import reset_settings

    monkeypatch.setenv("BATCHOPS_MAX_BODY_BYTES", "1000")
    reset_settings()
    status, _, body = post_batch({"events": [entry(i, message="x" * 100) for i in range(10)]})
    assert status == 413
    assert body["code"] == "PAYLOAD_TOO_LARGE"


def test_missing_authorizer_context_is_401_not_500():
    status, _, body = post_batch({"events": [entry(1)]}, workspace=None)
    assert (status, body) == (401, {"error": "Unauthorized", "code": "UNAUTHORIZED"})


def test_single_event_create_and_duplicate():
    event = api_event("create_event", body={"correlationId": "one", "eventStatus": "STARTED", "executionId": "exec-x"})
    status, _, body = invoke(CREATE_ONE, event)
    assert (status, body) == (201, {"success": True, "executionId": "exec-x", "correlationId": "one"})
    status, _, body = invoke(CREATE_ONE, event)
    assert (status, body["code"]) == (409, "DUPLICATE_EXECUTION_ID")


def test_single_event_invalid_is_422_with_field_details():
    status, _, body = invoke(CREATE_ONE, api_event("create_event", body={"eventStatus": "STARTED", "extra": 1}))
    assert status == 422
    fields = {d["field"]: d["error"] for d in body["details"]}
    assert fields == {
        "correlationId": "correlationId is required",
        "extra": "extra is not allowed (put extra data in metadata)",
    }


def test_timestamps_are_normalised_to_utc_milliseconds():
    post_batch(
        {
            "events": [entry(1, ts="2026-03-01T12:00:00.123456+02:00"), entry(2, ts="2026-03-01T09:00:00")],
            "batchId": "tz",
        }
    )
    _, _, page = get_batch("tz")
    assert [e["timestamp"] for e in page["events"]] == [
        "2026-03-01T09:00:00.000Z",
        "2026-03-01T10:00:00.123Z",
    ]


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "text/plain", "application/gzip", "application/merge-patch+json"],
)
def test_non_json_content_types_are_415(content_type):
    event = api_event("create_event_batch", raw_body='{"events": []}', headers={"Content-Type": content_type})
    status, _, body = invoke(CREATE_BATCH, event)
    assert (status, body["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_content_types_are_accepted(content_type):
    body = {"events": [entry(1)]}
    event = api_event("create_event_batch", raw_body=json.dumps(body), headers={"Content-Type": content_type})
    assert invoke(CREATE_BATCH, event)[0] == 201


def test_body_that_is_not_utf8_is_400_malformed_json():
    event = api_event("create_event_batch", raw_body=b"\xff\xfe{\x00", headers={"Content-Type": "application/json"})
    status, _, body = invoke(CREATE_BATCH, event)
    assert (status, body["code"]) == (400, "MALFORMED_JSON")


def test_metadata_keeps_any_json_number_and_nesting():
    metadata = {
        "tiny": 2.2250738585072014e-308,
        "huge": 10**40,
        "pi": 3.14159,
        "nested": {"list": [1, "a", None, True]},
    }
    status, _, _ = post_batch({"events": [entry(1, metadata=metadata)], "batchId": "meta"})
    assert status == 201
    _, _, page = get_batch("meta")
    assert page["events"][0]["metadata"] == metadata
    one = api_event("create_event", body={"correlationId": "m", "eventStatus": "STARTED", "metadata": metadata})
    assert invoke(CREATE_ONE, one)[0] == 201


class StubbornWrites:
    """The real (moto) client, except that BatchWriteItem never accepts entries whose executionId
    starts with `stubborn`: they always come back as UnprocessedItems, as throttled writes do."""

    def __init__(self, real):
        self.real = real

    def __getattr__(self, name):
        return getattr(self.real, name)

    def batch_write_item(self, RequestItems):
        ((table, requests),) = RequestItems.items()
        kept = [r for r in requests if not r["PutRequest"]["Item"]["executionId"]["S"].startswith("stubborn")]
        refused = [r for r in requests if r not in kept]
        if kept:
            self.real.batch_write_item(RequestItems={table: kept})
        return {"UnprocessedItems": {table: refused} if refused else {}}


@pytest.fixture
def stubborn_writes(aws, monkeypatch):
    from batchops.dal import batch, clients

    monkeypatch.setattr(batch, "MAX_DELAY", 0.0)
    monkeypatch.setenv("BATCHOPS_BATCH_WRITE_MAX_ATTEMPTS", "3")
    from batchops.settings import reset_settings

    reset_settings()
    clients.set_client("dynamodb", StubbornWrites(clients.dynamodb()))


@pytest.mark.usefixtures("stubborn_writes")
def test_items_aws_never_accepts_are_reported_per_item_not_dropped():
    events = [entry(1), {**entry(2), "executionId": "stubborn-2"}, entry(3)]
    status, _, body = post_batch({"events": events, "batchId": "partial"})
    assert status == 201
    assert body["executionIds"] == ["exec-1", "exec-3"]
    assert body["errors"] == [{"index": 1, "error": "Could not be stored after retries; send this event again"}]
    _, _, page = get_batch("partial")
    assert [e["executionId"] for e in page["events"]] == ["exec-1", "exec-3"]


@pytest.mark.usefixtures("stubborn_writes")
def test_a_batch_aws_refuses_entirely_is_503_with_per_item_details():
    events = [{**entry(1), "executionId": "stubborn-1"}, {**entry(2), "executionId": "stubborn-2"}]
    status, _, body = post_batch({"events": events, "batchId": "refused"})
    assert status == 503
    assert body["code"] == "STORAGE_ERROR"
    assert [d["index"] for d in body["details"]] == [0, 1]
    assert get_batch("refused")[0] == 404


def test_events_with_equal_timestamps_keep_the_order_they_were_sent_in():
    for n in range(5):
        batch = f"order-{n}"
        events = [
            {"correlationId": "p", "eventStatus": "STARTED"},
            {"correlationId": "p", "eventStatus": "IN_PROGRESS"},
            {"correlationId": "p", "eventStatus": "SUCCESS"},
        ]
        post_batch({"events": events, "batchId": batch})
        _, _, page = get_batch(batch)
        assert [e["eventStatus"] for e in page["events"]] == ["STARTED", "IN_PROGRESS", "SUCCESS"]
        assert summary(batch)[2]["completed"] == 1


def test_later_request_wins_a_timestamp_tie():
    same = "2026-03-01T10:00:00.000Z"
    post_batch({"events": [entry(1, status="STARTED", corr="p", ts=same)], "batchId": "tie"})
    post_batch({"events": [entry(2, status="FAILURE", corr="p", ts=same)], "batchId": "tie"})
    assert summary("tie")[2]["failed"] == 1


@pytest.mark.parametrize("batch_id", ["a/b", "a b", "x?y", "50%", "#1"])
def test_batch_ids_that_cannot_be_addressed_in_a_url_are_422(batch_id):
    status, _, body = post_batch({"events": [entry(1)], "batchId": batch_id})
    assert status == 422
    assert body["details"][0]["field"] == "batchId"


def test_unicode_metadata_is_stored_as_sent():
    metadata = {"name": "Zoë 😀", "city": "Zürich"}
    post_batch({"events": [entry(1, metadata=metadata)], "batchId": "uni"})
    assert get_batch("uni")[2]["events"][0]["metadata"] == metadata


def test_a_body_nested_beyond_the_parser_is_400_not_500():
    raw = '{"events": [' + "[" * 5000 + "]" * 5000 + "]}"
    status, _, body = invoke(CREATE_BATCH, api_event("create_event_batch", raw_body=raw))
    assert (status, body["code"]) == (400, "MALFORMED_JSON")
