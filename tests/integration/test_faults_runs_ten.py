"""test_faults_runs.py's scenarios where the records of one invocation meet (a consumer dying
mid-batch, partial sends, crashes, duplicates and shuffling, the property run; the first two found
a batch closed before its last run, services/run_worker._ending), with 10 records per worker
invocation: they run side by side (api/workers.py). The whole suite runs this way with
`python -m pytest -p tests.batch_size_ten tests/integration/test_faults_runs.py`."""

from __future__ import annotations

import pytest

import tests.pipeline
from tests.batch_size_ten import consumers_taking
from tests.integration.test_faults_runs import (
    endpoints,
    pipeline,
    test_a_bulk_trigger_whose_sends_are_partial_queues_every_run,
    test_a_bulk_trigger_with_retries_duplicates_and_shuffling_keeps_every_promise,
    test_a_consumer_that_dies_mid_batch_loses_no_run,
    test_a_crash_between_claiming_a_run_and_calling_its_endpoint_is_taken_over_after_the_lease,
    test_any_schedule_of_faults_keeps_every_promise_of_runs,
)

__all__ = [
    "endpoints",
    "pipeline",
    "test_a_bulk_trigger_whose_sends_are_partial_queues_every_run",
    "test_a_bulk_trigger_with_retries_duplicates_and_shuffling_keeps_every_promise",
    "test_a_consumer_that_dies_mid_batch_loses_no_run",
    "test_a_crash_between_claiming_a_run_and_calling_its_endpoint_is_taken_over_after_the_lease",
    "test_any_schedule_of_faults_keeps_every_promise_of_runs",
]


@pytest.fixture(autouse=True)
def ten_records_per_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tests.pipeline, "consumers", lambda: consumers_taking(10))


def test_the_consumers_take_ten_records() -> None:
    sizes = {c.folder: c.event.batch_size for c in tests.pipeline.consumers()}
    assert sizes["run_worker"] == sizes["batch_job_worker"] == sizes["batch_urgent_job_worker"] == 10
