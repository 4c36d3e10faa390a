"""Strait's official Python SDK (`strait-python` 0.1.1), unchanged, against the Jobs surface of the
local stack: the calls Strait's SDK README and docs show (jobs create/get/list/update/delete,
trigger, bulk_trigger, runs list/get, batch_operations list/get, paginate, wait_for_run,
with_idempotency), in the SDK's own forms. The run worker calls a real HTTP server on 127.0.0.1
that verifies every call's Standard Webhooks signature."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from strait import AsyncClient, Client, NotFoundError
from strait.composition import PaginatedQuery, PaginatedResponse, paginate, wait_for_run, with_idempotency

from tests.e2e.conftest import KEY_A, KEY_B
from tests.e2e.harness import RunningStack, wait_for
from tests.job_endpoint import JobEndpoints, Reply, job_endpoints
from tests.strait_bodies import strait_job


@pytest.fixture(scope="module")
def endpoints() -> Iterator[JobEndpoints]:
    with job_endpoints() as server:
        yield server


@pytest.fixture
def client(stack: RunningStack) -> Iterator[Client]:
    # The SDK README's constructor.
    with Client(base_url=stack.api, api_key=KEY_A) as made:
        yield made


def job_body(endpoints: JobEndpoints, path: str, **fields: Any) -> dict[str, Any]:
    """Strait's documented create body, with a name and slug of its own and our endpoint."""
    suffix = path.rsplit("/", 1)[1]
    return strait_job(
        name=f"Send Welcome Email {suffix}",
        slug=f"send-welcome-email-{suffix}",
        endpoint_url=endpoints.url(path),
        **fields,
    )


def new_job(client: Client, endpoints: JobEndpoints, **fields: Any) -> tuple[dict[str, Any], str]:
    path = f"/strait/{uuid.uuid4().hex[:10]}"
    job = dict(client.jobs.create(job_body(endpoints, path, **fields)))
    endpoints.verify_with(path, job["signing_secret"])
    return job, path


def run_of(client: Client, run_id: str) -> dict[str, Any]:
    """The SDK README's wait_for_run, polling client.runs.get."""
    return dict(wait_for_run(get_run=lambda rid: client.runs.get(rid), get_status=lambda r: r["status"], run_id=run_id))


def test_jobs_create_get_list_update_delete(client, endpoints):
    body = job_body(endpoints, f"/strait/{uuid.uuid4().hex[:10]}", description="Welcome emails")
    job = dict(client.jobs.create(body))
    assert {k: job[k] for k in body} == body
    assert job["id"] and job["version"] == 1 and job["paused"] is False and job["enabled"] is True

    got = dict(client.jobs.get(job["id"]))
    assert got == {k: v for k, v in job.items() if k != "signing_secret"}

    listed = client.jobs.list()
    assert listed["data"][0]["id"] == job["id"]  # newest first
    assert isinstance(listed["has_more"], bool) and ("next_cursor" in listed) is listed["has_more"]
    by_slug = client.jobs.list(query={"slug": body["slug"]})
    assert [j["id"] for j in by_slug["data"]] == [job["id"]] and by_slug["has_more"] is False

    changed = client.jobs.update(job["id"], {"description": "Welcome and onboarding emails", "enabled": False})
    assert (changed["description"], changed["enabled"], changed["version"]) == (
        "Welcome and onboarding emails",
        False,
        2,
    )
    assert client.jobs.get(job["id"])["version"] == 2

    assert client.jobs.delete(job["id"]) == {}  # 204, no body
    with pytest.raises(NotFoundError) as missing:
        client.jobs.get(job["id"])
    assert missing.value.status == 404

    # project_id is the caller's workspace; another workspace's does not exist for the caller
    # (404, never 403: Strait's 403 here would tell the caller the project exists).
    with pytest.raises(NotFoundError) as refused:
        client.jobs.create({**body, "project_id": "ws-b", "slug": "elsewhere"})
    assert refused.value.status == 404 and refused.value.body["code"] == "PROJECT_NOT_FOUND"
    with pytest.raises(NotFoundError):
        client.jobs.list(query={"project_id": "ws-b"})


def test_trigger_then_wait_for_run(stack, endpoints, monkeypatch):
    # The SDK overview's form: configuration from the environment.
    monkeypatch.setenv("STRAIT_BASE_URL", stack.api)
    monkeypatch.setenv("STRAIT_API_KEY", KEY_A)
    with Client.from_env() as client:
        job, path = new_job(client, endpoints)
        endpoints.script(path, Reply(200, {"sent": True}))
        run = client.jobs.trigger(job["id"], {"payload": {"to": "customer@example.com", "template": "welcome"}})
        assert run["status"] == "queued" and run["idempotency_hit"] is False and run["payload_hash"]

        done = run_of(client, run["id"])
        assert (done["status"], done["attempt"], done["result"]) == ("completed", 1, {"sent": True})
        assert done["tags"] == {"team": "growth", "tier": "production"}  # the job's tags, on the run
        assert done["metadata"] == {"service": "signup"}
        [call] = endpoints.calls_to(path)
        assert call.verified and call.body["payload"] == {"to": "customer@example.com", "template": "welcome"}

        assert dict(client.runs.get(run["id"])) == done
        completed = client.runs.list(query={"status": "completed", "limit": "50"})
        assert run["id"] in {r["id"] for r in completed["data"]}
        assert all(r["status"] == "completed" for r in completed["data"])

        # A high priority goes through the urgent run queue, the worker's second event source.
        urgent = client.jobs.trigger(job["id"], {"payload": {"urgent": True}, "priority": 9})
        done = run_of(client, urgent["id"])
        assert (done["status"], done["priority"]) == ("completed", 9)
        assert [c.body["payload"] for c in endpoints.calls_to(path)][-1] == {"urgent": True}


def test_wait_for_run_stops_on_every_way_a_run_ends(stack, client, endpoints):
    failing, failing_path = new_job(client, endpoints, max_attempts=1)
    slow, slow_path = new_job(client, endpoints, max_attempts=1, timeout_secs=1)
    endpoints.script(failing_path, Reply(404, {"error": "no such customer"}))
    endpoints.script(slow_path, Reply(200, delay=2.5))
    failed = client.jobs.trigger(failing["id"], {"payload": {"n": 1}})
    timed_out = client.jobs.trigger(slow["id"], {"payload": {}})
    # A run due tomorrow with a ttl of 1 s: it waits, delayed, with nothing queued yet.
    due = datetime.now(UTC) + timedelta(days=1)
    expiring = client.jobs.trigger(failing["id"], {"payload": {"n": 0}, "scheduled_at": due.isoformat(), "ttl_secs": 1})
    assert expiring["status"] == "delayed"

    ended = run_of(client, failed["id"])
    assert (ended["status"], ended["error_class"], ended["error_detail"]["http_status"]) == ("failed", "client", 404)
    ended = run_of(client, timed_out["id"])
    assert (ended["status"], ended["error_class"]) == ("timed_out", "timeout")

    # Tomorrow comes (the clock moves in the store, not by waiting): the run was due yesterday and
    # nobody started it within its second. Its message arrives, as the sweeper sends it, and the
    # worker expires the run instead of calling the endpoint.
    past_due(stack, expiring["id"])
    sqs = stack.client("sqs")
    queue = sqs.get_queue_url(QueueName="RunQueue")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"workspace_id": "ws-a", "run_id": expiring["id"]}))
    ended = run_of(client, expiring["id"])
    assert (ended["status"], ended["error"]) == ("expired", "run expired")
    assert "error_class" not in ended and ended["finished_at"]
    assert [c.body["payload"] for c in endpoints.calls_to(failing_path)] == [{"n": 1}]


def past_due(stack: RunningStack, run_id: str) -> None:
    """Move a stored run's due time and ttl into the past (time passing, without sleeping)."""
    from batchops.dal import keys
    from batchops.dal.items import serialize

    stack.client("dynamodb").update_item(
        TableName="DomainTable",
        Key=serialize(keys.run("ws-a", run_id)),
        UpdateExpression="SET scheduled_at = :past, start_by = :past",
        ExpressionAttributeValues=serialize({":past": "2000-01-01T00:00:00.000000Z"}),
    )


def test_straits_authoring_dsl_works_with_a_small_adapter(client, endpoints):
    """Strait's authoring DSL calls a `JobDSLClient` the SDK does not provide; four lines adapt
    the SDK's Client, and the bodies the DSL sends (metadata, dry_run) are accepted."""
    from strait.authoring import JobOptions, TriggerJobInput, define_job

    class Adapter:
        def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
            return dict(client.jobs.create(body))

        def trigger_job(self, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
            return dict(client.jobs.trigger(job_id, body))

        def bulk_trigger_job(self, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
            return dict(client.jobs.bulk_trigger(job_id, body))

        def get_run(self, run_id: str) -> dict[str, Any]:
            return dict(client.runs.get(run_id))

    path = f"/strait/{uuid.uuid4().hex[:10]}"
    suffix = path.rsplit("/", 1)[1]
    welcome = define_job(
        JobOptions(name=f"DSL {suffix}", slug=f"dsl-{suffix}", endpoint_url=endpoints.url(path), project_id="ws-a")
    )
    adapter = Adapter()
    job = welcome.register(adapter)
    endpoints.verify_with(path, job["signing_secret"])
    endpoints.script(path, Reply(200, {"ok": True}))
    one = welcome.trigger(adapter, TriggerJobInput(payload={"n": 1}, dry_run=False, metadata={"source": "dsl"}))
    assert run_of(client, one["id"])["metadata"] == {"source": "dsl"}
    many = welcome.batch_trigger(
        adapter, [TriggerJobInput(payload={"n": n}, dry_run=False, metadata={"m": "x"}) for n in (2, 3)]
    )
    assert (many["total"], many["created"]) == (2, 2)
    assert {run_of(client, r["id"])["status"] for r in many["results"]} == {"completed"}
    assert sorted(c.body["payload"]["n"] for c in endpoints.calls_to(path)) == [1, 2, 3]


def test_bulk_trigger_batch_operations_and_paginate(client, endpoints):
    job, path = new_job(client, endpoints, dedup_window_secs=600)
    endpoints.script(path, Reply(200, {"ok": True}))
    items = [
        {
            "payload": {"n": n},
            "priority": n % 3,
            "tags": {"wave": "1"},
            "ttl_secs": 3600,
            "concurrency_key": "tenant-42",
        }
        for n in range(120)
    ]
    items.append({"payload": {"n": 0}})  # the same payload as item 0, within the job's window
    out = client.jobs.bulk_trigger(job["id"], {"items": items})
    assert (out["total"], out["created"], len(out["results"])) == (121, 120, 121)
    assert out["results"][120] == {**out["results"][0], "idempotency_hit": False}
    batch_id = out["batch_id"]

    batch = wait_for(
        lambda: (b := client.batch_operations.get(batch_id))["finished_at"] and b,
        timeout=180,
        interval=0.5,
        what="the bulk trigger's runs to finish",
    )
    assert (batch["job_id"], batch["item_count"], batch["created_count"]) == (job["id"], 121, 120)
    assert batch["created_by"].startswith("apikey:")
    # Exactly the seed's BatchOperation fields; the runs' statuses are read from the runs.
    assert set(batch) == {
        "id", "project_id", "job_id", "item_count", "created_count", "created_by", "created_at", "finished_at",
    }  # fmt: skip
    listed = client.batch_operations.list()
    assert listed["data"][0]["id"] == batch_id  # newest first, the caller's project without asking

    def list_fn(q: PaginatedQuery) -> PaginatedResponse[dict[str, Any]]:
        query = {"batch_id": batch_id, "limit": str(q.limit)}
        if q.cursor:
            query["cursor"] = q.cursor
        page = client.runs.list(query=query)
        return PaginatedResponse(data=page["data"], next_cursor=page.get("next_cursor", ""), has_more=page["has_more"])

    runs = list(paginate(list_fn, limit=50))
    assert len(runs) == 120 and len({r["id"] for r in runs}) == 120
    assert Counter(r["status"] for r in runs) == Counter(completed=120)
    assert all(r["batch_id"] == batch_id for r in runs)
    assert all(r["concurrency_key"] == "tenant-42" and r["tags"]["wave"] == "1" for r in runs)
    assert sorted(r["payload"]["n"] for r in runs) == list(range(120))
    calls = endpoints.calls_to(path)
    assert len(calls) == 120 and all(c.verified for c in calls)


def test_with_idempotency(stack, client, endpoints):
    job, path = new_job(client, endpoints)
    key = f"order-{uuid.uuid4().hex}"
    # The SDK's mechanisms for a header on trigger: default headers, or a low-level request.
    with Client(base_url=stack.api, api_key=KEY_A, default_headers=with_idempotency(None, key)) as once:
        first = once.jobs.trigger(job["id"], {"payload": {"order": 1}})
        again = once.jobs.trigger(job["id"], {"payload": {"order": 1}})
    assert again["id"] == first["id"]
    raw = client.do_request(
        "POST", f"/v1/jobs/{job['id']}/trigger", headers=with_idempotency(None, key), body={"payload": {"order": 1}}
    )
    assert raw["id"] == first["id"]
    assert run_of(client, first["id"])["idempotency_key"] == key

    # The key belongs to the job's run for good (Strait's run-level key): a bulk item's key is
    # the same key, and a later trigger with it is answered with that run. The run is due
    # tomorrow, so its status is known: still delayed.
    bulk_key = f"order-{uuid.uuid4().hex}"
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    item = {"payload": {"order": 2}, "idempotency_key": bulk_key, "scheduled_at": tomorrow}
    made = client.jobs.bulk_trigger(job["id"], {"items": [item]})
    with Client(base_url=stack.api, api_key=KEY_A, default_headers=with_idempotency(None, bulk_key)) as later:
        hit = later.jobs.trigger(job["id"], {"payload": {"order": 3}})
    assert hit == {"id": made["results"][0]["id"], "status": "delayed", "idempotency_hit": True}
    assert client.runs.get(hit["id"])["payload"] == {"order": 2}  # the bulk item's run, not a new one
    assert sorted(c.body["payload"]["order"] for c in endpoints.calls_to(path)) == [1]


def test_another_workspace_sees_nothing(stack, client, endpoints):
    job, _ = new_job(client, endpoints)
    run = client.jobs.trigger(job["id"], {"payload": {}})
    out = client.jobs.bulk_trigger(job["id"], {"items": [{"payload": {"b": 1}}]})
    with Client(base_url=stack.api, api_key=KEY_B) as other:
        for call in (
            lambda: other.jobs.get(job["id"]),
            lambda: other.runs.get(run["id"]),
            lambda: other.batch_operations.get(out["batch_id"]),
            lambda: other.batch_operations.list(query={"project_id": "ws-a"}),
            lambda: other.jobs.trigger(job["id"], {"payload": {}}),
        ):
            with pytest.raises(NotFoundError):
                call()
        assert out["batch_id"] not in {b["id"] for b in other.batch_operations.list()["data"]}
        assert other.runs.list(query={"batch_id": out["batch_id"]}) == {"data": [], "has_more": False}
    run_of(client, run["id"])


def test_scheduled_run_and_async_client(stack, endpoints, monkeypatch):
    monkeypatch.setenv("STRAIT_BASE_URL", stack.api)
    monkeypatch.setenv("STRAIT_API_KEY", KEY_A)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        # The SDK README's async form.
        async with AsyncClient.from_env() as client:
            jobs = await client.jobs.list()
            assert "data" in jobs and "has_more" in jobs
            path = f"/strait/{uuid.uuid4().hex[:10]}"
            job = await client.jobs.create(job_body(endpoints, path))
            endpoints.verify_with(path, job["signing_secret"])
            due = datetime.now(UTC) + timedelta(seconds=8)
            run = await client.jobs.trigger(job["id"], {"payload": {}, "scheduled_at": due.isoformat()})
            return run, await client.runs.get(run["id"])

    run, stored = asyncio.run(scenario())
    assert run["status"] == stored["status"] == "delayed"
    with Client.from_env() as client:
        done = run_of(client, run["id"])
    assert done["status"] == "completed" and done["started_at"] >= done["scheduled_at"]
