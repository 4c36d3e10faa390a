"""test_faults_batches.py's scenarios where the records of one invocation meet (a consumer dying
mid-batch, crashes, duplicates and shuffling, the property run), with 10 records per worker
invocation: they run side by side (api/workers.py). The whole suite runs this way with
`python -m pytest -p tests.batch_size_ten tests/integration/test_faults_batches.py`."""

from __future__ import annotations

import pytest

import tests.pipeline
from tests.batch_size_ten import consumers_taking
from tests.integration.test_faults_batches import (
    endpoints,
    pipeline,
    test_any_schedule_of_faults_keeps_every_promise,
    test_events_reach_a_receiver_in_the_order_they_happened,
    test_r1_a_crash_right_after_the_job_end_commits_loses_no_event,
)

__all__ = [
    "endpoints",
    "pipeline",
    "test_any_schedule_of_faults_keeps_every_promise",
    "test_events_reach_a_receiver_in_the_order_they_happened",
    "test_r1_a_crash_right_after_the_job_end_commits_loses_no_event",
]


@pytest.fixture(autouse=True)
def ten_records_per_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tests.pipeline, "consumers", lambda: consumers_taking(10))


def test_the_consumers_take_ten_records() -> None:
    sizes = {c.folder: c.event.batch_size for c in tests.pipeline.consumers()}
    assert sizes["run_worker"] == sizes["batch_job_worker"] == sizes["batch_urgent_job_worker"] == 10
