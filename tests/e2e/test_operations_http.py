"""Operations surface (seed 003) over real HTTP through the local stack: the SQS worker and the
transaction state machine run as the stack runs them for `make run`."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.conftest import KEY_A, KEY_B
from tests.e2e.harness import wait_for
from tests.support import log_entry as event
from tests.support import operation as op

SEED_BODY = {
    "operations": [
        {
            "id": "create-post",
            "method": "POST",
            "path": "/v1/posts",
            "body": {"content": "Hello from batch!", "accountIds": ["acc_123"]},
        },
        {"id": "delete-old", "method": "DELETE", "path": "/v1/posts/clxold1234567890"},
    ],
    "continueOnError": True,
    "parallel": False,
}


def client(stack, key=KEY_A):
    return httpx.Client(base_url=stack.api, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def test_seed_example_body_runs_with_per_operation_verdicts(stack):
    with client(stack) as http:
        response = http.post("/v1/batch", json=SEED_BODY)
    assert response.status_code == 200
    body = response.json()
    # /v1/posts is the seed author's API, not a batchops route: each operation gets a 404 result.
    assert [(r["id"], r["status"]) for r in body["results"]] == [("create-post", 404), ("delete-old", 404)]
    assert body["summary"] == {"total": 2, "succeeded": 0, "failed": 2, "skipped": 0}


def test_sync_sequential_with_references_and_parallel(stack):
    batch_id = f"ops-{uuid.uuid4().hex[:8]}"
    with client(stack) as http:
        sequential = http.post(
            "/v1/batch",
            json={
                "operations": [
                    op("create", "/v1/events/batch", {"events": [event("seq")], "batchId": batch_id}),
                    op(
                        "follow",
                        "/v1/events/batch",
                        {"events": [event("${create.body.correlationIds.0}", "SUCCESS")], "batchId": batch_id},
                    ),
                ]
            },
        ).json()
        assert [r["status"] for r in sequential["results"]] == [201, 201]
        summary = http.get(f"/v1/events/batch/{batch_id}/summary").json()
        assert summary["completed"] == 1 and summary["correlationIds"] == [event("seq")["correlationId"]]

        parallel = http.post(
            "/v1/batch", json={"operations": [op(f"p{i}", body=event(f"par{i}")) for i in range(10)], "parallel": True}
        ).json()
        assert [r["id"] for r in parallel["results"]] == [f"p{i}" for i in range(10)]
        assert parallel["summary"]["succeeded"] == 10


def test_transaction_runs_on_the_state_machine_and_stops_at_the_first_failure(stack):
    batch_id = f"txn-{uuid.uuid4().hex[:8]}"
    with client(stack) as http:
        response = http.post(
            "/v1/batch/transaction",
            json={
                "operations": [
                    op("first", "/v1/events/batch", {"events": [event("t")], "batchId": batch_id}),
                    op("broken", body={"eventStatus": "SUCCESS"}),
                    op("never", "/v1/events/batch", {"events": [event("n")], "batchId": batch_id}),
                ]
            },
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert [r["status"] for r in body["results"]] == [201, 422, 424]
        assert body["summary"] == {"total": 3, "succeeded": 1, "failed": 1, "skipped": 1}
        assert http.get(f"/v1/events/batch/{batch_id}").json()["totalCount"] == 1


def test_dry_run_and_limits(stack):
    with client(stack) as http:
        dry = http.post(
            "/v1/batch/dry-run",
            json={"operations": [op("ok", body=event("d")), op("bad", body={}), op("nowhere", "/v1/x", {})]},
        ).json()
        assert [r["status"] for r in dry["results"]] == [200, 422, 404]
        limits = http.get("/v1/batch/limits").json()
        assert limits["maxOperations"] == 100
        assert limits["allowedPaths"] == [
            "/v1/events",
            "/v1/events/batch",
            "/v1/jobs",
            "/v1/jobs/{jobID}",
            "/v1/jobs/{jobID}/trigger",
            "/v1/jobs/{jobID}/trigger-bulk",
            "/v1/jobs/{jobID}/trigger/bulk",
            "/v1/bulk-track",
            "/v1/track",
            "/v1/bulk-track/uploads",
            "/v1/webhooks",
            "/v1/webhooks/{webhook_id}",
        ]
        assert limits["plan"] == "pro"
        assert limits["rateLimits"]["requestsPerSecond"] == 50


def test_async_submit_poll_complete_and_list_with_cursor(stack):
    with client(stack) as http:
        ids = []
        for n in range(3):
            submitted = http.post("/v1/batch/async", json={"operations": [op("one", body=event(f"async{n}"))]})
            assert submitted.status_code == 202
            ids.append(submitted.json()["data"]["jobId"])
        for job_id in ids:

            def completed(job_id=job_id):
                data = http.get(f"/v1/batch/async/{job_id}").json()["data"]
                return data if data["status"] == "COMPLETED" else None

            job = wait_for(completed, timeout=30, what=f"job {job_id} to complete")
            assert job["results"][0]["status"] == 201
            assert job["summary"] == {"total": 1, "succeeded": 1, "failed": 0, "skipped": 0}
        first = http.get("/v1/batch/async", params={"limit": 2}).json()
        assert len(first["data"]) == 2 and first["nextCursor"]
        second = http.get("/v1/batch/async", params={"limit": 2, "cursor": first["nextCursor"]}).json()
        listed = [j["id"] for j in first["data"] + second["data"]]
        assert listed[:3] == ids[::-1]


def test_async_jobs_are_isolated_between_workspaces(stack):
    with client(stack, KEY_A) as http:
        job_id = http.post("/v1/batch/async", json={"operations": [op("one", body=event("iso"))]}).json()["data"][
            "jobId"
        ]
    with client(stack, KEY_B) as http:
        assert http.get(f"/v1/batch/async/{job_id}").status_code == 404
        assert job_id not in [j["id"] for j in http.get("/v1/batch/async").json()["data"]]


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"operations": []}, 422),
        ({"operations": [op("x", body=event("a")), op("x", body=event("b"))]}, 422),
        ({"operations": [op("x", method="GET")]}, 422),
    ],
)
def test_whole_batch_rejections_are_the_same_in_every_mode(stack, payload, status):
    with client(stack) as http:
        for path in ("/v1/batch", "/v1/batch/transaction", "/v1/batch/dry-run", "/v1/batch/async"):
            response = http.post(path, json=payload)
            assert response.status_code == status, (path, response.text)
            assert response.json()["code"] == "VALIDATION_FAILED"
