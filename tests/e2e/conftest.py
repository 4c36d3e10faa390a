"""One local stack on template.yaml for the session, with two known workspaces and keys."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from tests.e2e.harness import REPO, RunningStack, start_stack

ROOT = REPO
KEY_A = "bo_e2e_workspace_a_key_0000000001"
KEY_B = "bo_e2e_workspace_b_key_0000000002"
# A workspace on the free plan (5 requests/s, burst 10) that only the rate-limit test uses, and one on
# enterprise for the property-based run (hundreds of requests that must not hit a plan budget).
KEY_TIGHT = "bo_e2e_workspace_tight_key_00000003"
KEY_BULK = "bo_e2e_workspace_enterprise_key_004"
# A workspace (on pro, as `make run`'s) per client test file: each creates batches, and pro allows 25
# a day per workspace, which the files would share with test_batches_http.py in one session.
KEY_SDK = "bo_e2e_workspace_client_sdk_key_005"
KEY_CLI = "bo_e2e_workspace_client_cli_key_006"
KEY_TOUR = "bo_e2e_workspace_readme_tour_key_07"
KEY_INSTALL = "bo_e2e_workspace_client_install_k08"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        tmp_path_factory.mktemp("batchops-stack"),
        {
            "BATCHOPS_LOCAL_API_KEYS": (
                f"ws-a:pro:{KEY_A},ws-b:free:{KEY_B},ws-tight:free:{KEY_TIGHT},ws-bulk:enterprise:{KEY_BULK},"
                f"ws-sdk:pro:{KEY_SDK},ws-cli:pro:{KEY_CLI},ws-tour:pro:{KEY_TOUR},ws-install:pro:{KEY_INSTALL}"
            ),
            # The sweeper every 30 s, not 0.6 s: each sweep's queries scan moto's whole table, and
            # with the tens of thousands of items the suite writes they would take a core.
            "BATCHOPS_LOCAL_SCHEDULE_SCALE": "0.1",
        },
    )
    try:
        yield running
    finally:
        code = running.stop(signal.SIGINT)
        assert code == 0, f"the stack exited with {code} on Ctrl-C:\n{running.logs()}"
