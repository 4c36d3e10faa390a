"""Property-based run of schemathesis against our own OpenAPI document: every check (no server
error, every status and body as documented, schema-valid requests taken, schema-invalid ones
refused, auth enforced) in every phase (coverage, fuzzing, stateful). tests/e2e/schemathesis.toml
holds the settings and each rule the server keeps that JSON Schema cannot state.

`make test` runs it with a fixed seed and few examples; `make fuzz` (BATCHOPS_FUZZ=1) runs ten
times the examples with a random seed, which the report prints so a failure can be replayed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import KEY_BULK, ROOT

CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = "20261123"
FUZZ = os.environ.get("BATCHOPS_FUZZ") == "1"
# The coverage phase (boundaries of every documented constraint) is most of the run and does not
# grow with examples; fuzzing and stateful do. Ten a route keeps `make test` as long as it was.
MAX_EXAMPLES = "100" if FUZZ else "10"
RUN_TIMEOUT = 3000 if FUZZ else 480


def schemathesis_bin() -> Path:
    found = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "schemathesis"
    return found if found.exists() else ROOT / ".venv" / "bin" / "schemathesis"


# subprocess.run's own timeout (which kills schemathesis) comes before pytest's.
@pytest.mark.timeout(RUN_TIMEOUT + 60)
def test_generated_requests_get_documented_answers(stack, tmp_path):
    done = subprocess.run(
        [
            str(schemathesis_bin()), "--config-file", str(CONFIG),
            "run", f"{stack.api}/openapi.json",
            "--url", stack.api,
            "--phases", "examples,coverage,fuzzing,stateful",
            # An enterprise workspace: the run's thousands of requests stay within its budget.
            "-H", f"Authorization: Bearer {KEY_BULK}",
            "--max-examples", MAX_EXAMPLES,
            *([] if FUZZ else ["--seed", SEED]),
            "--request-timeout", "30",
            "--generation-database", "none",
        ],
        capture_output=True, text=True, cwd=tmp_path, timeout=RUN_TIMEOUT,
    )  # fmt: skip
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    # Every check ran (none is turned off on the command line) and none failed.
    assert "Configuration:" in report and str(CONFIG) in report, report
    assert " failed" not in report.split("SUMMARY")[-1], report
