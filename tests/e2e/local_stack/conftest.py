"""Fixtures: one local stack for the whole session (see tests/e2e/harness.py)."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from tests.e2e.harness import FIXTURE_TEMPLATE, RunningStack, start_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(tmp_path_factory.mktemp("local-stack"), template=FIXTURE_TEMPLATE)
    try:
        yield running
    finally:
        code = running.stop(signal.SIGTERM)
        assert code == 0, f"the stack exited with {code} on SIGTERM:\n{running.logs()}"


@pytest.fixture(scope="session")
def auth() -> dict[str, str]:
    return {"Authorization": "Bearer good"}
