"""One local stack on template.yaml for the session, with two known workspaces and keys."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from tests.e2e.harness import REPO, RunningStack, start_stack

ROOT = REPO
KEY_A = "bo_e2e_workspace_a_key_0000000001"
KEY_B = "bo_e2e_workspace_b_key_0000000002"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        tmp_path_factory.mktemp("batchops-stack"),
        {"BATCHOPS_LOCAL_API_KEYS": f"ws-a:pro:{KEY_A},ws-b:free:{KEY_B}"},
    )
    try:
        yield running
    finally:
        code = running.stop(signal.SIGINT)
        assert code == 0, f"the stack exited with {code} on Ctrl-C:\n{running.logs()}"
