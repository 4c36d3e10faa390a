"""A pytest plugin: the run and Batches job workers' consumers take 10 records per invocation, the
event source mapping's most, whatever template.yaml's BatchSize says. Run any suite with it:
`python -m pytest -p tests.batch_size_ten tests/integration/test_faults_runs.py` (issue 14)."""

from __future__ import annotations

import dataclasses

import tests.pipeline

TEN = ("run_worker", "batch_job_worker", "batch_urgent_job_worker")
_template_consumers = tests.pipeline.consumers


def consumers_taking(size: int, folders: tuple[str, ...] = TEN) -> list[tests.pipeline.Consumer]:
    return [
        dataclasses.replace(c, event=dataclasses.replace(c.event, batch_size=size)) if c.folder in folders else c
        for c in _template_consumers()
    ]


def pytest_configure() -> None:
    tests.pipeline.consumers = lambda: consumers_taking(10)  # type: ignore[assignment]
