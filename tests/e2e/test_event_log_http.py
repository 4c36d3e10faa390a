"""The Event log surface over real HTTP through the local stack: gateway, authorizer, functions, moto."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import uuid

import httpx
import pytest

from batchops_client import ApiError, BatchopsClient
from tests.e2e.conftest import KEY_A, KEY_B, ROOT
from tests.e2e.harness import RunningStack

UNAUTHORIZED = {"error": "Unauthorized", "code": "UNAUTHORIZED"}


def client(stack: RunningStack, key: str | None = KEY_A) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=stack.api, headers=headers, timeout=30)


def batch_id() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}"


def test_seed_flow_create_query_summarise(stack):
    bid = batch_id()
    with client(stack) as http:
        created = http.post(
            "/v1/events/batch",
            json={
                "batchId": bid,
                "events": [
                    {
                        "correlationId": "corr-1",
                        "eventStatus": "STARTED",
                        "timestamp": "2026-03-01T10:00:00Z",
                    },
                    {
                        "correlationId": "corr-1",
                        "eventStatus": "SUCCESS",
                        "timestamp": "2026-03-01T10:05:30Z",
                    },
                    {
                        "correlationId": "corr-2",
                        "eventStatus": "FAILURE",
                        "timestamp": "2026-03-01T10:01:00Z",
                    },
                    {"eventStatus": "SUCCESS"},
                ],
            },
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["totalReceived"] == 4 and body["totalInserted"] == 3 and body["batchId"] == bid
        assert body["errors"] == [{"index": 3, "error": "Validation failed: correlationId is required"}]

        page = http.get(f"/v1/events/batch/{bid}", params={"pageSize": 2})
        assert page.status_code == 200
        assert page.json()["totalCount"] == 3 and page.json()["hasMore"] is True
        assert [e["eventStatus"] for e in page.json()["events"]] == ["STARTED", "FAILURE"]

        summary = http.get(f"/v1/events/batch/{bid}/summary").json()
        assert summary == {
            "batchId": bid,
            "totalProcesses": 2,
            "completed": 1,
            "inProgress": 0,
            "failed": 1,
            "correlationIds": ["corr-1", "corr-2"],
            "startedAt": "2026-03-01T10:00:00.000Z",
            "lastEventAt": "2026-03-01T10:05:30.000Z",
        }


def test_health_and_openapi_need_no_key(stack):
    with client(stack, key=None) as http:
        assert http.get("/v1/health").json()["status"] == "ok"
        document = http.get("/openapi.json").json()
        assert "/v1/events/batch/{batchId}/summary" in document["paths"]
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
            "batchops_client.cli",
            "admin",
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
        assert http.post("/v1/events", json={"correlationId": "c", "eventStatus": "STARTED"}).status_code == 201

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
        assert (
            http.post(
                "/v1/events/batch",
                json={"batchId": bid, "events": [{"correlationId": "c", "eventStatus": "STARTED"}]},
            ).status_code
            == 201
        )
        assert http.get(f"/v1/events/batch/{bid}").status_code == 200
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
        (
            json.dumps({"events": [{"correlationId": "c", "eventStatus": "STARTED"}] * 1001}).encode(),
            422,
            "VALIDATION_FAILED",
        ),
        (
            b'{"events": [{"correlationId": "c", "eventStatus": "STARTED"}], "batchId": ""}',
            422,
            "VALIDATION_FAILED",
        ),
    ],
)
def test_bad_bodies_get_the_documented_status(stack, content, status, code):
    with client(stack) as http:
        response = http.post("/v1/events/batch", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.json()["code"] == code


@pytest.mark.parametrize("query", [{"pageSize": "0"}, {"pageSize": "101"}, {"page": "0"}, {"eventStatus": "NOPE"}])
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


def test_idempotency_key_over_http(stack):
    body = {"batchId": batch_id(), "events": [{"correlationId": "c", "eventStatus": "STARTED"}]}
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
    with BatchopsClient(stack.api, KEY_A) as sdk:
        created = sdk.create_event_batch([{"correlationId": "s", "eventStatus": "SUCCESS"}], bid)
        assert created["totalInserted"] == 1
        assert sdk.get_event_batch(bid, event_status="SUCCESS")["totalCount"] == 1
        assert sdk.get_event_batch_summary(bid)["completed"] == 1
        with pytest.raises(ApiError) as refused:
            sdk.get_event_batch("missing-batch")
        assert refused.value.status == 404 and refused.value.code == "BATCH_NOT_FOUND"


def test_cli_events_commands(stack, tmp_path):
    bid = batch_id()
    source = tmp_path / "events.json"
    source.write_text(json.dumps({"batchId": bid, "events": [{"correlationId": "cli", "eventStatus": "STARTED"}]}))
    env = {**os.environ, "BATCHOPS_API_KEY": KEY_A}
    base = [sys.executable, "-m", "batchops_client.cli", "events", "--api-url", stack.api]
    created = subprocess.run([*base, "create-batch", str(source)], capture_output=True, text=True, env=env, check=True)
    assert json.loads(created.stdout)["totalInserted"] == 1
    summary = subprocess.run([*base, "summary", bid], capture_output=True, text=True, env=env, check=True)
    assert json.loads(summary.stdout)["totalProcesses"] == 1


def test_curl_posts_a_batch(stack, tmp_path):
    bid = batch_id()
    body = json.dumps({"batchId": bid, "events": [{"correlationId": "curl", "eventStatus": "SUCCESS"}]})
    done = subprocess.run(
        [
            "curl", "-s", "-X", "POST", f"{stack.api}/v1/events/batch",
            "-H", f"Authorization: Bearer {KEY_A}", "-H", "Content-Type: application/json",
            "-d", body,
            "-w", "\n%{http_code}",
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    answer, status = done.stdout.rsplit("\n", 1)
    assert status == "201" and json.loads(answer)["batchId"] == bid


def test_non_json_bodies_are_415_not_a_puzzle(stack):
    # A gzip file arrives intact (binary media type) and is refused clearly, not mangled into a 500.
    payload = gzip.compress(json.dumps({"events": [{"correlationId": "g", "eventStatus": "STARTED"}]}).encode())
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
