"""Runs (seed 001): trigger, trigger-bulk, the run worker and batch operations, through the real
handlers on moto, with the worker calling a real HTTP server on 127.0.0.1 that verifies our
Standard Webhooks signatures."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
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
    monkeypatch.setenv("BATCHOPS_RUN_QUEUE_URL", queue_url())
    monkeypatch.setenv("BATCHOPS_RUN_URGENT_QUEUE_URL", queue_url(URGENT))
    monkeypatch.setenv("BATCHOPS_LOCAL_MODE", "true")  # the endpoint server is on 127.0.0.1
    reset_settings()
    with job_endpoints() as server:
        yield server


URGENT = "RunUrgentQueue"  # runs of priority 5 and above


def queue_url(queue: str = "RunQueue") -> str:
    return str(boto3.client("sqs").get_queue_url(QueueName=queue)["QueueUrl"])


def create_job(endpoints: JobEndpoints, path: str = "/hook", workspace: str = "ws-a", **fields: Any) -> dict:
    body = {"name": path.strip("/").replace("/", "-") or "hook", "endpoint_url": endpoints.url(path), **fields}
    status, _, job = invoke(CREATE_JOB, api_event("create_job", body=body, workspace=workspace))
    assert status == 201, job
    endpoints.verify_with(path, job["signing_secret"])
    return job


def trigger(job_id: str, body: dict, workspace: str = "ws-a", headers: dict | None = None) -> tuple[int, Any]:
    status, _, out = invoke(
        TRIGGER,
        api_event("trigger_job", body=body, path_params={"jobID": job_id}, workspace=workspace, headers=headers),
    )
    return status, out


def bulk(
    job_id: str, items: list[dict], workspace: str = "ws-a", key_id: str = "key_test", fixture: str = "trigger_job_bulk"
) -> tuple[int, Any]:
    event = api_event(fixture, body={"items": items}, path_params={"jobID": job_id}, workspace=workspace, key_id=key_id)
    status, _, out = invoke(BULK, event)
    return status, out


def created_ids(out: dict) -> list[str]:
    """Runs a bulk answer created (a repeat names a run that was not created by its own item)."""
    seen: set[str] = set()
    ids = []
    for result in out["results"]:
        if result["id"] not in seen and not result["idempotency_hit"]:
            seen.add(result["id"])
            ids.append(result["id"])
    return ids


def stored(run_id: str, workspace: str = "ws-a") -> dict:
    from batchops.dal.runs import RunRepository

    run = RunRepository("DomainTable").get(workspace, run_id, with_result=False)
    assert run is not None
    return run


def set_attributes(run_id: str, workspace: str = "ws-a", **values: Any) -> None:
    """Move a stored run's clock-driven attributes (time passing, without sleeping)."""
    from batchops.dal import clients, keys
    from batchops.dal.items import serialize

    names = {f"#a{n}": name for n, name in enumerate(values)}
    clients.dynamodb().update_item(
        TableName="DomainTable",
        Key=serialize(keys.run(workspace, run_id)),
        UpdateExpression="SET " + ", ".join(f"#a{n} = :v{n}" for n in range(len(values))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=serialize({f":v{n}": v for n, v in enumerate(values.values())}),
    )


def backoff_over(run_id: str, workspace: str = "ws-a") -> None:
    """The run's retry delay went by (a message shown again before then waits for it)."""
    set_attributes(run_id, workspace, next_retry_at="2000-01-01T00:00:00.000000Z")


def get_run(run_id: str, workspace: str = "ws-a") -> tuple[int, Any]:
    status, _, out = invoke(GET_RUN, api_event("get_run", path_params={"runID": run_id}, workspace=workspace))
    return status, out


def list_runs(workspace: str = "ws-a", **query: Any) -> tuple[int, Any]:
    event = api_event("list_runs", query={k: str(v) for k, v in query.items()}, workspace=workspace)
    status, _, out = invoke(LIST_RUNS, event)
    return status, out


def get_batch(batch_id: str, project_id: str | None = None, workspace: str = "ws-a") -> tuple[int, Any]:
    query = {"project_id": project_id} if project_id is not None else {}
    event = api_event("get_batch_operation", path_params={"batchID": batch_id}, query=query, workspace=workspace)
    status, _, out = invoke(GET_BATCH, event)
    return status, out


def receive(visibility: int = 0, queue: str = "RunQueue") -> list[dict]:
    return (
        boto3.client("sqs")
        .receive_message(
            QueueUrl=queue_url(queue), MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=visibility
        )
        .get("Messages", [])
    )


def work(messages: list[dict], remaining_ms: int = 890_000, queue: str = "RunQueue") -> dict:
    # Each queue is its own event source of the worker: its records name the queue they came from.
    fixture = "run_worker_urgent" if queue == URGENT else "run_worker"
    return WORKER.lambda_handler(sqs_event(fixture, messages), LambdaContext(remaining_ms=remaining_ms))


def drain(limit: int = 1_000, queue: str = "RunQueue") -> int:
    """Deliver every visible message once per pass until the queue is empty; returns deliveries."""
    delivered = 0
    while delivered < limit:
        messages = receive(visibility=600, queue=queue)
        if not messages:
            return delivered
        for message in messages:
            result = work([message], queue=queue)
            if not result["batchItemFailures"]:
                boto3.client("sqs").delete_message(QueueUrl=queue_url(queue), ReceiptHandle=message["ReceiptHandle"])
            delivered += 1
    raise AssertionError("queue did not drain")


def run_counts(batch_id: str) -> Counter[str]:
    """How many of a batch's runs have each status, from the runs themselves (a BatchOperation
    carries exactly the seed's fields, no counts)."""
    status, page = list_runs(batch_id=batch_id, limit=100)
    assert status == 200 and not page["has_more"]
    return Counter(r["status"] for r in page["data"])


# ---------------------------------------------------------------- trigger and the worker


def test_trigger_runs_and_completes_with_a_verified_signature(endpoints):
    job = create_job(endpoints, max_attempts=2)
    endpoints.script("/hook", Reply(200, {"sent": True, "id": 7}))
    status, answer = trigger(job["id"], {"payload": {"to": "a@example.com"}})
    assert status == 201
    # Strait's trigger answer (api/trigger_immediate.go triggerRunResponse).
    assert set(answer) == {"id", "status", "payload_hash", "idempotency_hit"}
    assert (answer["status"], answer["idempotency_hit"]) == ("queued", False)
    assert answer["payload_hash"] == hashlib.sha256(b'{"to":"a@example.com"}').hexdigest()
    _, queued = get_run(answer["id"])
    assert set(queued) == {
        "id", "job_id", "project_id", "status", "attempt", "payload", "priority", "triggered_by",
        "created_by", "job_version", "execution_mode", "created_at", "updated_at",
    }  # fmt: skip
    assert (queued["status"], queued["attempt"], queued["priority"], queued["triggered_by"]) == (
        "queued",
        1,
        0,
        "manual",
    )
    assert queued["created_by"] == "apikey:key_test" and queued["project_id"] == "ws-a"
    [message] = receive()
    assert json.loads(message["Body"]) == {"workspace_id": "ws-a", "run_id": answer["id"]}
    assert work([message]) == {"batchItemFailures": []}
    [call] = endpoints.calls_to("/hook")
    assert call.verified
    assert call.body == {"run_id": answer["id"], "job_id": job["id"], "attempt": 1, "payload": {"to": "a@example.com"}}
    assert call.headers["webhook-id"] == answer["id"]
    _, done = get_run(answer["id"])
    assert (done["status"], done["attempt"], done["result"]) == ("completed", 1, {"sent": True, "id": 7})
    assert "error" not in done and done["completed_at"] == done["finished_at"]
    assert done["started_at"] <= done["finished_at"] <= done["updated_at"]


def test_duplicate_delivery_of_a_finished_run_calls_nothing(endpoints):
    job = create_job(endpoints)
    _, run = trigger(job["id"], {"payload": {"n": 1}})
    [message] = receive()
    work([message])
    work([message])  # SQS delivered it twice
    assert len(endpoints.calls_to("/hook")) == 1
    assert get_run(run["id"])[1]["attempt"] == 1


def test_a_delivery_while_another_holds_the_run_is_a_no_op(endpoints):
    from batchops.dal.runs import RunRepository, Transition
    from batchops.models.jobs import RunStatus

    job = create_job(endpoints)
    _, run = trigger(job["id"], {"payload": {}})
    repo = RunRepository("DomainTable")
    # Another delivery claimed the run a moment ago and is calling the endpoint.
    assert repo.transition(
        "ws-a",
        stored(run["id"]),
        Transition(RunStatus.QUEUED, 0, RunStatus.RUNNING, 1, {"lease_until": "2999-01-01T00:00:00.000000Z"}),
    )
    [message] = receive()
    assert work([message]) == {"batchItemFailures": []}
    assert endpoints.calls_to("/hook") == []
    assert get_run(run["id"])[1]["status"] == "executing"  # Strait's name for a running run


def test_an_abandoned_running_run_is_taken_over_as_a_new_attempt(endpoints):
    from batchops.dal.runs import RunRepository, Transition
    from batchops.models.jobs import RunStatus

    job = create_job(endpoints, max_attempts=3)
    _, run = trigger(job["id"], {"payload": {}})
    repo = RunRepository("DomainTable")
    # A worker claimed attempt 1 and died: its lease is long over.
    assert repo.transition(
        "ws-a",
        stored(run["id"]),
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
    assert (waiting["status"], waiting["attempt"]) == ("queued", 1)
    assert (waiting["error"], waiting["error_class"]) == ("The endpoint answered HTTP 503", "server")
    assert waiting["error_detail"] == {
        "code": "HTTP_ERROR",
        "message": "The endpoint answered HTTP 503",
        "http_status": 503,
    }
    # Retry-After: 120 hid the message for at least that long, and the run says when it retries.
    assert waiting["next_retry_at"] > waiting["started_at"]
    assert receive() == []
    backoff_over(run["id"])
    sqs = boto3.client("sqs")
    sqs.change_message_visibility(QueueUrl=queue_url(), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    [again] = receive()
    assert work([again]) == {"batchItemFailures": []}
    _, done = get_run(run["id"])
    assert (done["status"], done["attempt"], done["result"]) == ("completed", 2, {"ok": 1})
    assert not {"error", "error_class", "error_detail", "next_retry_at"} & set(done)
    assert [c.body["attempt"] for c in endpoints.calls_to("/hook")] == [1, 2]


def test_retries_stop_at_max_attempts_and_fail(endpoints):
    job = create_job(endpoints, max_attempts=2, retry_backoff_secs=1)
    endpoints.script("/hook", Reply(500))
    _, run = trigger(job["id"], {"payload": {}})
    for _ in range(2):
        [message] = receive()
        work([message])
        backoff_over(run["id"])
        boto3.client("sqs").change_message_visibility(
            QueueUrl=queue_url(), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    _, done = get_run(run["id"])
    assert (done["status"], done["attempt"], done["error_detail"]["http_status"]) == ("failed", 2, 500)
    assert len(endpoints.calls_to("/hook")) == 2


def test_a_4xx_fails_at_once_without_retry(endpoints):
    job = create_job(endpoints, max_attempts=5)
    endpoints.script("/hook", Reply(404, {"error": "no such user"}))
    _, run = trigger(job["id"], {"payload": {}})
    [message] = receive()
    assert work([message]) == {"batchItemFailures": []}
    _, done = get_run(run["id"])
    assert (done["status"], done["attempt"], done["error_class"]) == ("failed", 1, "client")
    assert done["error_detail"] == {
        "code": "HTTP_ERROR",
        "message": "The endpoint answered HTTP 404",
        "http_status": 404,
    }


def test_a_timeout_on_the_last_attempt_ends_timed_out(endpoints):
    job = create_job(endpoints, timeout_secs=1, max_attempts=1)
    endpoints.script("/hook", Reply(200, {"late": True}, delay=2.5))
    _, run = trigger(job["id"], {"payload": {}})
    [message] = receive()
    assert work([message]) == {"batchItemFailures": []}
    _, done = get_run(run["id"])
    assert (done["status"], done["error_detail"]["code"], done["error_class"]) == ("timed_out", "TIMEOUT", "timeout")
    assert "result" not in done


def test_a_redirect_is_not_followed(endpoints):
    job = create_job(endpoints)
    endpoints.script("/hook", Reply(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}))
    _, run = trigger(job["id"], {"payload": {}})
    work(receive())
    _, done = get_run(run["id"])
    assert done["status"] == "failed" and "redirects are not followed" in done["error"]
    assert len(endpoints.calls) == 1


def test_call_time_check_refuses_loopback_outside_local_mode(endpoints, monkeypatch):
    job = create_job(endpoints)
    _, run = trigger(job["id"], {"payload": {}})
    monkeypatch.setenv("BATCHOPS_LOCAL_MODE", "false")  # as deployed: the URL is checked again at call time
    reset_settings()
    work(receive())
    _, done = get_run(run["id"])
    assert (done["status"], done["error_detail"]["code"]) == ("failed", "UNSAFE_URL")
    assert endpoints.calls == []


def test_a_run_of_a_deleted_job_fails(endpoints):
    job = create_job(endpoints)
    _, run = trigger(job["id"], {"payload": {}})
    invoke(DELETE_JOB, api_event("delete_job", path_params={"jobID": job["id"]}, workspace="ws-a"))
    work(receive())
    _, done = get_run(run["id"])
    assert (done["status"], done["error_detail"]["code"]) == ("failed", "JOB_NOT_FOUND")


def test_oversized_and_non_json_results(endpoints):
    job = create_job(endpoints)
    endpoints.script("/hook", Reply(200, raw=b"x" * (256 * 1024 + 1)), Reply(200, raw=b"plain text"))
    _, big = trigger(job["id"], {"payload": {"n": 1}})
    _, text = trigger(job["id"], {"payload": {"n": 2}})
    drain()
    _, big = get_run(big["id"])
    assert (big["status"], big["error_detail"]["code"]) == ("completed", "RESULT_TOO_LARGE")
    assert "result" not in big and "error_class" not in big
    _, text = get_run(text["id"])
    assert (text["status"], text["result"]) == ("completed", "plain text") and "error" not in text


def test_strait_fields_are_stored_on_the_run(endpoints):
    job = create_job(
        endpoints, slug="hook-job", tags={"team": "growth", "tier": "free"}, default_run_metadata={"s": "1"}
    )
    body = {
        "payload": {"n": 1},
        "priority": 7,
        "tags": {"tier": "pro", "region": "eu"},
        "concurrency_key": "tenant-42",
        "debounce_key": "d",
        "batch_key": "b",
        "metadata": {"s": "2", "source": "dsl"},
    }
    status, answer = trigger(job["id"], body)
    assert status == 201
    _, run = get_run(answer["id"])
    assert run["tags"] == {"team": "growth", "tier": "pro", "region": "eu"}  # the trigger's win (Strait)
    # The trigger's metadata over the job's default_run_metadata, the trigger's winning.
    assert (run["priority"], run["concurrency_key"], run["metadata"]) == (7, "tenant-42", {"s": "2", "source": "dsl"})
    _, plain = trigger(job["id"], {"payload": {"n": 2}})
    assert get_run(plain["id"])[1]["metadata"] == {"s": "1"}
    assert (run["job_slug"], run["job_version"]) == ("hook-job", 1)
    assert stored(answer["id"])["debounce_key"] == "d"  # stored only


# ---------------------------------------------------------------- de-duplication and idempotency


def test_idempotency_key_returns_the_same_run_with_200(endpoints):
    job = create_job(endpoints)
    status, first = trigger(job["id"], {"payload": {"a": 1}, "idempotency_key": "k-1"})
    assert status == 201
    status, again = trigger(job["id"], {"payload": {"a": 2}, "idempotency_key": "k-1"})
    # Strait's run-level idempotency hit (api/trigger_idempotency.go): no payload_hash.
    assert (status, again) == (200, {"id": first["id"], "status": "queued", "idempotency_hit": True})
    assert get_run(first["id"])[1]["payload"] == {"a": 1}
    assert len(receive()) == 1


@pytest.mark.parametrize("header", ["Idempotency-Key", "X-Idempotency-Key"])
def test_the_header_key_is_the_runs_idempotency_key_for_good(endpoints, header):
    job = create_job(endpoints)
    # A bulk item's key and a trigger's header key are the same run-level key (as in Strait).
    _, out = bulk(job["id"], [{"payload": {"n": 1}, "idempotency_key": "order-1"}])
    [made] = out["results"]
    status, hit = trigger(job["id"], {"payload": {"n": 2}}, headers={header: "order-1"})
    assert (status, hit) == (200, {"id": made["id"], "status": "queued", "idempotency_hit": True})
    status, fresh = trigger(job["id"], {"payload": {"n": 3}}, headers={header: "order-2"})
    assert status == 201 and fresh["id"] != made["id"]
    assert get_run(fresh["id"])[1]["idempotency_key"] == "order-2"
    # The key is per job: another job's run may have it too.
    other = create_job(endpoints, "/other")
    assert trigger(other["id"], {"payload": {}}, headers={header: "order-1"})[0] == 201
    assert len(receive()) == 3


def test_header_and_body_keys_must_agree(endpoints):
    job = create_job(endpoints)
    status, err = trigger(job["id"], {"payload": {}, "idempotency_key": "a"}, headers={"Idempotency-Key": "b"})
    assert (status, err["code"], err["details"][0]["field"]) == (422, "VALIDATION_FAILED", "idempotency_key")
    assert trigger(job["id"], {"payload": {}, "idempotency_key": "a"}, headers={"Idempotency-Key": "a"})[0] == 201
    assert receive() and list_runs()[1]["data"][0]["idempotency_key"] == "a"


def test_payload_dedup_applies_only_within_the_window(endpoints):
    windowed = create_job(endpoints, "/windowed", dedup_window_secs=3600)
    plain = create_job(endpoints, "/plain")
    status, first = trigger(windowed["id"], {"payload": {"b": 1, "a": [1, 2]}})
    assert status == 201
    status, same = trigger(windowed["id"], {"payload": {"a": [1, 2], "b": 1}})  # key order differs
    # Strait answers a payload de-duplication hit like a new run (201), naming the existing one.
    assert (status, same) == (201, first)
    assert trigger(windowed["id"], {"payload": {"a": [2, 1], "b": 1}})[0] == 201
    assert trigger(plain["id"], {"payload": {"b": 1}})[0] == 201
    assert trigger(plain["id"], {"payload": {"b": 1}})[1]["id"] != first["id"]  # window 0: no de-duplication
    assert len(list_runs()[1]["data"]) == 4


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
    assert status == 201 and second["id"] != first["id"]


def test_a_claim_whose_run_was_never_stored_is_reclaimed(endpoints):
    from batchops.dal.runs import Claim, RunRepository
    from batchops.services.runs import ABANDONED_CLAIM_SECONDS

    job = create_job(endpoints)
    repo = RunRepository("DomainTable")
    # A trigger claimed the key long ago and died before storing its run.
    claim = Claim("key", hashlib.sha256(b"k-9").hexdigest(), "run_never_stored")
    refused = repo.write_claims(
        "ws-a", job["id"], [[claim]], now=0, claimed_at="2000-01-01T00:00:00.000000Z", expires_at=10**10, voids={}
    )
    assert refused == set() and ABANDONED_CLAIM_SECONDS < 10**9
    status, run = trigger(job["id"], {"payload": {}, "idempotency_key": "k-9"})
    assert status == 201 and run["id"] != "run_never_stored"


def test_dry_run_creates_nothing(endpoints):
    job = create_job(endpoints, slug="dry", run_ttl_secs=600)
    status, out = trigger(job["id"], {"payload": {"n": 1}, "dry_run": True, "priority": 3})
    assert status == 200
    assert out["job"] == {
        "id": job["id"], "name": "hook", "slug": "dry", "execution_mode": "http", "queue": "default",
        "timeout_secs": 30, "max_attempts": 3, "version": 1,
    }  # fmt: skip
    assert out["payload"] == {"n": 1} and out["scheduled_at"] is None and out["expires_at"]
    assert out["payload_hash"] == hashlib.sha256(b'{"n":1}').hexdigest() and out["validation_warnings"] == []
    assert receive() == [] and list_runs()[1]["data"] == []


# ---------------------------------------------------------------- priority, ttl and scheduled runs


def receive_all(queue: str = "RunQueue") -> list[dict]:
    received = []
    while messages := receive(visibility=600, queue=queue):
        received += messages
    return received


def test_priority_picks_the_queue_and_the_sending_order(endpoints, monkeypatch):
    from batchops.services import runs

    job = create_job(endpoints)
    calls: list[tuple[str, list[str]]] = []
    real_send = runs.send_messages

    def recording(url: str, bodies: list[dict], **kwargs: Any) -> list[int]:
        calls.append((url.rsplit("/", 1)[-1], [b["run_id"] for b in bodies]))
        return real_send(url, bodies, **kwargs)

    monkeypatch.setattr(runs, "send_messages", recording)
    priorities = [0, 10, 3, 10, 5, 0, 7, 3, 1, 9, 2, 10, 4, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0]  # 11 of priority 0
    status, out = bulk(job["id"], [{"payload": {"n": n}, "priority": p} for n, p in enumerate(priorities)])
    assert status == 201
    priority_of = {r["id"]: priorities[n] for n, r in enumerate(out["results"])}
    sent = [(queue, [priority_of[run_id] for run_id in ids]) for queue, ids in calls]
    # One call per priority, higher priorities first: each call returns once SQS took its
    # messages, so a lower priority is never sent before a higher one.
    assert [p for _, ps in sent for p in ps] == sorted(priorities, reverse=True)
    assert all(len(set(ps)) == 1 for _, ps in sent)
    # 5 and above go to the urgent run queue, the rest to RunQueue.
    assert [(queue, ps[0]) for queue, ps in sent] == [
        (URGENT if p >= 5 else "RunQueue", p) for p in sorted(set(priorities), reverse=True)
    ]
    urgent = [priority_of[json.loads(m["Body"])["run_id"]] for m in receive_all(URGENT)]
    plain = [priority_of[json.loads(m["Body"])["run_id"]] for m in receive_all()]
    assert (sorted(urgent), sorted(plain)) == (
        sorted(p for p in priorities if p >= 5),
        sorted(p for p in priorities if p < 5),
    )


def test_a_low_priority_backlog_does_not_delay_a_high_priority_run(endpoints):
    job = create_job(endpoints)
    _, backlog = bulk(job["id"], [{"payload": {"n": n}} for n in range(30)])  # priority 0, queued first
    status, urgent = trigger(job["id"], {"payload": {"urgent": True}, "priority": 8})  # a later request
    assert status == 201
    # Lambda polls each event source of the worker on its own: the urgent queue's poller finds the
    # urgent run at once, whatever waits on RunQueue.
    [message] = receive(visibility=600, queue=URGENT)
    assert json.loads(message["Body"])["run_id"] == urgent["id"]
    assert work([message], queue=URGENT) == {"batchItemFailures": []}
    assert get_run(urgent["id"])[1]["status"] == "completed"
    assert [c.body["payload"] for c in endpoints.calls] == [{"urgent": True}]
    assert run_counts(backlog["batch_id"]) == Counter(queued=30)
    assert drain() == 30 and run_counts(backlog["batch_id"]) == Counter(completed=30)


def test_a_retry_of_an_urgent_run_waits_on_the_urgent_queue(endpoints):
    job = create_job(endpoints, max_attempts=2, retry_backoff_secs=1)
    endpoints.script("/hook", Reply(503, headers={"Retry-After": "120"}), Reply(200, {"ok": True}))
    _, run = trigger(job["id"], {"payload": {}, "priority": 10})
    [message] = receive(queue=URGENT)
    # The worker hides the message for the retry delay on the queue it came from.
    assert work([message], queue=URGENT) == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert receive(queue=URGENT) == [] and receive() == []
    backoff_over(run["id"])
    boto3.client("sqs").change_message_visibility(
        QueueUrl=queue_url(URGENT), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    [again] = receive(queue=URGENT)
    assert work([again], queue=URGENT) == {"batchItemFailures": []}
    assert (get_run(run["id"])[1]["status"], get_run(run["id"])[1]["attempt"]) == ("completed", 2)


def test_a_run_not_started_within_its_ttl_expires_at_delivery(endpoints):
    job = create_job(endpoints)
    status, answer = trigger(job["id"], {"payload": {}, "ttl_secs": 60})
    assert status == 201
    _, run = get_run(answer["id"])
    assert run["expires_at"] > run["created_at"]
    set_attributes(answer["id"], start_by="2000-01-01T00:00:00.000000Z")  # the 60 s went by
    assert work(receive()) == {"batchItemFailures": []}
    _, done = get_run(answer["id"])
    assert (done["status"], done["error"], done["error_detail"]["code"]) == ("expired", "run expired", "EXPIRED")
    assert done["finished_at"] and endpoints.calls == []


def test_the_jobs_run_ttl_applies_and_a_started_run_never_expires(endpoints):
    job = create_job(endpoints, run_ttl_secs=30, max_attempts=2, retry_backoff_secs=1)
    endpoints.script("/hook", Reply(503), Reply(200, {"ok": True}))
    _, answer = trigger(job["id"], {"payload": {}})
    assert get_run(answer["id"])[1]["expires_at"]
    [message] = receive()
    work([message])  # attempt 1 fails: the run waits for its retry
    set_attributes(answer["id"], start_by="2000-01-01T00:00:00.000000Z")
    backoff_over(answer["id"])
    boto3.client("sqs").change_message_visibility(
        QueueUrl=queue_url(), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    work(receive())
    assert get_run(answer["id"])[1]["status"] == "completed"  # it had started: ttl no longer applies


def test_the_sweeper_expires_runs_still_queued_and_closes_their_batch(endpoints):
    job = create_job(endpoints)
    _, out = bulk(job["id"], [{"payload": {"n": 1}, "ttl_secs": 30}, {"payload": {"n": 2}}])
    expiring, lasting = (r["id"] for r in out["results"])
    from batchops.dal.runs import RunRepository

    # The queue is backed up: nobody has started the first run when its ttl runs out.
    set_attributes(expiring, start_by="2000-01-01T00:00:00.000000Z")
    RunRepository("DomainTable").recheck_later("ws-a", expiring, None, "2000-01-01T00:00:00.000000Z")
    assert SWEEPER.lambda_handler(fixture_event("sweeper"), LambdaContext())["requeued_runs"] == 0
    _, gone = get_run(expiring)
    assert (gone["status"], gone["error"]) == ("expired", "run expired")
    _, batch = get_batch(out["batch_id"])
    assert (run_counts(out["batch_id"]), batch["finished_at"]) == (Counter(expired=1, queued=1), None)
    drain()  # the expired run's message is a no-op; the other completes
    assert [c.body["payload"] for c in endpoints.calls_to("/hook")] == [{"n": 2}]
    _, batch = get_batch(out["batch_id"])
    assert run_counts(out["batch_id"]) == Counter(completed=1, expired=1)
    assert batch["finished_at"] is not None and get_run(lasting)[1]["status"] == "completed"


def test_a_scheduled_run_waits_until_it_is_due(endpoints):
    from datetime import UTC, datetime, timedelta

    from batchops.services import run_worker

    job = create_job(endpoints)
    due = datetime.now(UTC) + timedelta(seconds=120)
    status, answer = trigger(job["id"], {"payload": {}, "scheduled_at": due.isoformat()})
    assert (status, answer["status"]) == (201, "delayed")
    _, run = get_run(answer["id"])
    assert run["status"] == "delayed" and run["scheduled_at"].startswith(due.strftime("%Y-%m-%dT%H:%M:%S"))
    assert receive() == []  # sent with DelaySeconds: invisible until it is due
    # A delivery before it is due (a duplicate) claims nothing and hides itself until then.
    early = run_worker.deliver("ws-a", answer["id"], remaining_ms=890_000)
    assert early.retry_in_seconds is not None and 100 <= early.retry_in_seconds <= 120
    assert endpoints.calls == []
    set_attributes(answer["id"], scheduled_at="2000-01-01T00:00:00.000000Z")  # it is due
    assert run_worker.deliver("ws-a", answer["id"], remaining_ms=890_000).retry_in_seconds is None
    assert get_run(answer["id"])[1]["status"] == "completed" and len(endpoints.calls) == 1


def test_a_run_scheduled_far_ahead_is_sent_by_the_sweeper(endpoints):
    from datetime import UTC, datetime, timedelta

    from batchops.dal.runs import RunRepository

    job = create_job(endpoints)
    due = datetime.now(UTC) + timedelta(days=2)
    status, out = bulk(job["id"], [{"payload": {}, "scheduled_at": due.isoformat()}])
    [result] = out["results"]
    assert (status, result["status"]) == (201, "delayed")
    # Kept (DynamoDB TTL) for the 30 days of retention from when it is due, and so is its batch.
    kept = int(due.timestamp()) + 30 * 24 * 3600
    assert stored(result["id"])["expires_at"] >= kept - 1
    assert RunRepository("DomainTable").get_batch("ws-a", out["batch_id"])["expires_at"] >= kept - 1
    # More than SQS's 15 minutes of delay: nothing is sent yet; the sweeper will, shortly before.
    sweep = SWEEPER.lambda_handler
    assert receive() == [] and sweep(fixture_event("sweeper"), LambdaContext())["requeued_runs"] == 0
    _, batch = get_batch(out["batch_id"])
    assert (run_counts(out["batch_id"]), batch["finished_at"]) == (Counter(delayed=1), None)
    # Two days later, the sweep before it is due.
    set_attributes(result["id"], scheduled_at="2000-01-01T00:00:00.000000Z")
    RunRepository("DomainTable").recheck_later("ws-a", result["id"], None, "2000-01-01T00:00:00.000000Z")
    assert sweep(fixture_event("sweeper"), LambdaContext())["requeued_runs"] == 1
    drain()
    _, batch = get_batch(out["batch_id"])
    assert run_counts(out["batch_id"]) == Counter(completed=1) and batch["finished_at"]


def test_strait_run_fields_are_validated(endpoints):
    job = create_job(endpoints)
    for body, field in [
        ({"priority": 11}, "priority"),
        ({"priority": -1}, "priority"),
        ({"ttl_secs": 2_592_001}, "ttl_secs"),
        ({"scheduled_at": "2000-01-01T00:00:00Z"}, "scheduled_at"),
        ({"scheduled_at": "2999-01-01T00:00:00Z"}, "scheduled_at"),
        ({"tags": {f"k{n}": "v" for n in range(21)}}, "tags"),
        ({"tags": {"": "v"}}, "tags"),
        ({"concurrency_key": "x" * 257}, "concurrency_key"),
        ({"idempotency_key": "x" * 257}, "idempotency_key"),
        ({"metadata": {"": "b"}}, "metadata"),
        ({"colour": "red"}, "colour"),
    ]:
        status, err = trigger(job["id"], {"payload": {}, **body})
        assert (status, err["details"][0]["field"]) == (422, field), body
    status, err = bulk(job["id"], [{"payload": {}}, {"payload": {}, "priority": 11}, {"debounce_key": "d"}])
    assert status == 422 and [d["index"] for d in err["details"]] == [1, 2]
    assert receive() == []


# ---------------------------------------------------------------- bulk trigger and batch operations


def test_bulk_trigger_dedups_counts_and_finishes_once(endpoints):
    job = create_job(endpoints, dedup_window_secs=600)
    _, earlier = trigger(job["id"], {"payload": {"n": 0}})  # an earlier run with the payload of item 0
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
    # Strait's answer (api/bulk_trigger.go BulkTriggerResponse): one result per item, in order.
    assert set(out) == {"batch_id", "results", "total", "created"} and (out["total"], out["created"]) == (6, 3)
    results = out["results"]
    assert results[0] == {"id": earlier["id"], "status": "completed", "idempotency_hit": False}
    assert results[3] == {"id": results[1]["id"], "status": "queued", "idempotency_hit": False}
    assert results[4] == {"id": results[1]["id"], "status": "queued", "idempotency_hit": True}
    assert len({results[n]["id"] for n in (1, 2, 5)}) == 3
    assert all(results[n]["status"] == "queued" and not results[n]["idempotency_hit"] for n in (1, 2, 5))
    _, batch = get_batch(out["batch_id"])
    assert (batch["item_count"], batch["created_count"], batch["created_by"]) == (6, 3, "apikey:key-123")
    assert batch["finished_at"] is None and batch["project_id"] == "ws-a" and batch["job_id"] == job["id"]
    assert run_counts(out["batch_id"]) == Counter(queued=3)
    # Exactly the seed's BatchOperation fields.
    assert set(batch) == {
        "id", "project_id", "job_id", "item_count", "created_count", "created_by", "created_at", "finished_at",
    }  # fmt: skip
    messages = receive()
    assert len(messages) == 3
    work(messages[:2])
    _, partway = get_batch(out["batch_id"])
    assert partway["finished_at"] is None and run_counts(out["batch_id"]) == Counter(completed=2, queued=1)
    work(messages[2:])
    _, done = get_batch(out["batch_id"])
    assert done["finished_at"] is not None and run_counts(out["batch_id"]) == Counter(completed=3)
    work(messages)  # duplicates: nothing moves, finished_at stays
    _, after = get_batch(out["batch_id"])
    assert after == done and run_counts(out["batch_id"]) == Counter(completed=3)
    status, page = list_runs(batch_id=out["batch_id"])
    assert {r["id"] for r in page["data"]} == {results[n]["id"] for n in (1, 2, 5)}
    assert all(r["batch_id"] == out["batch_id"] for r in page["data"])


def test_strait_path_and_item_fields(endpoints):
    job = create_job(endpoints, tags={"team": "core"})
    items = [
        {"payload": {"n": 1}, "priority": 2, "tags": {"a": "1"}, "idempotency_key": "i-1"},
        {"payload": {"n": 2}, "ttl_secs": 3600, "concurrency_key": "tenant-42"},
    ]
    status, out = bulk(job["id"], items, fixture="trigger_job_bulk_strait")
    assert (status, out["total"], out["created"]) == (201, 2, 2)
    first, second = (get_run(r["id"])[1] for r in out["results"])
    assert (first["priority"], first["tags"], first["idempotency_key"]) == (2, {"team": "core", "a": "1"}, "i-1")
    assert (second["concurrency_key"], second["batch_id"]) == ("tenant-42", out["batch_id"]) and second["expires_at"]
    # The seed's path and Strait's are one route: a key used on one is a repeat on the other.
    status, again = bulk(job["id"], [{"payload": {}, "idempotency_key": "i-1"}])
    assert again["results"] == [{"id": first["id"], "status": "queued", "idempotency_hit": True}]


def test_bulk_of_only_duplicates_is_finished_at_once(endpoints):
    job = create_job(endpoints)
    bulk(job["id"], [{"payload": {}, "idempotency_key": "a"}])
    status, out = bulk(job["id"], [{"payload": {}, "idempotency_key": "a"}, {"payload": {}, "idempotency_key": "a"}])
    assert status == 201 and out["created"] == 0
    assert [r["idempotency_hit"] for r in out["results"]] == [True, True]
    _, batch = get_batch(out["batch_id"])
    assert batch["created_count"] == 0 and batch["finished_at"] == batch["created_at"]


def test_a_failed_run_still_finishes_its_batch(endpoints):
    job = create_job(endpoints, max_attempts=1)
    endpoints.script("/hook", Reply(200), Reply(400))
    _, out = bulk(job["id"], [{"payload": {"n": 1}}, {"payload": {"n": 2}}])
    drain()
    _, done = get_batch(out["batch_id"])
    assert done["finished_at"] is not None
    assert run_counts(out["batch_id"]) == Counter(completed=1, failed=1)


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
    assert status == 201
    assert get_run(run["id"])[1]["payload"] == payload


def test_runs_and_batches_are_isolated_per_workspace(endpoints):
    job = create_job(endpoints)
    _, run = trigger(job["id"], {"payload": {}})
    _, out = bulk(job["id"], [{"payload": {"n": 1}}])
    batch_id = out["batch_id"]
    assert get_run(run["id"], workspace="ws-b")[0] == 404
    assert get_batch(batch_id, workspace="ws-b")[0] == 404
    assert get_batch(batch_id, project_id="ws-b", workspace="ws-b")[0] == 404
    assert get_batch(batch_id, project_id="ws-a", workspace="ws-b")[0] == 404  # not the caller's project
    # project_id defaults to the caller's workspace, and may name it.
    assert get_batch(batch_id)[1]["id"] == get_batch(batch_id, project_id="ws-a")[1]["id"] == batch_id
    assert list_runs(workspace="ws-b", job_id=job["id"])[1] == {"data": [], "has_more": False}
    assert list_runs(workspace="ws-b", batch_id=batch_id)[1] == {"data": [], "has_more": False}
    assert list_runs(workspace="ws-b")[1]["data"] == []
    # Another workspace's project_id is a project that does not exist, on every route that takes one.
    status, _, err = invoke(
        LIST_BATCHES, api_event("list_batch_operations", query={"project_id": "ws-a"}, workspace="ws-b")
    )
    assert (status, err["code"], err["error"]) == (404, "PROJECT_NOT_FOUND", "Project ws-a not found")
    status, err = list_runs(workspace="ws-b", project_id="ws-a")
    assert (status, err["code"], err["error"]) == (404, "PROJECT_NOT_FOUND", "Project ws-a not found")
    assert list_runs(project_id="ws-b")[0] == 404
    assert list_runs(project_id="ws-a")[1]["data"]
    event = api_event("get_run", path_params={"runID": run["id"]}, query={"project_id": "ws-b"})
    assert invoke(GET_RUN, event)[2]["code"] == "PROJECT_NOT_FOUND"
    assert get_batch(batch_id, project_id="ws-b")[1]["code"] == "PROJECT_NOT_FOUND"
    status, _, mine = invoke(LIST_BATCHES, api_event("list_batch_operations", query={}, workspace="ws-a"))
    assert status == 200 and [b["id"] for b in mine["data"]] == [batch_id]
    status, _, theirs = invoke(LIST_BATCHES, api_event("list_batch_operations", query={}, workspace="ws-b"))
    assert (status, theirs) == (200, {"data": [], "has_more": False})


def test_listing_runs_filters_and_pages(endpoints):
    job = create_job(endpoints)
    other = create_job(endpoints, "/other")
    ids = [trigger(job["id"], {"payload": {"n": n}})[1]["id"] for n in range(5)]
    trigger(other["id"], {"payload": {}})
    seen: list[str] = []
    cursor = None
    while True:
        query = {"job_id": job["id"], "limit": 2, **({"cursor": cursor} if cursor else {})}
        status, page = list_runs(**query)
        assert status == 200 and len(page["data"]) <= 2
        seen += [r["id"] for r in page["data"]]
        # Strait's page: next_cursor only while has_more.
        assert page["has_more"] is ("next_cursor" in page)
        cursor = page.get("next_cursor")
        if cursor is None:
            break
    assert seen == list(reversed(ids))  # newest first
    assert len(list_runs()[1]["data"]) == 6
    assert list_runs(status="completed")[1]["data"] == []
    assert len(list_runs(status="queued")[1]["data"]) == 6
    assert list_runs(status="bogus")[0] == 422
    assert list_runs(status="running")[0] == 422  # the API says executing (Strait's name)
    assert list_runs(limit=0)[0] == 422
    assert list_runs(cursor="not-a-cursor")[0] == 422


def test_listing_runs_by_statuses_and_labels(endpoints):
    job = create_job(endpoints, max_attempts=1)
    endpoints.script("/hook", Reply(200), Reply(500))
    _, ok = trigger(job["id"], {"payload": {"n": 1}, "tags": {"team": "a"}})
    drain()
    _, bad = trigger(job["id"], {"payload": {"n": 2}, "tags": {"team": "b"}})
    drain()
    _, waiting = trigger(job["id"], {"payload": {"n": 3}})
    ids = lambda **q: [r["id"] for r in list_runs(**q)[1]["data"]]  # noqa: E731
    assert ids(statuses="completed,failed") == [bad["id"], ok["id"]]
    assert ids(status="queued") == [waiting["id"]]
    assert ids(tag_key="team") == [bad["id"], ok["id"]]
    assert ids(tag_key="team", tag_value="a") == [ok["id"]]
    assert list_runs(tag_value="a")[0] == 422
    assert list_runs(statuses="completed,nope")[0] == 422
    assert list_runs(tag_key="team", metadata_key="m")[0] == 422


def test_a_limit_above_100_is_served_100(endpoints):
    job = create_job(endpoints)
    assert bulk(job["id"], [{"payload": {"n": n}} for n in range(101)])[0] == 201
    status, page = list_runs(limit=500)
    assert status == 200 and len(page["data"]) == 100 and page["has_more"] is True
    assert len(list_runs()[1]["data"]) == 50  # Strait's default page


def test_batch_operations_list_newest_first(endpoints):
    job = create_job(endpoints)
    made = [bulk(job["id"], [{"payload": {"n": n}}])[1]["batch_id"] for n in range(3)]
    status, _, page = invoke(LIST_BATCHES, api_event("list_batch_operations", query={"limit": "2"}, workspace="ws-a"))
    assert status == 200
    assert [b["id"] for b in page["data"]] == made[::-1][:2]
    assert page["has_more"] and page["next_cursor"] and "run_counts" not in page["data"][0]


def test_the_sweeper_queues_runs_whose_message_was_lost(endpoints, monkeypatch):
    job = create_job(endpoints)
    _, run = trigger(job["id"], {"payload": {}})
    _, urgent = trigger(job["id"], {"payload": {"urgent": True}, "priority": 9})
    sqs = boto3.client("sqs")
    for queue in ("RunQueue", URGENT):
        [lost] = receive(queue=queue)
        sqs.delete_message(QueueUrl=queue_url(queue), ReceiptHandle=lost["ReceiptHandle"])
    assert SWEEPER.lambda_handler(fixture_event("sweeper"), LambdaContext())["requeued_runs"] == 0  # not overdue yet
    monkeypatch.setenv("BATCHOPS_RUN_RECHECK_SECONDS", "1")
    reset_settings()
    from batchops.dal.runs import RunRepository

    for run_id in (run["id"], urgent["id"]):
        RunRepository("DomainTable").recheck_later("ws-a", run_id, None, "2000-01-01T00:00:00.000000Z")
    assert SWEEPER.lambda_handler(fixture_event("sweeper"), LambdaContext())["requeued_runs"] == 2
    # Each on its priority's queue.
    [again] = receive(queue=URGENT)
    assert json.loads(again["Body"])["run_id"] == urgent["id"]
    work([again], queue=URGENT)
    work(receive())
    assert get_run(run["id"])[1]["status"] == get_run(urgent["id"])[1]["status"] == "completed"
    assert SWEEPER.lambda_handler(fixture_event("sweeper"), LambdaContext())["requeued_runs"] == 0


def test_runs_sqs_would_not_take_are_queued_by_the_next_sweep(endpoints, monkeypatch):
    from batchops.services import runs

    job = create_job(endpoints)
    real_send = runs.send_messages
    monkeypatch.setattr(runs, "send_messages", lambda url, bodies, **_: list(range(len(bodies))))  # SQS refuses all
    status, out = bulk(job["id"], [{"payload": {"n": 1}}, {"payload": {"n": 2}}])
    assert status == 201 and receive() == []  # stored, not queued
    monkeypatch.setattr(runs, "send_messages", real_send)
    assert SWEEPER.lambda_handler(fixture_event("sweeper"), LambdaContext())["requeued_runs"] == 2
    drain()
    _, batch = get_batch(out["batch_id"])
    assert batch["finished_at"] and run_counts(out["batch_id"]) == Counter(completed=2)


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
    assert status == 201 and out["created"] == 2


def test_a_status_write_whose_answer_was_lost_counts_as_done(endpoints):
    from batchops.dal.runs import RunRepository, Transition
    from batchops.models.jobs import RunStatus

    job = create_job(endpoints)
    _, run = trigger(job["id"], {"payload": {}})
    repo = RunRepository("DomainTable")
    before = stored(run["id"])
    mine = Transition(RunStatus.QUEUED, 0, RunStatus.RUNNING, 1, {"lease_until": "2999-01-01T00:00:00.000001Z"})
    assert repo.transition("ws-a", before, mine)
    # botocore retried the same write after a lost answer: its condition fails, yet it is ours.
    assert repo.transition("ws-a", before, mine)
    theirs = Transition(RunStatus.QUEUED, 0, RunStatus.RUNNING, 1, {"lease_until": "2999-01-01T00:00:00.000002Z"})
    assert not repo.transition("ws-a", before, theirs)


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
    assert status == 201 and out["created"] == 2


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
    assert status == 201 and out["created"] == 1
    assert rounds == [1, 1]


def test_lowering_max_attempts_ends_a_waiting_run(endpoints):
    job = create_job(endpoints, max_attempts=3)
    endpoints.script("/hook", Reply(503))
    _, run = trigger(job["id"], {"payload": {}})
    [message] = receive()
    work([message])
    assert get_run(run["id"])[1]["status"] == "queued"
    invoke(UPDATE_JOB, api_event("update_job", body={"max_attempts": 1}, path_params={"jobID": job["id"]}))
    backoff_over(run["id"])
    boto3.client("sqs").change_message_visibility(
        QueueUrl=queue_url(), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    work(receive())
    _, done = get_run(run["id"])
    assert (done["status"], done["attempt"], done["error_detail"]["http_status"]) == ("failed", 1, 503)
    assert len(endpoints.calls_to("/hook")) == 1


# ---------------------------------------------------------------- review fixes


def test_a_bulk_repeating_an_earlier_run_twice_names_that_run_both_times(endpoints):
    job = create_job(endpoints, dedup_window_secs=600)
    _, first = bulk(job["id"], [{"payload": {"n": 1}, "idempotency_key": "k1"}])
    [made] = first["results"]
    # Item 1 repeats item 0, which itself repeats the earlier run: both name that run.
    status, again = bulk(
        job["id"], [{"payload": {"n": 2}, "idempotency_key": "k1"}, {"payload": {"n": 3}, "idempotency_key": "k1"}]
    )
    assert (status, again["created"]) == (201, 0)
    assert again["results"] == [{"id": made["id"], "status": "queued", "idempotency_hit": True}] * 2
    # The same with a payload repeated within the job's de-duplication window.
    _, same = bulk(job["id"], [{"payload": {"n": 1}}, {"payload": {"n": 1}}])
    assert same["results"] == [{"id": made["id"], "status": "queued", "idempotency_hit": False}] * 2
    # Every id an answer names is a run.
    for result in (*again["results"], *same["results"]):
        assert get_run(result["id"])[0] == 200
    assert len(list_runs()[1]["data"]) == 1


def test_an_item_whose_key_only_a_repeat_used_creates_its_run(endpoints):
    job = create_job(endpoints, dedup_window_secs=600)
    _, earlier = trigger(job["id"], {"payload": {"n": 1}})
    # Item 0 repeats the earlier run by payload and creates nothing, so its key is nobody's: item 1
    # (same key, another payload) creates its run, as Strait's item-by-item bulk route would.
    items = [{"payload": {"n": 1}, "idempotency_key": "k"}, {"payload": {"n": 2}, "idempotency_key": "k"}]
    _, out = bulk(job["id"], items)
    first, second = out["results"]
    assert (first["id"], first["idempotency_hit"], out["created"]) == (earlier["id"], False, 1)
    assert second["id"] != earlier["id"] and get_run(second["id"])[1]["idempotency_key"] == "k"


def test_a_page_of_runs_stops_before_the_lambda_answer_limit(endpoints):
    job = create_job(endpoints)
    # 200,000 bytes of UTF-8 each; as sent, every "é" is "\u00e9" in the body and "\\u00e9" in
    # Lambda's answer around it: about 700 KB per run, 8.4 MB for the 12.
    items = [{"payload": {"n": n, "text": "é" * 100_000}} for n in range(12)]
    for part in (items[:6], items[6:]):  # each request under the 6 MB a body may have
        assert bulk(job["id"], part)[0] == 201
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": "50", **({"cursor": cursor} if cursor else {})}
        answer = LIST_RUNS.lambda_handler(api_event("list_runs", query=query), LambdaContext())
        assert answer["statusCode"] == 200
        assert len(json.dumps(answer).encode()) <= 6 * 1024 * 1024  # what Lambda can return
        page = json.loads(answer["body"])
        seen += [r["payload"]["n"] for r in page["data"]]
        pages += 1
        if not page["has_more"]:
            break
        assert page["data"] and page["next_cursor"]
        cursor = page["next_cursor"]
    assert pages >= 2 and len(seen) == 12 and sorted(seen) == list(range(12))  # each run once


def test_straits_authoring_dsl_bodies_are_accepted(endpoints):
    from strait.authoring import JobOptions, TriggerJobInput, define_job

    class Client:
        """Strait's JobDSLClient protocol, over batchops' handlers (the SDK ships no adapter)."""

        def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
            status, _, job = invoke(CREATE_JOB, api_event("create_job", body=body))
            assert status == 201, job
            return dict(job)

        def trigger_job(self, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
            status, answer = trigger(job_id, body)
            assert status == 201, answer
            return dict(answer)

        def bulk_trigger_job(self, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
            status, answer = bulk(job_id, body["items"], fixture="trigger_job_bulk_strait")
            assert status == 201, answer
            return dict(answer)

        def get_run(self, run_id: str) -> dict[str, Any]:
            return dict(get_run(run_id)[1])

    client = Client()
    welcome = define_job(
        JobOptions(name="Welcome", slug="welcome", endpoint_url=endpoints.url("/dsl"), project_id="ws-a")
    )
    job = welcome.register(client)
    # The DSL sends metadata and dry_run on a trigger, and on every bulk item.
    one = welcome.trigger(
        client, TriggerJobInput(payload={"n": 1}, priority=2, dry_run=False, metadata={"source": "dsl"})
    )
    assert client.get_run(one["id"])["metadata"] == {"source": "dsl"}
    many = welcome.batch_trigger(
        client,
        [
            TriggerJobInput(payload={"n": 2}, dry_run=False, metadata={"ignored": "yes"}, idempotency_key="dsl-2"),
            TriggerJobInput(payload={"n": 3}, dry_run=True),
        ],
        job_id=job["id"],
    )
    assert (many["total"], many["created"]) == (2, 2)
    runs = [client.get_run(r["id"]) for r in many["results"]]
    # As Strait's bulk route: an item's metadata and dry_run are ignored, and each item runs.
    assert [("metadata" in r, r["status"]) for r in runs] == [(False, "queued"), (False, "queued")]
    assert runs[0]["idempotency_key"] == "dsl-2"


def test_an_aws_failure_while_claiming_is_a_503_that_leaves_nothing(endpoints, monkeypatch):
    from botocore.exceptions import ClientError

    from batchops.dal import clients

    job = create_job(endpoints, dedup_window_secs=60)
    dynamodb = clients.dynamodb()

    def throttled(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Call")

    for operation in ("batch_get_item", "transact_write_items"):  # reading claims, writing them
        with monkeypatch.context() as patched:
            patched.setattr(dynamodb, operation, throttled)
            status, err = trigger(job["id"], {"payload": {}, "idempotency_key": "k"})
            assert (status, err["code"]) == (503, "STORAGE_ERROR"), operation
            status, err = bulk(job["id"], [{"payload": {"n": 1}}])
            assert (status, err["code"]) == (503, "STORAGE_ERROR"), operation
    assert receive() == [] and list_runs()[1]["data"] == []
    assert trigger(job["id"], {"payload": {}, "idempotency_key": "k"})[0] == 201


def test_an_expiry_that_lost_to_a_worker_leaves_the_batch_alone(endpoints, monkeypatch):
    from datetime import UTC, datetime

    from batchops.dal.runs import RunRepository, Transition
    from batchops.models.jobs import RunStatus
    from batchops.services import runs

    job = create_job(endpoints)
    _, out = bulk(job["id"], [{"payload": {}, "ttl_secs": 30}])
    [result] = out["results"]
    set_attributes(result["id"], start_by="2000-01-01T00:00:00.000000Z")
    seen = stored(result["id"])  # the sweeper's read: queued, never started, out of time
    # A worker claims the run before the sweeper writes.
    repo = RunRepository("DomainTable")
    assert repo.transition("ws-a", seen, Transition(RunStatus.QUEUED, 0, RunStatus.RUNNING, 1, {}))
    closing: list[str] = []
    real_finish = RunRepository.finish_batch
    monkeypatch.setattr(
        RunRepository,
        "finish_batch",
        lambda self, ws, batch_id, at: closing.append(batch_id) or real_finish(self, ws, batch_id, at),
    )
    assert runs.expire(seen, datetime.now(UTC)) is False
    assert closing == [] and get_run(result["id"])[1]["status"] == "executing"


def test_a_scheduled_bulk_items_ttl_counts_from_when_it_is_due(endpoints):
    from datetime import UTC, datetime, timedelta

    job = create_job(endpoints)
    due = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    _, out = bulk(job["id"], [{"payload": {}, "scheduled_at": due.isoformat(), "ttl_secs": 60}])
    run = get_run(out["results"][0]["id"])[1]
    # Strait's bulk route would count from the request and expire the run before it is ever due.
    assert datetime.fromisoformat(run["expires_at"]) == due + timedelta(seconds=60)


# ---------------------------------------------------------------- listing cost (issue 13, R8)
LISTING_QUERIES = 4  # the per-request read budget of a filtered listing (docs/scaling.md)


def test_a_batchs_runs_are_read_by_key_not_filtered_out_of_its_jobs_runs(endpoints):
    from tests.support import counting_dynamodb_calls

    job = create_job(endpoints)
    _, first = bulk(job["id"], [{"payload": {"first": True}}])
    # 400 runs of the same job after it: the batch's one run is the oldest of 401.
    for part in range(2):
        assert bulk(job["id"], [{"payload": {"part": part, "n": n}} for n in range(200)])[0] == 201
    with counting_dynamodb_calls() as calls:
        status, page = list_runs(batch_id=first["batch_id"], limit=1)
    assert status == 200 and [r["id"] for r in page["data"]] == [first["results"][0]["id"]]
    assert page["has_more"] is False
    assert calls["Query"] == 1, calls  # the batch's own key range of the job's runs


def test_a_status_filter_over_hundreds_of_other_runs_pages_within_a_read_budget(endpoints, monkeypatch):
    from batchops.dal import queries
    from tests.support import counting_dynamodb_calls

    job = create_job(endpoints, max_attempts=1)
    endpoints.script("/hook", Reply(200))
    _, done = trigger(job["id"], {"payload": {"done": True}})
    drain()
    _, other = bulk(job["id"], [{"payload": {"n": n}} for n in range(300)])
    # Small Query pages, so the budget runs out inside 301 runs as it would inside millions.
    monkeypatch.setattr(queries, "FILTERED_QUERY_ITEMS", 40, raising=False)
    for query in ({"status": "completed"}, {"batch_id": other["batch_id"], "status": "completed"}):
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            with counting_dynamodb_calls() as calls:
                status, page = list_runs(limit=1, **query, **({"cursor": cursor} if cursor else {}))
            assert status == 200 and calls["Query"] <= LISTING_QUERIES, calls
            assert page["has_more"] is ("next_cursor" in page)
            seen += [r["id"] for r in page["data"]]
            pages += 1
            cursor = page.get("next_cursor")
            if cursor is None:
                break
        assert seen == ([done["id"]] if "batch_id" not in query else [])
        assert pages > 1  # the budget ran out before the partition did, and the cursor went on
