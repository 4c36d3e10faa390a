"""A batch's finished_at is not earlier than any of its runs' finished_at, whichever process
closes it: runs of one bulk trigger end in different worker processes (or the sweeper expires
one while a worker ends another), and the process whose run ended first (its finished_at taken
first) can be the one that finds the counters at zero and closes the batch, after the other
run's later finished_at is stored. The interleavings are played here by calling the services in
that order, so the race is deterministic."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from batchops.dal.items import iso
from batchops.dal.runs import RunRepository, Transition
from batchops.models.jobs import RunStatus
from batchops.services import runs
from tests.integration.test_runs import URGENT, bulk, create_job, queue_url, stored
from tests.invariants.runs import runs_broken
from tests.job_endpoint import JobEndpoints, job_endpoints

WS = "ws-a"


@pytest.fixture
def server(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobEndpoints]:
    from batchops.settings import reset_settings

    monkeypatch.setenv("BATCHOPS_RUN_QUEUE_URL", queue_url())
    monkeypatch.setenv("BATCHOPS_RUN_URGENT_QUEUE_URL", queue_url(URGENT))
    monkeypatch.setenv("BATCHOPS_LOCAL_MODE", "true")
    reset_settings()
    with job_endpoints() as made:
        yield made


def batch_of(server: JobEndpoints, size: int) -> tuple[str, list[dict[str, Any]]]:
    job = create_job(server)
    status, out = bulk(job["id"], [{"payload": {"n": n}} for n in range(size)])
    assert status == 201, out
    return out["batch_id"], [stored(result["id"]) for result in out["results"]]


def end(run: dict[str, Any], at: datetime) -> None:
    """A worker's end of a run (one attempt, completed at `at`), without closing the batch."""
    change = Transition(RunStatus.QUEUED, 0, RunStatus.COMPLETED, 1, {"finished_at": iso(at)})
    assert RunRepository("DomainTable").transition(WS, run, change)


def batch_finished_at(batch_id: str) -> str:
    batch = RunRepository("DomainTable").get_batch(WS, batch_id)
    assert batch is not None and batch.get("finished_at")
    return str(batch["finished_at"])


def test_the_run_that_ended_first_closing_the_batch_dates_it_by_the_last_run(server: JobEndpoints) -> None:
    batch_id, (first, second) = batch_of(server, 2)
    t = datetime.now(UTC)
    end(first, t)  # process A: its finished_at is t
    end(second, t + timedelta(milliseconds=5))  # process B ends its run after A's write
    runs.finish_batch_of(first, t)  # A closes the batch with its own clock
    runs.finish_batch_of(second, t + timedelta(milliseconds=5))  # B finds it closed
    assert batch_finished_at(batch_id) == iso(t + timedelta(milliseconds=5))
    assert runs_broken(check_queues=False) == []


def test_an_expiry_closing_the_batch_before_a_later_worker_end_is_raised_to_it(server: JobEndpoints) -> None:
    batch_id, (waiting, worked) = batch_of(server, 2)
    t = datetime.now(UTC)
    end(worked, t + timedelta(milliseconds=7))  # a worker ends its run, its clock 7 ms ahead
    seen = {**waiting, "start_by": iso(t - timedelta(seconds=1))}  # out of time when the sweeper read it
    assert runs.expire(seen, t)  # ends the last open run at t and closes the batch
    assert batch_finished_at(batch_id) == iso(t + timedelta(milliseconds=7))
    assert runs_broken(check_queues=False) == []


def test_a_batch_left_closed_too_early_is_raised_by_the_next_look_at_it(server: JobEndpoints) -> None:
    """The process that closed the batch died before it checked its runs: the redelivery (or the
    sweeper) of any of its runs finds it closed and checks them."""
    from batchops.dal import clients, keys
    from batchops.dal.items import serialize

    batch_id, (first, second) = batch_of(server, 2)
    t = datetime.now(UTC)
    end(first, t)
    end(second, t + timedelta(milliseconds=3))
    clients.dynamodb().update_item(
        TableName="DomainTable",
        Key=serialize(keys.batch_operation(WS, batch_id)),
        UpdateExpression="SET finished_at = :t",
        ExpressionAttributeValues=serialize({":t": iso(t)}),
    )
    runs.finish_batch_of(first, t + timedelta(seconds=1))
    assert batch_finished_at(batch_id) == iso(t + timedelta(milliseconds=3))


def test_a_batch_closed_after_its_runs_keeps_its_own_time(server: JobEndpoints) -> None:
    batch_id, (first, second) = batch_of(server, 2)
    t = datetime.now(UTC)
    end(first, t)
    end(second, t + timedelta(milliseconds=2))
    runs.finish_batch_of(second, t + timedelta(milliseconds=4))
    runs.finish_batch_of(first, t + timedelta(milliseconds=9))  # a duplicate: never moves it
    assert batch_finished_at(batch_id) == iso(t + timedelta(milliseconds=4))
