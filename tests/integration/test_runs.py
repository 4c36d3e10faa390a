"""Runs (seed 001): trigger, trigger-bulk, the run worker and batch operations, through the real
handlers on moto, with the worker calling a real HTTP server on 127.0.0.1 that verifies our
Standard Webhooks signatures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from batchops.settings import reset_settings
from tests.job_endpoint import JobEndpoints, Reply, job_endpoints
from tests.support import LambdaContext, api_event, fixture_event, invoke, load_function, sqs_event

CREATE_JOB = load_function("create_job")
UPDATE_JOB = load_function("update_job")
DELETE_JOB = load_function("delete_job")
TRIGGER = load_function("trigger_job")
BULK = load_function("trigger_job_bulk")
GET_RUN = load_function("get_run")
LIST_RUNS = load_function("list_runs")
LIST_BATCHES = load_function("list_batch_operations")
GET_BATCH = load_function("get_batch_operation")
WORKER = load_function("run_worker")
SWEEPER = load_function("sweeper")


@pytest.fixture
def endpoints(aws, monkeypatch) -> Iterator[JobEndpoints]:
    url = boto3.client("sqs").get_queue_url(QueueName="RunQueue")["QueueUrl"]
    monkeypatch.setenv("BATCHOPS_RUN_QUEUE_URL", url)
    monkeypatch.setenv("BATCHOPS_LOCAL_MODE", "true")  # the endpoint server is on 127.0.0.1
    reset_settings()
    with job_endpoints() as server:
        yield server


def queue_url() -> str:
    return str(boto3.client("sqs").get_queue_url(QueueName="RunQueue")["QueueUrl"])


def create_job(endpoints: JobEndpoints, path: str = "/hook", workspace: str = "ws-a", **fields: Any) -> dict:
    body = {"name": path.strip("/").replace("/", "-") or "hook", "endpoint_url": endpoints.url(path), **fields}
    status, _, job = invoke(CREATE_JOB, api_event("create_job", body=body, workspace=workspace))
    assert status == 201, job
    endpoints.verify_with(path, job["signing_secret"])
    return job


def trigger(job_id: str, body: dict, workspace: str = "ws-a") -> tuple[int, Any]:
    status, _, out = invoke(
        TRIGGER, api_event("trigger_job", body=body, path_params={"jobID": job_id}, workspace=workspace)
    )
    return status, out


def bulk(job_id: str, items: list[dict], workspace: str = "ws-a", key_id: str = "key_test") -> tuple[int, Any]:
    event = api_event(
        "trigger_job_bulk", body={"items": items}, path_params={"jobID": job_id}, workspace=workspace, key_id=key_id
    )
    status, _, out = invoke(BULK, event)
    return status, out


def get_run(run_id: str, workspace: str = "ws-a") -> tuple[int, Any]:
    status, _, out = invoke(GET_RUN, api_event("get_run", path_params={"runID": run_id}, workspace=workspace))
    return status, out


def list_runs(workspace: str = "ws-a", **query: Any) -> tuple[int, Any]:
    event = api_event("list_runs", query={k: str(v) for k, v in query.items()}, workspace=workspace)
    status, _, out = invoke(LIST_RUNS, event)
    return status, out


def get_batch(batch_id: str, project_id: str | None = "ws-a", workspace: str = "ws-a") -> tuple[int, Any]:
    query = {"project_id": project_id} if project_id is not None else {}
    event = api_event("get_batch_operation", path_params={"batchID": batch_id}, query=query, workspace=workspace)
    status, _, out = invoke(GET_BATCH, event)
    return status, out


def receive(visibility: int = 0) -> list[dict]:
    return (
        boto3.client("sqs")
        .receive_message(
            QueueUrl=queue_url(), MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=visibility
        )
        .get("Messages", [])
    )


def work(messages: list[dict], remaining_ms: int = 890_000) -> dict:
    return WORKER.lambda_handler(sqs_event("run_worker", messages), LambdaContext(remaining_ms=remaining_ms))


def drain(limit: int = 1_000) -> int:
    """Deliver every visible message once per pass until the queue is empty; returns deliveries."""
    delivered = 0
    while delivered < limit:
        messages = receive(visibility=600)
        if not messages:
            return delivered
        for message in messages:
            result = work([message])
            if not result["batchItemFailures"]:
                boto3.client("sqs").delete_message(QueueUrl=queue_url(), ReceiptHandle=message["ReceiptHandle"])
            delivered += 1
    raise AssertionError("queue did not drain")


# ---------------------------------------------------------------- trigger and the worker


def test_trigger_runs_and_completes_with_a_verified_signature(endpoints):
    job = create_job(endpoints, max_attempts=2)
    endpoints.script("/hook", Reply(200, {"sent": True, "id": 7}))
    status, run = trigger(job["id"], {"payload": {"to": "a@example.com"}})
    assert status == 202
    assert run["status"] == "queued" and run["attempts"] == 0 and run["batch_id"] is None
    assert set(run) == {
        "id", "job_id", "project_id", "batch_id", "status", "payload", "attempts",
        "result", "error", "created_at", "started_at", "finished_at",
    }  # fmt: skip
    [message] = receive()
    assert json.loads(message["Body"]) == {"workspace_id": "ws-a", "run_id": run["id"]}
    assert work([message]) == {"batchItemFailures": []}
    [call] = endpoints.calls_to("/hook")
    assert call.verified
    assert call.body == {"run_id": run["id"], "job_id": job["id"], "attempt": 1, "payload": {"to": "a@example.com"}}
    assert call.headers["webhook-id"] == run["id"]
    _, done = get_run(run["id"])
    assert (done["status"], done["attempts"], done["result"], done["error"]) == (
        "completed",
        1,
        {"sent": True, "id": 7},
        None,
    )
    assert done["started_at"] <= done["finished_at"]


def test_duplicate_delivery_of_a_finished_run_calls_nothing(endpoints):
    job = create_job(endpoints)
    _, run = trigger(job["id"], {"payload": {"n": 1}})
    [message] = receive()
    work([message])
    work([message])  # SQS delivered it twice
    assert len(endpoints.calls_to("/hook")) == 1
    assert get_run(run["id"])[1]["attempts"] == 1


def test_a_delivery_while_another_holds_the_run_is_a_no_op(endpoints):
    from batchops.dal.runs import RunRepository, Transition
    from batchops.models.jobs import RunStatus

    job = create_job(endpoints)
    _, run = trigger(job["id"], {"payload": {}})
    repo = RunRepository("DomainTable")
    stored = repo.get("ws-a", run["id"])
    # Another delivery claimed the run a moment ago and is calling the endpoint.
    assert repo.transition(
        "ws-a",
        stored,
        Transition(RunStatus.QUEUED, 0, RunStatus.RUNNING, 1, {"lease_until": "2999-01-01T00:00:00.000000Z"}),
    )
    [message] = receive()
    assert work([message]) == {"batchItemFailures": []}
    assert endpoints.calls_to("/hook") == []
    assert get_run(run["id"])[1]["status"] == "running"


def test_an_abandoned_running_run_is_taken_over_as_a_new_attempt(endpoints):
    from batchops.dal.runs import RunRepository, Transition
    from batchops.models.jobs import RunStatus

    job = create_job(endpoints, max_attempts=3)
    _, run = trigger(job["id"], {"payload": {}})
    repo = RunRepository("DomainTable")
    # A worker claimed attempt 1 and died: its lease is long over.
    assert repo.transition(
        "ws-a",
        repo.get("ws-a", run["id"]),
        Transition(RunStatus.QUEUED, 0, RunStatus.RUNNING, 1, {"lease_until": "2000-01-01T00:00:00.000000Z"}),
    )
    [message] = receive()
    work([message])
    [call] = endpoints.calls_to("/hook")
    assert call.body["attempt"] == 2
    assert get_run(run["id"])[1]["status"] == "completed"


def test_503_with_retry_after_is_retried_later_then_completes(endpoints):
    job = create_job(endpoints, max_attempts=3, retry_backoff_secs=1)
    endpoints.script("/hook", Reply(503, {"busy": True}, {"Retry-After": "120"}), Reply(200, {"ok": 1}))
    _, run = trigger(job["id"], {"payload": {"x": 1}})
    [message] = receive()
    result = work([message])
    assert result == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    _, waiting = get_run(run["id"])
    assert (waiting["status"], waiting["attempts"]) == ("queued", 1)
    assert waiting["error"] == {"code": "HTTP_ERROR", "message": "The endpoint answered HTTP 503", "http_status": 503}
    # Retry-After: 120 hid the message for at least that long: nothing is visible now.
    assert receive() == []
    sqs = boto3.client("sqs")
    sqs.change_message_visibility(QueueUrl=queue_url(), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    [again] = receive()
    assert work([again]) == {"batchItemFailures": []}
    _, done = get_run(run["id"])
    assert (done["status"], done["attempts"], done["result"], done["error"]) == ("completed", 2, {"ok": 1}, None)
    assert [c.body["attempt"] for c in endpoints.calls_to("/hook")] == [1, 2]


def test_retries_stop_at_max_attempts_and_fail(endpoints):
    job = create_job(endpoints, max_attempts=2, retry_backoff_secs=1)
    endpoints.script("/hook", Reply(500))
    _, run = trigger(job["id"], {"payload": {}})
    for _ in range(2):
        [message] = receive()
        work([message])
        boto3.client("sqs").change_message_visibility(
            QueueUrl=queue_url(), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    _, done = get_run(run["id"])
    assert (done["status"], done["attempts"], done["error"]["http_status"]) == ("failed", 2, 500)
    assert len(endpoints.calls_to("/hook")) == 2


def test_a_4xx_fails_at_once_without_retry(endpoints):
    job = create_job(endpoints, max_attempts=5)
    endpoints.script("/hook", Reply(404, {"error": "no such user"}))
    _, run = trigger(job["id"], {"payload": {}})
    [message] = receive()
    assert work([message]) == {"batchItemFailures": []}
    _, done = get_run(run["id"])
    assert (done["status"], done["attempts"]) == ("failed", 1)
    assert done["error"] == {"code": "HTTP_ERROR", "message": "The endpoint answered HTTP 404", "http_status": 404}


def test_a_timeout_on_the_last_attempt_ends_timed_out(endpoints):
    job = create_job(endpoints, timeout_secs=1, max_attempts=1)
    endpoints.script("/hook", Reply(200, {"late": True}, delay=2.5))
    _, run = trigger(job["id"], {"payload": {}})
    [message] = receive()
    assert work([message]) == {"batchItemFailures": []}
    _, done = get_run(run["id"])
    assert (done["status"], done["error"]["code"], done["result"]) == ("timed_out", "TIMEOUT", None)


def test_a_redirect_is_not_followed(endpoints):
    job = create_job(endpoints)
    endpoints.script("/hook", Reply(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}))
    _, run = trigger(job["id"], {"payload": {}})
    work(receive())
    _, done = get_run(run["id"])
    assert done["status"] == "failed" and "redirects are not followed" in done["error"]["message"]
    assert len(endpoints.calls) == 1


def test_call_time_check_refuses_loopback_outside_local_mode(endpoints, monkeypatch):
    job = create_job(endpoints)
    _, run = trigger(job["id"], {"payload": {}})
    monkeypatch.setenv("BATCHOPS_LOCAL_MODE", "false")  # as deployed: the URL is checked again at call time
    reset_settings()
    work(receive())
    _, done = get_run(run["id"])
    assert (done["status"], done["error"]["code"]) == ("failed", "UNSAFE_URL")
    assert endpoints.calls == []


def test_a_run_of_a_deleted_job_fails(endpoints):
    job = create_job(endpoints)
    _, run = trigger(job["id"], {"payload": {}})
    invoke(DELETE_JOB, api_event("delete_job", path_params={"jobID": job["id"]}, workspace="ws-a"))
    work(receive())
    _, done = get_run(run["id"])
    assert (done["status"], done["error"]["code"]) == ("failed", "JOB_NOT_FOUND")


def test_oversized_and_non_json_results(endpoints):
    job = create_job(endpoints)
    endpoints.script("/hook", Reply(200, raw=b"x" * (256 * 1024 + 1)), Reply(200, raw=b"plain text"))
    _, big = trigger(job["id"], {"payload": {"n": 1}})
    _, text = trigger(job["id"], {"payload": {"n": 2}})
    drain()
    _, big = get_run(big["id"])
    assert (big["status"], big["result"], big["error"]["code"]) == ("completed", None, "RESULT_TOO_LARGE")
    _, text = get_run(text["id"])
    assert (text["status"], text["result"], text["error"]) == ("completed", "plain text", None)


# ---------------------------------------------------------------- de-duplication


def test_idempotency_key_returns_the_same_run_with_200(endpoints):
    job = create_job(endpoints)
    status, first = trigger(job["id"], {"payload": {"a": 1}, "idempotency_key": "k-1"})
    assert status == 202
    status, again = trigger(job["id"], {"payload": {"a": 2}, "idempotency_key": "k-1"})
    assert status == 200 and again["deduplicated"] is True
    assert again["id"] == first["id"] and again["payload"] == {"a": 1}
    assert len(receive()) == 1


def test_payload_dedup_applies_only_within_the_window(endpoints):
    windowed = create_job(endpoints, "/windowed", dedup_window_secs=3600)
    plain = create_job(endpoints, "/plain")
    status, first = trigger(windowed["id"], {"payload": {"b": 1, "a": [1, 2]}})
    assert status == 202
    status, same = trigger(windowed["id"], {"payload": {"a": [1, 2], "b": 1}})  # key order differs
    assert (status, same["id"], same["deduplicated"]) == (200, first["id"], True)
    assert trigger(windowed["id"], {"payload": {"a": [2, 1], "b": 1}})[0] == 202
    assert trigger(plain["id"], {"payload": {"b": 1}})[0] == 202
    assert trigger(plain["id"], {"payload": {"b": 1}})[0] == 202  # window 0: no payload de-duplication


def test_an_expired_window_lets_the_payload_run_again(endpoints):
    from batchops.dal import clients
    from batchops.dal.items import serialize

    job = create_job(endpoints, dedup_window_secs=60)
    _, first = trigger(job["id"], {"payload": {"p": 1}})
    table = clients.dynamodb()
    claims = [i for i in table.scan(TableName="DomainTable")["Items"] if i["pk"]["S"].startswith("WS#ws-a#RUNCLAIM#")]
    [claim] = claims
    # The window ended (DynamoDB's TTL may take a while to delete the claim; it no longer counts).
    table.update_item(
        TableName="DomainTable",
        Key={"pk": claim["pk"], "sk": claim["sk"]},
        UpdateExpression="SET #u = :past",
        ExpressionAttributeNames={"#u": "until"},
        ExpressionAttributeValues=serialize({":past": 1}),
    )
    status, second = trigger(job["id"], {"payload": {"p": 1}})
    assert status == 202 and second["id"] != first["id"]


def test_a_claim_whose_run_was_never_stored_is_reclaimed(endpoints):
    from batchops.dal.runs import Claim, RunRepository
    from batchops.services.runs import ABANDONED_CLAIM_SECONDS

    job = create_job(endpoints)
    repo = RunRepository("DomainTable")
    # A trigger claimed the key long ago and died before storing its run.
    claim = Claim("key", __import__("hashlib").sha256(b"k-9").hexdigest(), "run_never_stored")
    refused = repo.write_claims(
        "ws-a", job["id"], [[claim]], now=0, claimed_at="2000-01-01T00:00:00.000000Z", expires_at=10**10, voids={}
    )
    assert refused == set() and ABANDONED_CLAIM_SECONDS < 10**9
    status, run = trigger(job["id"], {"payload": {}, "idempotency_key": "k-9"})
    assert status == 202 and run["id"] != "run_never_stored"


# ---------------------------------------------------------------- bulk trigger and batch operations


def test_bulk_trigger_dedups_counts_and_finishes_once(endpoints):
    job = create_job(endpoints, dedup_window_secs=600)
    trigger(job["id"], {"payload": {"n": 0}})  # an earlier run with the payload of item 0
    drain()
    items = [
        {"payload": {"n": 0}},  # repeats the earlier run
        {"payload": {"n": 1}, "idempotency_key": "k1"},
        {"payload": {"n": 2}},
        {"payload": {"n": 1}},  # repeats item 1 in this request
        {"payload": {"n": 3}, "idempotency_key": "k1"},  # repeats item 1's key
        {"payload": {"n": 4}},
    ]
    status, out = bulk(job["id"], items, key_id="key-123")
    assert status == 201
    batch = out["batch_operation"]
    assert (batch["item_count"], batch["created_count"], batch["created_by"]) == (6, 3, "apikey:key-123")
    assert batch["finished_at"] is None and batch["project_id"] == "ws-a" and batch["job_id"] == job["id"]
    assert out["deduplicated_indexes"] == [0, 3, 4]
    assert [(r["index"], r["status"]) for r in out["runs"]] == [(1, "queued"), (2, "queued"), (5, "queued")]
    _, live = get_batch(batch["id"])
    assert live["run_counts"] == {
        "queued": 3,
        "running": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
        "timed_out": 0,
    }
    messages = receive()
    assert len(messages) == 3
    work(messages[:2])
    _, partway = get_batch(batch["id"])
    assert partway["finished_at"] is None and partway["run_counts"]["completed"] == 2
    work(messages[2:])
    _, done = get_batch(batch["id"])
    assert done["finished_at"] is not None and done["run_counts"]["completed"] == 3
    work(messages)  # duplicates: nothing moves, finished_at stays
    _, after = get_batch(batch["id"])
    assert after["finished_at"] == done["finished_at"] and after["run_counts"] == done["run_counts"]
    status, page = list_runs(batch_id=batch["id"])
    assert {r["id"] for r in page["data"]} == {r["id"] for r in out["runs"]}
    assert all(r["batch_id"] == batch["id"] for r in page["data"])


def test_bulk_of_only_duplicates_is_finished_at_once(endpoints):
    job = create_job(endpoints)
    bulk(job["id"], [{"payload": {}, "idempotency_key": "a"}])
    status, out = bulk(job["id"], [{"payload": {}, "idempotency_key": "a"}, {"payload": {}, "idempotency_key": "a"}])
    assert status == 201
    assert out["batch_operation"]["created_count"] == 0 and out["runs"] == []
    assert out["deduplicated_indexes"] == [0, 1]
    assert out["batch_operation"]["finished_at"] == out["batch_operation"]["created_at"]


def test_a_failed_run_still_finishes_its_batch(endpoints):
    job = create_job(endpoints, max_attempts=1)
    endpoints.script("/hook", Reply(200), Reply(400))
    _, out = bulk(job["id"], [{"payload": {"n": 1}}, {"payload": {"n": 2}}])
    drain()
    _, done = get_batch(out["batch_operation"]["id"])
    assert done["finished_at"] is not None
    assert (done["run_counts"]["completed"], done["run_counts"]["failed"]) == (1, 1)


def test_bulk_validation_rejects_the_whole_request(endpoints):
    job = create_job(endpoints)
    big = {"blob": "x" * (256 * 1024)}
    status, err = bulk(job["id"], [{"payload": {}}, {"payload": big}, {"payload": {}, "idempotency_key": ""}])
    assert (status, err["code"]) == (422, "VALIDATION_FAILED")
    assert [d["index"] for d in err["details"]] == [1, 2]
    assert "262,144" in err["details"][0]["error"]
    assert receive() == [] and list_runs()[1]["data"] == []
    assert bulk(job["id"], [])[0] == 422
    assert bulk(job["id"], [{"payload": {}}] * 501)[0] == 422


def test_trigger_errors(endpoints):
    job = create_job(endpoints)
    assert trigger("job_missing", {"payload": {}})[0] == 404
    assert trigger(job["id"], {"payload": {}}, workspace="ws-b")[0] == 404
    assert bulk(job["id"], [{"payload": {}}], workspace="ws-b")[0] == 404
    status, err = trigger(job["id"], {"payload": {"blob": "x" * (256 * 1024)}})
    assert (status, err["details"][0]["field"]) == (422, "payload")
    invoke(
        UPDATE_JOB, api_event("update_job", body={"enabled": False}, path_params={"jobID": job["id"]}, workspace="ws-a")
    )
    status, err = trigger(job["id"], {"payload": {}})
    assert (status, err["code"]) == (409, "JOB_DISABLED")
    assert bulk(job["id"], [{"payload": {}}])[1]["code"] == "JOB_DISABLED"


def test_payload_of_exactly_256_kb_is_accepted(endpoints):
    job = create_job(endpoints)
    overhead = len(json.dumps({"b": ""}, separators=(",", ":")))
    payload = {"b": "x" * (256 * 1024 - overhead)}
    status, run = trigger(job["id"], {"payload": payload})
    assert status == 202
    assert get_run(run["id"])[1]["payload"] == payload


def test_runs_and_batches_are_isolated_per_workspace(endpoints):
    job = create_job(endpoints)
    _, run = trigger(job["id"], {"payload": {}})
    _, out = bulk(job["id"], [{"payload": {"n": 1}}])
    batch_id = out["batch_operation"]["id"]
    assert get_run(run["id"], workspace="ws-b")[0] == 404
    assert get_batch(batch_id, project_id="ws-b", workspace="ws-b")[0] == 404
    assert get_batch(batch_id, project_id="ws-a", workspace="ws-b")[0] == 404  # not the caller's project
    assert get_batch(batch_id, project_id=None)[0] == 422
    assert list_runs(workspace="ws-b", job_id=job["id"])[1] == {"data": [], "next_cursor": None}
    assert list_runs(workspace="ws-b", batch_id=batch_id)[1] == {"data": [], "next_cursor": None}
    assert list_runs(workspace="ws-b")[1]["data"] == []
    status, _, err = invoke(
        LIST_BATCHES, api_event("list_batch_operations", query={"project_id": "ws-a"}, workspace="ws-b")
    )
    assert (status, err["code"]) == (404, "BATCH_OPERATION_NOT_FOUND")
    status, _, err = invoke(LIST_BATCHES, api_event("list_batch_operations", query={}, workspace="ws-a"))
    assert (status, err["details"][0]["field"]) == (422, "project_id")


def test_listing_runs_filters_and_pages(endpoints):
    job = create_job(endpoints)
    other = create_job(endpoints, "/other")
    ids = [trigger(job["id"], {"payload": {"n": n}})[1]["id"] for n in range(5)]
    trigger(other["id"], {"payload": {}})
    endpoints.script("/hook", Reply(200))
    seen: list[str] = []
    cursor = None
    while True:
        query = {"job_id": job["id"], "limit": 2, **({"cursor": cursor} if cursor else {})}
        status, page = list_runs(**query)
        assert status == 200 and len(page["data"]) <= 2
        seen += [r["id"] for r in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))  # newest first
    assert len(list_runs()[1]["data"]) == 6
    assert list_runs(status="completed")[1]["data"] == []
    assert list_runs(status="bogus")[0] == 422
    assert list_runs(limit=0)[0] == 422 and list_runs(limit=101)[0] == 422
    assert list_runs(cursor="not-a-cursor")[0] == 422


def test_batch_operations_list_newest_first_with_counts(endpoints):
    job = create_job(endpoints)
    made = [bulk(job["id"], [{"payload": {"n": n}}])[1]["batch_operation"]["id"] for n in range(3)]
    status, _, page = invoke(
        LIST_BATCHES, api_event("list_batch_operations", query={"project_id": "ws-a", "limit": "2"}, workspace="ws-a")
    )
    assert status == 200
    assert [b["id"] for b in page["data"]] == made[::-1][:2]
    assert page["data"][0]["run_counts"]["queued"] == 1 and page["next_cursor"]


def test_the_sweeper_queues_runs_whose_message_was_lost(endpoints, monkeypatch):
    job = create_job(endpoints)
    _, run = trigger(job["id"], {"payload": {}})
    [lost] = receive()
    boto3.client("sqs").delete_message(QueueUrl=queue_url(), ReceiptHandle=lost["ReceiptHandle"])
    assert SWEEPER.lambda_handler(fixture_event("sweeper"), LambdaContext())["requeued_runs"] == 0  # not overdue yet
    monkeypatch.setenv("BATCHOPS_RUN_RECHECK_SECONDS", "1")
    reset_settings()
    from batchops.dal.runs import RunRepository

    RunRepository("DomainTable").recheck_later("ws-a", run["id"], None, "2000-01-01T00:00:00.000000Z")
    assert SWEEPER.lambda_handler(fixture_event("sweeper"), LambdaContext())["requeued_runs"] == 1
    work(receive())
    assert get_run(run["id"])[1]["status"] == "completed"
    assert SWEEPER.lambda_handler(fixture_event("sweeper"), LambdaContext())["requeued_runs"] == 0


def test_runs_sqs_would_not_take_are_queued_by_the_next_sweep(endpoints, monkeypatch):
    from batchops.services import runs

    job = create_job(endpoints)
    real_send = runs.send_messages
    monkeypatch.setattr(runs, "send_messages", lambda url, bodies: list(range(len(bodies))))  # SQS refuses all
    status, out = bulk(job["id"], [{"payload": {"n": 1}}, {"payload": {"n": 2}}])
    assert status == 201 and receive() == []  # stored, not queued
    monkeypatch.setattr(runs, "send_messages", real_send)
    assert SWEEPER.lambda_handler(fixture_event("sweeper"), LambdaContext())["requeued_runs"] == 2
    drain()
    _, batch = get_batch(out["batch_operation"]["id"])
    assert batch["finished_at"] and batch["run_counts"]["completed"] == 2


def test_a_store_that_fails_creates_nothing_and_can_be_retried(endpoints, monkeypatch):
    from batchops.dal.runs import RunRepository

    job = create_job(endpoints, dedup_window_secs=600)
    real_put = RunRepository.put_all

    def partly(self, items):  # DynamoDB kept refusing one item after every retry
        failed = real_put(self, items[:-1])
        return [*failed, len(items) - 1]

    monkeypatch.setattr(RunRepository, "put_all", partly)
    items = [{"payload": {"n": 1}, "idempotency_key": "a"}, {"payload": {"n": 2}}]
    status, err = bulk(job["id"], items)
    assert (status, err["code"]) == (503, "STORAGE_ERROR")
    assert receive() == [] and list_runs()[1]["data"] == []
    monkeypatch.setattr(RunRepository, "put_all", real_put)
    status, out = bulk(job["id"], items)  # the claims were released: nothing counts as a duplicate
    assert status == 201 and out["deduplicated_indexes"] == [] and len(out["runs"]) == 2


def test_a_status_write_whose_answer_was_lost_counts_as_done(endpoints):
    from batchops.dal.runs import RunRepository, Transition
    from batchops.models.jobs import RunStatus

    job = create_job(endpoints)
    _, run = trigger(job["id"], {"payload": {}})
    repo = RunRepository("DomainTable")
    stored = repo.get("ws-a", run["id"], with_result=False)
    mine = Transition(RunStatus.QUEUED, 0, RunStatus.RUNNING, 1, {"lease_until": "2999-01-01T00:00:00.000001Z"})
    assert repo.transition("ws-a", stored, mine)
    # botocore retried the same write after a lost answer: its condition fails, yet it is ours.
    assert repo.transition("ws-a", stored, mine)
    theirs = Transition(RunStatus.QUEUED, 0, RunStatus.RUNNING, 1, {"lease_until": "2999-01-01T00:00:00.000002Z"})
    assert not repo.transition("ws-a", stored, theirs)


def test_claims_are_released_when_claiming_fails_part_way(endpoints, monkeypatch):
    from batchops.dal.runs import RunRepository
    from batchops.errors import StorageError

    job = create_job(endpoints)
    real = RunRepository.write_claims

    def then_fail(self, *args, **kwargs):
        real(self, *args, **kwargs)  # the first chunks were written...
        raise StorageError("...and a later chunk kept conflicting")

    monkeypatch.setattr(RunRepository, "write_claims", then_fail)
    items = [{"payload": {}, "idempotency_key": "x"}, {"payload": {}, "idempotency_key": "y"}]
    assert bulk(job["id"], items)[0] == 503
    monkeypatch.setattr(RunRepository, "write_claims", real)
    status, out = bulk(job["id"], items)
    assert status == 201 and out["deduplicated_indexes"] == [] and len(out["runs"]) == 2


def test_an_item_whose_competing_claim_vanished_is_claimed_again(endpoints, monkeypatch):
    from batchops.dal.runs import RunRepository

    job = create_job(endpoints)
    real = RunRepository.write_claims
    rounds = []

    def refused_once(self, workspace_id, job_id, groups, **kwargs):
        rounds.append(len(groups))
        if len(rounds) == 1:
            return {0}  # a concurrent trigger held the claim, then released it before we looked
        return real(self, workspace_id, job_id, groups, **kwargs)

    monkeypatch.setattr(RunRepository, "write_claims", refused_once)
    status, out = bulk(job["id"], [{"payload": {}, "idempotency_key": "k"}])
    assert status == 201 and out["deduplicated_indexes"] == [] and len(out["runs"]) == 1
    assert rounds == [1, 1]


def test_lowering_max_attempts_ends_a_waiting_run(endpoints):
    job = create_job(endpoints, max_attempts=3)
    endpoints.script("/hook", Reply(503))
    _, run = trigger(job["id"], {"payload": {}})
    [message] = receive()
    work([message])
    assert get_run(run["id"])[1]["status"] == "queued"
    invoke(UPDATE_JOB, api_event("update_job", body={"max_attempts": 1}, path_params={"jobID": job["id"]}))
    boto3.client("sqs").change_message_visibility(
        QueueUrl=queue_url(), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    work(receive())
    _, done = get_run(run["id"])
    assert (done["status"], done["attempts"], done["error"]["http_status"]) == ("failed", 1, 503)
    assert len(endpoints.calls_to("/hook")) == 1
