"""Property-based run of schemathesis against our own OpenAPI document: no server errors."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import KEY_BULK, ROOT


# subprocess.run's own timeout (which kills schemathesis) comes before pytest's.
@pytest.mark.timeout(540)
def test_no_server_errors_for_generated_requests(stack, tmp_path):
    schemathesis = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "schemathesis"
    if not schemathesis.exists():
        schemathesis = ROOT / ".venv" / "bin" / "schemathesis"
    done = subprocess.run(
        [
            str(schemathesis), "run", f"{stack.api}/openapi.json",
            "--url", stack.api,
            "--checks", "not_a_server_error",
            # An enterprise workspace: the run's hundreds of requests stay within its budget.
            "-H", f"Authorization: Bearer {KEY_BULK}",
            "--max-examples", "25",
            "--seed", "20261123",
            "--request-timeout", "30",
            "--generation-database", "none",
        ],
        capture_output=True, text=True, cwd=tmp_path, timeout=480,
    )  # fmt: skip
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "No issues found" in report or "passed" in report.lower(), report
