"""The Event log surface over real HTTP through the local stack (gateway, authorizer, functions, moto),
fed the bodies the platform's Java SDK sends and read back in the platform's shapes."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import uuid
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest

from batchops_client import BatchopsClient, NotFoundError, ValidationError
from batchops_client.resources.events import event_log_entry, new_correlation_id, new_trace_id
from tests.e2e.conftest import KEY_A, KEY_B, ROOT
from tests.e2e.harness import RunningStack
from tests.event_log_sdk_bodies import ALL_FIELDS, BATCH, MINIMAL, PAGE_KEYS, RECORD_KEYS, SUMMARY_KEYS, unique
from tests.support import log_entry

UNAUTHORIZED = {"error": "Unauthorized", "code": "UNAUTHORIZED"}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
JSON = {"Content-Type": "application/json", "Accept": "application/json"}  # the Java SDK's headers


def client(stack: RunningStack, key: str | None = KEY_A) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=stack.api, headers=headers, timeout=30)


def batch_id() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}"


def entry(name: str, status: str = "IN_PROGRESS", **extra: Any) -> dict[str, Any]:
    return log_entry(f"{name}-{uuid.uuid4().hex}", status, **extra)


def test_the_java_sdks_bodies_are_taken_and_read_back_in_the_platforms_shapes(stack):
    tag = uuid.uuid4().hex[:12]
    sdk_batch = f"batch-hr-upload-{tag}"
    with client(stack) as http:
        # EventLogClient.createEvent(minimal): the bare entry
        single = http.post("/v1/events", content=MINIMAL, headers=JSON)
        assert single.status_code == 201, single.text
        assert list(single.json()) == ["success", "executionIds", "correlationId"]
        assert single.json()["success"] is True and UUID.match(single.json()["executionIds"][0])

        # EventLogClient.createEvents([minimal, allFields]): no top-level batchId
        body = unique(BATCH, tag)
        created = http.post("/v1/events/batch", content=body, headers=JSON)
        assert created.status_code == 201, created.text
        answer = created.json()
        assert list(answer) == ["success", "totalReceived", "totalInserted", "executionIds", "correlationIds"]
        assert (answer["success"], answer["totalReceived"], answer["totalInserted"]) == (True, 2, 2)
        assert answer["correlationIds"] == ["4bf92f3577b34da6a3ce929d0e0e4736"]

        # the SDK retries a batch that failed in transit: the keyed entry is not stored twice
        again = http.post("/v1/events/batch", content=body, headers=JSON).json()
        assert again["executionIds"][1] == answer["executionIds"][1]
        assert again["executionIds"][0] not in answer["executionIds"]

        # EventLogClient.createEvent(allFields) with the same key: the stored entry's id
        one = http.post("/v1/events", content=unique(ALL_FIELDS, tag), headers=JSON).json()
        assert one["executionIds"] == [answer["executionIds"][1]]

        page = http.get(f"/v1/events/batch/{sdk_batch}")
        assert page.status_code == 200
        assert list(page.json()) == PAGE_KEYS
        (stored,) = page.json()["events"]
        assert list(stored) == RECORD_KEYS
        assert stored == {
            **json.loads(unique(ALL_FIELDS, tag)),
            "eventLogId": stored["eventLogId"],
            "executionId": answer["executionIds"][1],
            "createdAt": stored["createdAt"],
            "isDeleted": False,
        }
        assert {k: page.json()[k] for k in PAGE_KEYS if k != "events"} == {
            "batchId": sdk_batch,
            "totalCount": 1,
            "uniqueCorrelationIds": 1,
            "successCount": 0,
            "failureCount": 1,
            "page": 1,
            "pageSize": 20,
            "hasMore": False,
        }

        # BatchSummaryResponse, as the SDK's getBatchSummary reads it (URL-encoded id)
        summary = http.get(f"/v1/events/batch/{quote(sdk_batch, safe='')}/summary")
        assert summary.status_code == 200 and list(summary.json()) == SUMMARY_KEYS
        assert summary.json() == {
            "batchId": sdk_batch,
            "totalProcesses": 1,
            "completed": 0,
            "inProgress": 0,
            "failed": 1,
            "correlationIds": ["4bf92f3577b34da6a3ce929d0e0e4736"],
            "startedAt": "2026-03-01T10:00:01.500Z",
            "lastEventAt": "2026-03-01T10:00:01.500Z",
        }


def test_a_finished_a_failed_and_a_running_process_summarised_and_paged(stack):
    bid = batch_id()
    done, broken, running = entry("done"), entry("broken"), entry("running")

    def at(base: dict[str, Any], second: int, **changes: Any) -> dict[str, Any]:
        return {**base, "eventTimestamp": f"2026-03-01T10:00:{second:02d}Z", **changes}

    events = [
        at(done, 1),
        at(done, 5, eventType="PROCESS_END", eventStatus="SUCCESS"),
        at(broken, 2),
        at(broken, 3, eventType="STEP", eventStatus="FAILURE"),
        at(running, 4),
        at(running, 6, eventType="STEP", eventStatus="SUCCESS"),
        {"eventStatus": "SUCCESS"},
    ]
    with client(stack) as http:
        created = http.post("/v1/events/batch", json={"batchId": bid, "events": events})
        assert created.status_code == 201, created.text
        body = created.json()
        assert (body["totalReceived"], body["totalInserted"], body["batchId"]) == (7, 6, bid)
        assert body["errors"][0]["index"] == 6
        assert body["errors"][0]["error"].startswith("Validation failed: correlationId is required")

        page = http.get(f"/v1/events/batch/{bid}", params={"pageSize": 4}).json()
        assert [e["eventTimestamp"] for e in page["events"]] == [f"2026-03-01T10:00:0{s}.000Z" for s in (6, 5, 4, 3)]
        assert (page["totalCount"], page["uniqueCorrelationIds"], page["hasMore"]) == (6, 3, True)
        assert (page["successCount"], page["failureCount"]) == (2, 1)  # done and running; broken

        failures = http.get(f"/v1/events/batch/{bid}", params={"eventStatus": "FAILURE"}).json()
        assert failures["totalCount"] == 1 and failures["uniqueCorrelationIds"] == 3

        summary = http.get(f"/v1/events/batch/{bid}/summary").json()
        assert (summary["totalProcesses"], summary["completed"], summary["failed"], summary["inProgress"]) == (
            3,
            1,
            1,
            1,
        )
        assert summary["correlationIds"] == sorted(e["correlationId"] for e in (done, broken, running))
        assert (summary["startedAt"], summary["lastEventAt"]) == (
            "2026-03-01T10:00:01.000Z",
            "2026-03-01T10:00:06.000Z",
        )


def test_per_item_errors_by_index_over_http(stack):
    good = entry("good")
    bad = [
        {**good, "correlationId": "corr-1"},
        {**good, "spanId": "XYZ"},
        {**good, "eventStatus": "STARTED"},
        {**good, "eventTimestamp": "2026-03-01 10:00:00"},
    ]
    with client(stack) as http:
        body = http.post("/v1/events/batch", json={"events": [good, *bad]}).json()
    assert body["totalInserted"] == 1 and "batchId" not in body
    assert [e["index"] for e in body["errors"]] == [1, 2, 3, 4]
    assert body["errors"][0]["error"] == (
        "Validation failed: correlationId must be 32 lowercase hex characters (W3C Trace Context)"
    )


def test_lone_surrogate_escapes_refuse_the_request_as_malformed_json_over_http(stack):
    """`\\ud800` with no pair is legal JSON text but not Unicode: it could be neither stored nor
    answered, so the body is not I-JSON and the whole request is 400 MALFORMED_JSON (the entry's
    model would refuse it per item too). Sent as the escape in the bytes on the wire, as a client's
    JSON library writes it; a pair of escapes is one character and is stored."""
    bid = batch_id()
    good = json.dumps(entry("good"))
    bad_value = json.dumps(entry("bad", identifiers={"employeeId": "MARK"})).replace("MARK", "E-1\\ud800")
    bad_key = json.dumps(entry("bad", metadata={"MARK": "ok"})).replace("MARK", "\\udc00")
    bad_text = json.dumps(entry("bad", requestPayload="MARK")).replace("MARK", "\\ud83d")
    pair = json.dumps(entry("pair", requestPayload="MARK")).replace("MARK", "\\ud83d\\ude00")
    with client(stack) as http:
        for bad in (bad_value, bad_key, bad_text):
            raw = f'{{"batchId": "{bid}", "events": [{good}, {bad}]}}'
            refused = http.post("/v1/events/batch", content=raw.encode(), headers=JSON)
            assert refused.status_code == 400, refused.text
            assert refused.json()["code"] == "MALFORMED_JSON"
            assert "lone UTF-16 surrogate" in refused.json()["error"]
        single = http.post("/v1/events", content=bad_key.encode(), headers=JSON)
        assert (single.status_code, single.json()["code"]) == (400, "MALFORMED_JSON"), single.text
        assert http.get(f"/v1/events/batch/{bid}").status_code == 404  # nothing was stored
        raw = f'{{"batchId": "{bid}", "events": [{good}, {pair}]}}'
        created = http.post("/v1/events/batch", content=raw.encode(), headers=JSON)
        assert created.status_code == 201 and "errors" not in created.json(), created.text
        page = http.get(f"/v1/events/batch/{bid}").json()
    assert page["totalCount"] == 2


@pytest.mark.parametrize("name", ["hr upload 2026", "50%", "#1?x", "a+b", "Zürich"])
def test_batch_ids_that_need_percent_encoding_can_be_read_back(stack, name):
    bid = f"{name} {uuid.uuid4().hex[:8]}"
    with client(stack) as http:
        assert http.post("/v1/events/batch", json={"batchId": bid, "events": [entry("enc")]}).status_code == 201
        page = http.get(f"/v1/events/batch/{quote(bid, safe='')}")
        assert page.status_code == 200, page.text
        assert page.json()["batchId"] == bid and page.json()["totalCount"] == 1
        # the Java SDK's getBatchSummary: URLEncoder.encode(batchId, UTF_8), a space as "+"
        summary = http.get(f"/v1/events/batch/{quote_plus(bid, safe='*')}/summary")
        assert summary.status_code == 200 and summary.json()["batchId"] == bid


def test_health_and_openapi_need_no_key(stack):
    with client(stack, key=None) as http:
        assert http.get("/v1/health").json()["status"] == "ok"
        document = http.get("/openapi.json").json()
        assert "/v1/events/batch/{batchId}/summary" in document["paths"]
        assert set(document["components"]["schemas"]["EventLogEntry"]["required"]) == {
            "correlationId",
            "traceId",
            "applicationId",
            "targetSystem",
            "originatingSystem",
            "processName",
            "eventType",
            "eventStatus",
            "identifiers",
            "summary",
            "result",
            "eventTimestamp",
        }
        assert document["servers"] == [{"url": "/"}]
        assert "SwaggerUIBundle" in http.get("/docs").text
        # the deployed URL form, with the stage, gets a document whose server carries it
        assert http.get("/prod/openapi.json").json()["servers"] == [{"url": "/prod"}]


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic abc", "Bearer bo_not_a_real_key_at_all_000"])
def test_missing_or_bad_keys_are_401_with_the_error_shape(stack, header):
    headers = {} if header is None else {"Authorization": header}
    response = httpx.post(f"{stack.api}/v1/events/batch", json={"events": []}, headers=headers)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def admin(stack: RunningStack, *args: str) -> dict:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "batchops.admin",
            "--endpoint-url",
            stack.aws,
            "--table",
            "DomainTable",
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={
            **os.environ,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        },
        check=True,
    )
    return json.loads(done.stdout)


def test_admin_cli_against_the_local_stack_and_revocation(stack):
    workspace = f"ws-{uuid.uuid4().hex[:8]}"
    admin(stack, "create-workspace", "--name", "E2E", "--plan", "team", "--id", workspace)
    fresh = admin(stack, "create-key", "--workspace", workspace)
    unused = admin(stack, "create-key", "--workspace", workspace)

    with client(stack, fresh["key"]) as http:
        assert http.post("/v1/events", json=entry("admin")).status_code == 201

    # never used, then revoked: refused at once
    admin(stack, "revoke-key", "--key", unused["key"])
    with client(stack, unused["key"]) as http:
        assert http.get("/v1/events/batch/x").json() == UNAUTHORIZED

    # used, then revoked: API Gateway keeps the cached allow for the TTL, as documented
    admin(stack, "revoke-key", "--workspace", workspace, "--key-id", fresh["key_id"])
    with client(stack, fresh["key"]) as http:
        assert http.get("/v1/events/batch/nothing-here").status_code == 404


def test_another_workspaces_batch_is_404(stack):
    bid = batch_id()
    with client(stack, KEY_A) as http:
        assert http.post("/v1/events/batch", json={"batchId": bid, "events": [entry("mine")]}).status_code == 201
        assert http.get(f"/v1/events/batch/{bid}").status_code == 200
        assert http.get(f"/v1/events/batch/{bid}/summary").status_code == 200
    with client(stack, KEY_B) as http:
        for path in (f"/v1/events/batch/{bid}", f"/v1/events/batch/{bid}/summary"):
            response = http.get(path)
            assert response.status_code == 404
            assert response.json()["code"] == "BATCH_NOT_FOUND"


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"{not json", 400, "MALFORMED_JSON"),
        (b"[]", 422, "VALIDATION_FAILED"),
        (b'{"events": []}', 422, "VALIDATION_FAILED"),
        (json.dumps({"events": [log_entry()] * 1001}).encode(), 422, "VALIDATION_FAILED"),
        (json.dumps({"events": [log_entry()], "batchId": ""}).encode(), 422, "VALIDATION_FAILED"),
        (json.dumps({"events": [{"eventStatus": "SUCCESS"}]}).encode(), 422, "VALIDATION_FAILED"),
    ],
)
def test_bad_bodies_get_the_documented_status(stack, content, status, code):
    with client(stack) as http:
        response = http.post("/v1/events/batch", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.json()["code"] == code


@pytest.mark.parametrize(
    "query", [{"pageSize": "0"}, {"pageSize": "101"}, {"page": "0"}, {"page": "1.5"}, {"eventStatus": "failure"}]
)
def test_bad_query_values_are_422(stack, query):
    with client(stack) as http:
        response = http.get("/v1/events/batch/any", params=query)
    assert response.status_code == 422 and response.json()["code"] == "VALIDATION_FAILED"


def test_body_over_10_mb_is_413_from_the_gateway(stack):
    with client(stack) as http:
        response = http.post(
            "/v1/events/batch",
            content=b"x" * (10 * 1024 * 1024 + 1),
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert response.json() == {
        "error": "Payload exceeds maximum allowed size (10MB).",
        "code": "PAYLOAD_TOO_LARGE",
    }


def test_body_over_lambdas_6_mb_invoke_limit_is_413_from_the_gateway(stack):
    # Lambda refuses a synchronous event over 6 MB before the function runs; API Gateway answers 413.
    with client(stack) as http:
        response = http.post(
            "/v1/events/batch", content=b" " * (7 * 1024 * 1024), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


def test_unknown_route_is_404(stack):
    with client(stack) as http:
        response = http.get("/v1/nothing")
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"


def test_idempotency_key_header_over_http(stack):
    body = {"batchId": batch_id(), "events": [entry("idem")]}
    with client(stack) as http:
        first = http.post("/v1/events/batch", json=body, headers={"Idempotency-Key": "e2e-idem"})
        again = http.post("/v1/events/batch", json=body, headers={"Idempotency-Key": "e2e-idem"})
        other = http.post(
            "/v1/events/batch", json={**body, "batchId": "other"}, headers={"Idempotency-Key": "e2e-idem"}
        )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 422 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_sdk(stack):
    bid = batch_id()
    process = new_correlation_id()

    def built(event_type: str, status: str, **optional: Any) -> dict[str, Any]:
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

    with BatchopsClient(KEY_A, stack.api) as sdk:
        start = built("PROCESS_START", "IN_PROGRESS", idempotency_key=f"start-{bid}")
        created = sdk.events.create_batch([start], batch_id=bid)
        assert created["totalInserted"] == 1 and created.batch_id == bid
        one = sdk.events.create(built("PROCESS_END", "SUCCESS", batch_id=bid, identifiers={"row": 1}))
        assert one.correlation_id == process and len(one["executionIds"]) == 1
        assert sdk.events.get_batch(bid, event_status="SUCCESS")["totalCount"] == 1
        assert sdk.events.get_batch(bid, page_size=1).has_more is True
        assert len(list(sdk.events.iterate_batch(bid, page_size=1))) == 2
        assert sdk.events.get_summary(bid)["completed"] == 1
        with pytest.raises(NotFoundError) as refused:
            sdk.events.get_batch("missing-batch")
        assert refused.value.status == 404 and refused.value.code == "BATCH_NOT_FOUND"
        with pytest.raises(ValidationError) as invalid:
            sdk.events.create(built("STEP", "DONE"))
        assert invalid.value.status == 422 and invalid.value.details[0]["field"] == "eventStatus"


def test_cli_events_commands(stack, tmp_path):
    bid = batch_id()
    batch_file, entry_file = tmp_path / "events.json", tmp_path / "entry.json"
    batch_file.write_text(json.dumps({"batchId": bid, "events": [entry("cli")]}))
    entry_file.write_text(json.dumps(entry("cli-one", "SUCCESS", batchId=bid)))
    env = {**os.environ, "BATCHOPS_API_KEY": KEY_A}
    base = [sys.executable, "-m", "batchops_client.cli", "events", "--api-url", stack.api, "--json"]

    def run(*args: str) -> Any:
        return json.loads(subprocess.run([*base, *args], capture_output=True, text=True, env=env, check=True).stdout)

    assert run("create-batch", str(batch_file))["totalInserted"] == 1
    assert len(run("create", str(entry_file))["executionIds"]) == 1
    assert run("get-batch", bid, "--status", "SUCCESS")["totalCount"] == 1
    assert run("summary", bid)["totalProcesses"] == 2


def test_curl_posts_the_java_sdks_batch(stack):
    tag = uuid.uuid4().hex[:12]
    done = subprocess.run(
        [
            "curl", "-s", "-X", "POST", f"{stack.api}/v1/events/batch",
            "-H", f"Authorization: Bearer {KEY_A}", "-H", "Content-Type: application/json",
            "--data-binary", unique(BATCH, tag).replace('{"events":', '{"batchId":"curl-' + tag + '","events":', 1),
            "-w", "\n%{http_code}",
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    answer, status = done.stdout.rsplit("\n", 1)
    assert status == "201" and json.loads(answer)["batchId"] == f"curl-{tag}"


def test_non_json_bodies_are_415_not_a_puzzle(stack):
    # A gzip file arrives intact (binary media type) and is refused clearly, not mangled into a 500.
    payload = gzip.compress(json.dumps({"events": [log_entry()]}).encode())
    with client(stack) as http:
        gzipped = http.post("/v1/events/batch", content=payload, headers={"Content-Type": "application/gzip"})
        # curl -d without -H sends a form content type
        form = http.post(
            "/v1/events/batch",
            content=b'{"events": []}',
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    for response in (gzipped, form):
        assert response.status_code == 415
        assert response.json() == {
            "error": "Send the body as JSON with Content-Type: application/json",
            "code": "UNSUPPORTED_MEDIA_TYPE",
        }
