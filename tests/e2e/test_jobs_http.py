"""Jobs, runs and bulk trigger (seed 001) over real HTTP through the local stack: its SQS poller
runs the run worker, which calls a real HTTP server on 127.0.0.1 that verifies every request's
Standard Webhooks signature with the `standardwebhooks` library."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import KEY_A, KEY_B
from tests.e2e.harness import wait_for
from tests.job_endpoint import JobEndpoints, Reply, job_endpoints


@pytest.fixture(scope="module")
def endpoints() -> Iterator[JobEndpoints]:
    with job_endpoints() as server:
        yield server


def client(stack, key=KEY_A):
    return httpx.Client(base_url=stack.api, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def new_job(http: httpx.Client, endpoints: JobEndpoints, **fields) -> tuple[dict, str]:
    path = f"/hooks/{uuid.uuid4().hex[:8]}"
    response = http.post(
        "/v1/jobs", json={"name": path.rsplit("/", 1)[1], "endpoint_url": endpoints.url(path), **fields}
    )
    assert response.status_code == 201, response.text
    job = response.json()
    endpoints.verify_with(path, job["signing_secret"])
    return job, path


def batch_of(http: httpx.Client, batch_id: str) -> dict:
    # project_id may name the caller's workspace, or be left out (Strait takes it from the key).
    response = http.get(f"/v1/batch-operations/{batch_id}", params={"project_id": "ws-a"})
    assert response.status_code == 200, response.text
    return response.json()


def test_bulk_trigger_of_200_runs_to_completion(stack, endpoints):
    with client(stack) as http:
        job, path = new_job(http, endpoints, dedup_window_secs=600)
        endpoints.script(path, Reply(200, {"ok": True}))
        items = [{"payload": {"n": n}} for n in range(200)]
        response = http.post(f"/v1/jobs/{job['id']}/trigger-bulk", json={"items": items})
        assert response.status_code == 201, response.text
        created = response.json()
        assert (created["total"], created["created"]) == (200, 200)
        assert len({r["id"] for r in created["results"]}) == 200
        assert not any(r["idempotency_hit"] for r in created["results"])
        batch = batch_of(http, created["batch_id"])
        assert (batch["item_count"], batch["created_count"]) == (200, 200)
        assert batch["created_by"].startswith("apikey:") and len(batch["created_by"]) > len("apikey:")

        done = wait_for(
            lambda: (b := batch_of(http, batch["id"]))["finished_at"] and b, timeout=240, what="200 runs to finish"
        )
        # Exactly the seed's BatchOperation fields.
        assert set(done) == {
            "id", "project_id", "job_id", "item_count", "created_count", "created_by", "created_at", "finished_at",
        }  # fmt: skip
        calls = endpoints.calls_to(path)
        assert len(calls) == 200 and all(c.verified for c in calls)
        assert sorted(c.body["payload"]["n"] for c in calls) == list(range(200))
        # finished_at was set once: reading again (and more deliveries) never moves it.
        assert batch_of(http, batch["id"])["finished_at"] == done["finished_at"]

        # Cursor listing of the batch's runs: 200 distinct runs, newest first, 3 pages of 90.
        seen: list[dict] = []
        cursor = None
        while True:
            params = {"batch_id": batch["id"], "limit": 90, **({"cursor": cursor} if cursor else {})}
            page = http.get("/v1/runs", params=params).json()
            seen += page["data"]
            cursor = page.get("next_cursor")
            if cursor is None:
                break
        assert len({r["id"] for r in seen}) == 200
        assert all(r["status"] == "completed" and r["result"] == {"ok": True} for r in seen)
        assert [r["created_at"] for r in seen] == sorted((r["created_at"] for r in seen), reverse=True)

        # Within the window the same payloads create nothing (their results name the earlier
        # runs); new ones do. Strait's path for the same call.
        by_n = {r["payload"]["n"]: r["id"] for r in seen}
        again = [{"payload": {"n": n}} for n in range(190, 210)]
        second = http.post(f"/v1/jobs/{job['id']}/trigger/bulk", json={"items": again}).json()
        assert second["created"] == 10
        assert [r["id"] for r in second["results"][:10]] == [by_n[n] for n in range(190, 200)]
        assert all(r["status"] == "completed" for r in second["results"][:10])
        assert not set(by_n.values()) & {r["id"] for r in second["results"][10:]}
        listed = http.get("/v1/batch-operations", params={"limit": 1}).json()
        assert listed["data"][0]["id"] == second["batch_id"] and listed["has_more"] and listed["next_cursor"]
        wait_for(lambda: batch_of(http, second["batch_id"])["finished_at"], timeout=60, what="second batch")
        assert len(endpoints.calls_to(path)) == 210


def test_single_trigger_retries_then_completes_and_dedups(stack, endpoints):
    with client(stack) as http:
        job, path = new_job(http, endpoints, max_attempts=3, retry_backoff_secs=1)
        endpoints.script(path, Reply(503, headers={"Retry-After": "1"}), Reply(200, {"sent": 1}))
        response = http.post(f"/v1/jobs/{job['id']}/trigger", json={"payload": {"to": "x"}, "idempotency_key": "once"})
        assert response.status_code == 201
        run = response.json()
        repeat = http.post(f"/v1/jobs/{job['id']}/trigger", json={"payload": {"to": "y"}, "idempotency_key": "once"})
        assert (repeat.status_code, set(repeat.json())) == (200, {"id", "status", "idempotency_hit"})
        assert (repeat.json()["id"], repeat.json()["idempotency_hit"]) == (run["id"], True)
        # Whatever the run's progress, a status in Strait's names, never the stored running/cancelled.
        assert repeat.json()["status"] in {"queued", "executing", "completed"}

        finished = wait_for(
            lambda: (r := http.get(f"/v1/runs/{run['id']}").json())["status"] == "completed" and r,
            timeout=60,
            what="the run to complete after a retry",
        )
        assert finished["attempt"] == 2 and finished["result"] == {"sent": 1} and "error" not in finished
        calls = endpoints.calls_to(path)
        assert [c.body["attempt"] for c in calls] == [1, 2] and all(c.verified for c in calls)
        assert {c.headers["webhook-id"] for c in calls} == {run["id"]}


def test_other_workspaces_see_nothing(stack, endpoints):
    with client(stack) as http:
        job, _ = new_job(http, endpoints)
        run = http.post(f"/v1/jobs/{job['id']}/trigger", json={"payload": {}}).json()
        batch = http.post(f"/v1/jobs/{job['id']}/trigger-bulk", json={"items": [{"payload": {"b": 1}}]}).json()
    batch_id = batch["batch_id"]
    with client(stack, KEY_B) as other:
        assert other.get(f"/v1/runs/{run['id']}").status_code == 404
        assert other.post(f"/v1/jobs/{job['id']}/trigger", json={"payload": {}}).status_code == 404
        assert other.get(f"/v1/batch-operations/{batch_id}", params={"project_id": "ws-b"}).status_code == 404
        assert other.get(f"/v1/batch-operations/{batch_id}", params={"project_id": "ws-a"}).status_code == 404
        assert other.get(f"/v1/batch-operations/{batch_id}").status_code == 404
        assert other.get("/v1/runs", params={"job_id": job["id"]}).json() == {"data": [], "has_more": False}
        assert other.get("/v1/runs", params={"batch_id": batch_id}).json() == {"data": [], "has_more": False}
        # Without project_id: the caller's own project, which has none of ws-a's batches.
        mine = other.get("/v1/batch-operations")
        assert mine.status_code == 200 and batch_id not in {b["id"] for b in mine.json()["data"]}
        assert other.get("/v1/batch-operations", params={"project_id": "ws-a"}).status_code == 404
    with client(stack) as http:
        wait_for(lambda: batch_of(http, batch_id)["finished_at"], timeout=60, what="the batch to finish")
        assert http.get(f"/v1/runs/{run['id']}").json()["status"] == "completed"
        # Another workspace's project_id is 404 on every route that takes one (ws-b, on the free
        # plan, has spent its burst above; ws-a names ws-b's project instead).
        for path in ("/v1/jobs", "/v1/runs", f"/v1/runs/{run['id']}", f"/v1/jobs/{job['id']}", "/v1/batch-operations"):
            refused = http.get(path, params={"project_id": "ws-b"})
            assert (refused.status_code, refused.json()["code"]) == (404, "PROJECT_NOT_FOUND"), path
        body = {"name": "elsewhere", "endpoint_url": "https://example.com/hook", "project_id": "ws-b"}
        refused = http.post("/v1/jobs", json=body)
        assert (refused.status_code, refused.json()["code"]) == (404, "PROJECT_NOT_FOUND")
