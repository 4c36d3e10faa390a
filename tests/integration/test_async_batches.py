"""Async batches (seed 003): submit, the SQS worker, get and list, on moto."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from batchops.dal.keys import operation_job, operation_sk
from batchops.settings import reset_settings
from tests.support import LambdaContext, api_event, events_in, fixture_event, invoke, load_function, sqs_event
from tests.support import log_entry as event
from tests.support import operation as op

SUBMIT = load_function("batch_async_submit")
GET = load_function("batch_async_get")
LIST = load_function("batch_async_list")
WORKER = load_function("batch_async_worker")
GET_EVENTS = load_function("get_event_batch")


@pytest.fixture
def queue(aws, monkeypatch):
    url = boto3.client("sqs").get_queue_url(QueueName="WorkQueue")["QueueUrl"]
    monkeypatch.setenv("BATCHOPS_WORK_QUEUE_URL", url)
    reset_settings()
    return url


def submit(body, workspace="ws-a"):
    return invoke(SUBMIT, api_event("batch_async_submit", body=body, workspace=workspace))


def receive(queue_url):
    messages = (
        boto3.client("sqs")
        .receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=0)
        .get("Messages", [])
    )
    return messages


def work(messages, remaining_ms=85_000):
    return WORKER.lambda_handler(sqs_event("batch_async_worker", messages), LambdaContext(remaining_ms=remaining_ms))


def get(job_id, workspace="ws-a"):
    return invoke(GET, api_event("batch_async_get", path_params={"jobId": job_id}, workspace=workspace))


def test_submit_poll_complete(queue):
    status, _, body = submit(
        {
            "operations": [
                op("create", "/v1/events/batch", {"events": [event("a")], "batchId": "async-1"}),
                op("follow", body=event("${create.body.correlationIds.0}", "SUCCESS")),
                op("bad", body={}),
            ]
        }
    )
    assert status == 202
    data = body["data"]
    assert data["status"] == "QUEUED" and data["jobId"].startswith("job_")
    assert data["createdAt"].endswith("Z") and len(data["createdAt"]) == len("2026-04-09T12:00:00.000Z")

    _, _, queued = get(data["jobId"])
    assert queued["data"]["status"] == "QUEUED"
    assert queued["data"]["results"] is None and queued["data"]["summary"] is None

    messages = receive(queue)
    assert [json.loads(m["Body"]) for m in messages] == [{"workspaceId": "ws-a", "jobId": data["jobId"]}]
    assert work(messages) == {"batchItemFailures": []}

    _, _, done = get(data["jobId"])
    job = done["data"]
    assert job["status"] == "COMPLETED"
    assert [(r["id"], r["status"]) for r in job["results"]] == [("create", 201), ("follow", 201), ("bad", 422)]
    assert job["summary"] == {"total": 3, "succeeded": 2, "failed": 1, "skipped": 0}
    assert job["error"] is None and job["startedAt"] and job["completedAt"]
    assert events_in("async-1") == 1


def test_a_duplicate_delivery_never_runs_an_operation_twice(queue):
    _, _, body = submit({"operations": [op("one", "/v1/events/batch", {"events": [event()], "batchId": "dup"})]})
    messages = receive(queue)
    work(messages)
    first = get(body["data"]["jobId"])[2]["data"]
    work(messages)  # the same message again, as SQS may deliver it
    assert events_in("dup") == 1
    assert get(body["data"]["jobId"])[2]["data"] == first


def test_an_operation_claimed_by_a_crashed_run_is_reported_not_rerun(queue):
    _, _, body = submit(
        {
            "operations": [
                op("crashed", "/v1/events/batch", {"events": [event()], "batchId": "crash"}),
                op("fresh", "/v1/events/batch", {"events": [event()], "batchId": "fresh"}),
            ]
        }
    )
    job_id = body["data"]["jobId"]
    # A previous delivery claimed the first operation and died before recording its result.
    boto3.client("dynamodb").update_item(
        TableName="DomainTable",
        Key={"pk": {"S": operation_job("ws-a", job_id)}, "sk": {"S": operation_sk(0)}},
        UpdateExpression="SET claimed_at = :at",
        ExpressionAttributeValues={":at": {"S": "2026-01-01T00:00:00.000000Z"}},
    )
    work(receive(queue))
    results = get(job_id)[2]["data"]["results"]
    assert results[0]["status"] == 500 and results[0]["body"]["code"] == "INTERRUPTED"
    assert results[1]["status"] == 201
    assert events_in("crash") == 0 and events_in("fresh") == 1


def test_partial_batch_failure_reports_only_the_failing_message(queue):
    submit({"operations": [op("one", body=event())]})
    good = receive(queue)
    broken = [{**good[0], "MessageId": str(uuid.uuid4()), "Body": "{not json"}]
    response = work(good + broken)
    assert response == {"batchItemFailures": [{"itemIdentifier": broken[0]["MessageId"]}]}


def test_a_job_is_not_started_without_its_full_timeout_ahead(queue):
    _, _, body = submit({"operations": [op("one", body=event())]})
    messages = receive(queue)
    response = work(messages, remaining_ms=30_000)
    assert response == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    assert get(body["data"]["jobId"])[2]["data"]["status"] == "QUEUED"


def test_a_job_that_cannot_run_on_its_last_delivery_is_failed(queue, monkeypatch):
    from batchops.services import operations

    def broken(*args, **kwargs):
        raise RuntimeError("storage unavailable")

    _, _, body = submit({"operations": [op("one", body=event())]})
    monkeypatch.setattr(operations, "run", broken)
    messages = receive(queue)
    assert work(messages)["batchItemFailures"]  # retried while deliveries remain
    messages[0]["Attributes"]["ApproximateReceiveCount"] = "5"
    assert work(messages) == {"batchItemFailures": []}
    job = get(body["data"]["jobId"])[2]["data"]
    # The exception's own text is for the log: the client reads a stable message.
    assert job["status"] == "FAILED" and job["results"] is None
    assert job["error"].startswith("INTERNAL_ERROR") and "storage unavailable" not in job["error"]


def test_submit_validates_the_whole_request_first(queue):
    status, _, _ = submit({"operations": [op("x", body=event()), op("x", body=event())]})
    assert status == 422
    assert receive(queue) == []


def test_unknown_or_other_workspaces_job_is_404(queue):
    _, _, body = submit({"operations": [op("one", body=event())]})
    assert get(body["data"]["jobId"], workspace="ws-b")[0] == 404
    status, _, missing = get("job_nope")
    assert (status, missing["code"]) == (404, "JOB_NOT_FOUND")


def listing(workspace="ws-a", **query):
    return invoke(LIST, api_event("batch_async_list", query={k: str(v) for k, v in query.items()}, workspace=workspace))


def test_list_newest_first_with_cursor_and_status_filter(queue):
    ids = [submit({"operations": [op("one", body=event(f"c{i}"))]})[2]["data"]["jobId"] for i in range(5)]
    work(receive(queue)[:2])  # complete two of them (whichever the queue hands out)
    status, _, first = listing(limit=2)
    assert status == 200
    assert [j["id"] for j in first["data"]] == ids[::-1][:2]
    assert first["nextCursor"]
    assert "results" not in first["data"][0]
    _, _, second = listing(limit=2, cursor=first["nextCursor"])
    _, _, third = listing(limit=2, cursor=second["nextCursor"])
    seen = [j["id"] for page in (first, second, third) for j in page["data"]]
    assert seen == ids[::-1]
    assert third["nextCursor"] is None

    _, _, completed = listing(status="COMPLETED", limit=1)
    assert len(completed["data"]) == 1 and completed["data"][0]["status"] == "COMPLETED"
    assert completed["data"][0]["summary"] == {"total": 1, "succeeded": 1, "failed": 0, "skipped": 0}
    _, _, rest = listing(status="COMPLETED", limit=1, cursor=completed["nextCursor"])
    assert len(rest["data"]) == 1 and rest["data"][0]["id"] != completed["data"][0]["id"]
    assert listing(status="QUEUED")[2]["data"].__len__() == 3
    assert listing(workspace="ws-b")[2] == {"data": [], "nextCursor": None}


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 101}, {"status": "DONE"}, {"cursor": "garbage"}])
def test_list_rejects_bad_queries(queue, query):
    status, _, body = listing(**query)
    assert status == 422 and body["code"] == "VALIDATION_FAILED"


def test_a_cursor_from_another_workspace_is_refused(queue):
    for i in range(3):
        submit({"operations": [op("one", body=event(f"c{i}"))]})
    cursor = listing(limit=1)[2]["nextCursor"]
    status, _, body = listing(workspace="ws-b", cursor=cursor)
    assert status == 422 and body["details"][0]["field"] == "cursor"


def test_the_worker_publishes_emf_metrics_for_the_async_mode(queue, capsys):
    submit({"operations": [op("one", body=event()), op("two", body={})]})
    work(receive(queue))
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    batch = next(m for m in emitted if "AsyncOperationsExecuted" in m)
    assert batch["AsyncOperationsExecuted"] == [2.0] and batch["AsyncOperationsFailed"] == [1.0]
    assert "AsyncBatchDuration" in batch


def test_an_operation_another_delivery_is_running_is_left_to_it(queue):
    from datetime import UTC, datetime

    from batchops.dal.items import iso

    _, _, body = submit({"operations": [op("one", "/v1/events/batch", {"events": [event()], "batchId": "busy"})]})
    job_id = body["data"]["jobId"]
    boto3.client("dynamodb").update_item(
        TableName="DomainTable",
        Key={"pk": {"S": operation_job("ws-a", job_id)}, "sk": {"S": operation_sk(0)}},
        UpdateExpression="SET claimed_at = :at",
        ExpressionAttributeValues={":at": {"S": iso(datetime.now(UTC))}},
    )
    messages = receive(queue)
    assert work(messages) == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    job = get(job_id)[2]["data"]
    assert job["status"] == "PROCESSING" and job["results"] is None
    assert events_in("busy") == 0  # not run a second time


def test_a_redelivered_job_reuses_recorded_results_instead_of_running_them_again(queue):
    from batchops.dal.operation_jobs import OperationJobRepository
    from batchops.models.operations import OperationResult

    _, _, body = submit(
        {
            "operations": [
                op("done", "/v1/events/batch", {"events": [event()], "batchId": "done-before"}),
                op("next", "/v1/events/batch", {"events": [event()], "batchId": "next-now"}),
            ]
        }
    )
    job_id = body["data"]["jobId"]
    # A first delivery ran the first operation, recorded it, and died.
    repository = OperationJobRepository("DomainTable")
    repository.claim_operation("ws-a", job_id, 0, "2026-01-01T00:00:00.000000Z")
    repository.record_result("ws-a", job_id, 0, OperationResult(id="done", status=201, body={"recorded": True}))
    work(receive(queue))
    results = get(job_id)[2]["data"]["results"]
    assert results[0] == {"id": "done", "status": 201, "body": {"recorded": True}}
    assert results[1]["status"] == 201
    assert events_in("done-before") == 0 and events_in("next-now") == 1


def test_async_honours_parallel_and_continue_on_error(queue):
    _, _, body = submit(
        {"operations": [op("bad", body={}), op("after", body=event())], "continueOnError": False, "parallel": False}
    )
    work(receive(queue))
    results = get(body["data"]["jobId"])[2]["data"]["results"]
    assert [r["status"] for r in results] == [422, 424]
    _, _, body = submit({"operations": [op(f"p{i}", body=event(f"c{i}")) for i in range(6)], "parallel": True})
    work(receive(queue))
    assert get(body["data"]["jobId"])[2]["data"]["summary"]["succeeded"] == 6


def test_async_submit_limits_and_idempotency(queue):
    big = {"operations": [op("big", body=event(message="m" * 9_000, metadata={"b": "y" * 102_400}))]}
    status, _, answer = submit(big)
    assert status == 422 and answer["error"] == "Operation body must not exceed 100KB"
    request = {"operations": [op("one", body=event())]}
    headers = {"Idempotency-Key": "submit-once"}
    first = invoke(SUBMIT, api_event("batch_async_submit", body=request, headers=headers))
    again = invoke(SUBMIT, api_event("batch_async_submit", body=request, headers=headers))
    assert first[0] == again[0] == 202 and first[2] == again[2]
    assert len(receive(queue)) == 1


def test_last_page_has_no_cursor_when_jobs_fill_it_exactly(queue):
    for i in range(2):
        submit({"operations": [op("one", body=event(f"c{i}"))]})
    _, _, page = listing(limit=2)
    assert len(page["data"]) == 2 and page["nextCursor"] is None


@pytest.mark.parametrize(
    "forged",
    [
        {"gsi1pk": "x"},
        {"gsi1pk": None},
        {"gsi1pk": {"S": "WS#ws-a#ASYNCJOBS"}},
        {
            "pk": {"S": "WS#ws-b#OPJOB#x"},
            "sk": {"S": "JOB"},
            "gsi1pk": {"S": "WS#ws-a#ASYNCJOBS"},
            "gsi1sk": {"S": "x"},
        },
        {"pk": {"N": "1"}, "sk": {"S": "JOB"}, "gsi1pk": {"S": "WS#ws-a#ASYNCJOBS"}, "gsi1sk": {"S": "x"}},
        [],
    ],
)
def test_forged_cursors_are_422(queue, forged):
    import base64

    cursor = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode()
    status, _, body = listing(cursor=cursor)
    assert status == 422 and body["details"][0]["field"] == "cursor"


def test_the_sweeper_fails_a_job_never_started_only_once_its_message_cannot_be_delivered(queue):
    from datetime import UTC, datetime, timedelta

    from batchops.services.operation_jobs import STALE_ERROR, sweep_overdue_jobs

    stuck = submit({"operations": [op("one", "/v1/events/batch", {"events": [event("stuck")], "batchId": "stuck"})]})
    stuck_id = stuck[2]["data"]["jobId"]
    done = submit({"operations": [op("one", body=event("done"))]})[2]["data"]["jobId"]
    messages = receive(queue)
    work([m for m in messages if done in m["Body"]])

    now = datetime.now(UTC)
    assert sweep_overdue_jobs() == 0  # nothing is overdue yet
    # Two hours in a backlog: WorkQueue still holds its message (4 days), a worker will take it.
    assert sweep_overdue_jobs(now=now + timedelta(hours=2)) == 0
    assert get(stuck_id)[2]["data"]["status"] == "QUEUED"
    # Past WorkQueue's message retention no delivery can come any more.
    later = now + timedelta(days=5)
    assert sweep_overdue_jobs(now=later) == 1
    failed = get(stuck_id)[2]["data"]
    assert failed["status"] == "FAILED" and failed["error"] == STALE_ERROR and failed["completedAt"]
    assert get(done)[2]["data"]["status"] == "COMPLETED"
    assert sweep_overdue_jobs(now=later) == 0  # swept jobs leave the in-flight index
    # A delivery after all runs nothing: the job ended in one terminal state.
    assert work([m for m in messages if stuck_id in m["Body"]]) == {"batchItemFailures": []}
    assert get(stuck_id)[2]["data"]["status"] == "FAILED" and events_in("stuck") == 0


def age(job_id: str, created_at: str, workspace: str = "ws-a") -> None:
    """Move a stored job's creation back in time (time passing, without sleeping), and make it due
    for the sweeper's next look."""
    from batchops.dal.keys import in_flight_sort

    boto3.client("dynamodb").update_item(
        TableName="DomainTable",
        Key={"pk": {"S": operation_job(workspace, job_id)}, "sk": {"S": "JOB"}},
        UpdateExpression="SET created_at = :at, gsi2sk = :due",
        ExpressionAttributeValues={
            ":at": {"S": created_at},
            ":due": {"S": in_flight_sort(created_at, workspace, job_id)},
        },
    )


def test_the_sweeper_never_fails_a_job_a_worker_holds(queue, monkeypatch):
    from datetime import UTC, datetime, timedelta

    from batchops.dal.items import iso
    from batchops.services import operation_jobs, operations

    _, _, body = submit({"operations": [op("one", "/v1/events/batch", {"events": [event()], "batchId": "held"})]})
    job_id = body["data"]["jobId"]
    two_hours_ago = iso(datetime.now(UTC) - timedelta(hours=2))
    age(job_id, two_hours_ago)  # it waited two hours in a backlog before a worker took it
    swept: list[int] = []
    real = operations.run_one

    def sweep_meanwhile(*args, **kwargs):
        # The scheduled sweep lands while the worker is running the job's operation.
        age(job_id, two_hours_ago)
        swept.append(operation_jobs.sweep_overdue_jobs())
        return real(*args, **kwargs)

    monkeypatch.setattr(operations, "run_one", sweep_meanwhile)
    assert work(receive(queue)) == {"batchItemFailures": []}
    assert swept == [0]
    job = get(job_id)[2]["data"]
    assert job["status"] == "COMPLETED" and job["error"] is None
    assert [r["status"] for r in job["results"]] == [201] and events_in("held") == 1


class Died(BaseException):
    """The worker's process ended mid-operation (a Lambda timeout, an out-of-memory kill)."""


def test_a_job_is_failed_once_no_worker_can_hold_it_and_no_delivery_is_left(queue, monkeypatch):
    from datetime import UTC, datetime, timedelta

    from batchops.services import operations
    from batchops.services.operation_jobs import STALE_ERROR, sweep_overdue_jobs

    _, _, body = submit({"operations": [op("one", "/v1/events/batch", {"events": [event()], "batchId": "died"})]})
    job_id = body["data"]["jobId"]

    def die(*args, **kwargs):
        raise Died

    monkeypatch.setattr(operations, "run_one", die)
    messages = receive(queue)
    with pytest.raises(Died):
        work(messages)  # the first delivery dies holding the job
    now = datetime.now(UTC)
    assert sweep_overdue_jobs(now=now + timedelta(minutes=10)) == 0  # its message comes back
    assert get(job_id)[2]["data"]["status"] == "PROCESSING"
    messages[0]["Attributes"]["ApproximateReceiveCount"] = "5"
    # The last delivery finds the operation claimed moments ago. Handing the message back would
    # only put it in the dead-letter queue, which is for poison messages: it is done with it, and
    # the job is left to the sweeper (nothing will run it again).
    assert work(messages) == {"batchItemFailures": []}
    assert sweep_overdue_jobs(now=now + timedelta(seconds=60)) == 0  # that worker may still be running
    assert sweep_overdue_jobs(now=now + timedelta(minutes=10)) == 1
    job = get(job_id)[2]["data"]
    assert job["status"] == "FAILED" and job["error"] == STALE_ERROR and events_in("died") == 0


def test_a_worker_that_read_the_job_before_the_sweeper_failed_it_runs_nothing(queue, monkeypatch):
    from datetime import UTC, datetime, timedelta

    from batchops.dal.operation_jobs import OperationJobRepository
    from batchops.services.operation_jobs import sweep_overdue_jobs

    _, _, body = submit({"operations": [op("one", "/v1/events/batch", {"events": [event()], "batchId": "raced"})]})
    job_id = body["data"]["jobId"]
    real = OperationJobRepository.get

    def read_then_sweep(self, workspace_id, job_id, only=None):
        job = real(self, workspace_id, job_id, only)
        # The sweep lands between the worker's read and its taking the job.
        assert sweep_overdue_jobs(now=datetime.now(UTC) + timedelta(days=5)) == 1
        return job

    monkeypatch.setattr(OperationJobRepository, "get", read_then_sweep)
    assert work(receive(queue)) == {"batchItemFailures": []}
    monkeypatch.setattr(OperationJobRepository, "get", real)
    assert get(job_id)[2]["data"]["status"] == "FAILED"
    assert events_in("raced") == 0


def test_the_sweeper_function_runs_on_its_schedule_event(queue):
    from tests.support import LambdaContext, load_function

    sweeper = load_function("sweeper")
    assert sweeper.lambda_handler(fixture_event("sweeper"), LambdaContext()) == {"ended_jobs": 0, "requeued_runs": 0}


# ---------------------------------------------------------------- listing cost (issue 13, R8)
def test_a_status_filtered_listing_reads_a_bounded_number_of_pages(queue, monkeypatch):
    from batchops.dal import queries
    from batchops.dal.operation_jobs import OperationJobRepository
    from batchops.models.common import Caller, Plan
    from batchops.models.operations import JobStatus, Operation
    from tests.support import counting_dynamodb_calls

    repository = OperationJobRepository("DomainTable")
    caller = Caller(workspace_id="ws-a", key_id="key_test", plan=Plan.PRO)
    operations = [Operation(id="one", method="POST", path="/v1/events")]
    ids = [f"job_{n:032x}" for n in range(301)]
    for n, job_id in enumerate(ids):
        repository.create(
            "ws-a",
            job_id,
            mode="async",
            caller=caller,
            operations=operations,
            continue_on_error=True,
            parallel=False,
            created_at=f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}.000000Z",
            expires_at=2_000_000_000,
        )
    # The oldest of 301 jobs is the one COMPLETED job.
    repository.transition("ws-a", ids[0], (JobStatus.QUEUED,), JobStatus.PROCESSING)
    repository.transition(
        "ws-a",
        ids[0],
        (JobStatus.PROCESSING,),
        JobStatus.COMPLETED,
        summary={"total": 1, "succeeded": 1, "failed": 0, "skipped": 0},
    )
    # Small Query pages, so the budget runs out inside 301 jobs as it would inside millions.
    monkeypatch.setattr(queries, "FILTERED_QUERY_ITEMS", 40, raising=False)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        with counting_dynamodb_calls() as calls:
            status, _, page = listing(status="COMPLETED", limit=1, **({"cursor": cursor} if cursor else {}))
        assert status == 200 and calls["Query"] <= 4, calls
        assert set(page) == {"data", "nextCursor"}  # seed 003's shape, whatever the page holds
        seen += [j["id"] for j in page["data"]]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [ids[0]] and pages > 1
