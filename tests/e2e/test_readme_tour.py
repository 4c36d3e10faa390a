"""The README's "SDK and CLI" tour, run as written against the local stack, so it cannot rot.

Every ```python block runs in the project's Python and every ```sh block in bash (with `set -e`
and pipefail), in one scratch folder, with only BATCHOPS_BASE_URL and BATCHOPS_API_KEY set as the
tour's first block tells the reader. ```text blocks are not run (the install line is proven by
test_client_install.py). The outputs the README's comments promise are checked.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import KEY_TOUR
from tests.e2e.harness import REPO, RunningStack

SECTION = "## SDK and CLI"


def tour_blocks() -> list[tuple[str, str]]:
    """(language, code) of each fenced block of the README's tour section, in order."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    section = readme[start : end if end != -1 else None]
    return [(m["lang"], m["code"]) for m in re.finditer(r"```(?P<lang>\w*)\n(?P<code>.*?)```", section, re.S)]


def test_the_tour_has_sdk_and_cli_blocks() -> None:
    languages = [lang for lang, _ in tour_blocks()]
    assert languages.count("python") >= 2 and "sh" in languages, languages
    assert set(languages) <= {"python", "sh", "text"}, languages


@pytest.fixture(scope="module")
def ran(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    folder = tmp_path_factory.mktemp("readme-tour")
    bin_dir = Path(sys.executable).parent
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BATCHOPS_")},
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "BATCHOPS_BASE_URL": stack.api,
        "BATCHOPS_API_KEY": KEY_TOUR,
        "NO_COLOR": "1",
    }
    outputs: list[str] = []
    for number, (lang, code) in enumerate(tour_blocks()):
        if lang == "text":
            continue
        argv = [sys.executable, "-c", code] if lang == "python" else ["bash", "-euo", "pipefail", "-c", code]
        done = subprocess.run(argv, capture_output=True, text=True, cwd=folder, env=env, timeout=300, check=False)
        assert done.returncode == 0, (
            f"README tour block {number} ({lang}) failed:\n{code}\n{done.stdout}\n{done.stderr}"
        )
        assert "Traceback" not in done.stderr, done.stderr
        outputs.append(done.stdout)
    return folder, outputs


def test_the_sdk_tour_prints_what_its_comments_promise(ran: tuple[Path, list[str]]) -> None:
    folder, (sdk, async_sdk, _cli) = ran
    lines = sdk.splitlines()
    assert "Progress: 100%" in lines
    for promised in ("completed 3", "3", "2 [200, 200]", "2", "1", "completed", "True", "404 BATCH_NOT_FOUND"):
        assert promised in lines, f"{promised!r} not printed:\n{sdk}"
    xlsx = [line for line in lines if line.endswith(".xlsx")]
    assert xlsx and (folder / xlsx[0]).is_file() and (folder / xlsx[0]).read_bytes().startswith(b"PK")
    assert async_sdk.splitlines() == ["pro True"]


def test_the_cli_tour_wrote_its_files(ran: tuple[Path, list[str]]) -> None:
    folder, (_sdk, _async, cli) = ran
    reports = sorted((folder / "reports").glob("*.csv"))
    assert len(reports) == 1 and "job_1" in reports[0].read_text(encoding="utf-8")
    assert "completed" in cli
