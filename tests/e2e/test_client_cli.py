"""The `batchops` command as people run it: a subprocess against the local stack, its jobs calling
a real HTTP server on 127.0.0.1. A batch watched until done, its results written to disk and
opened, every documented exit code, clean one-line errors, a closed pipe, and the live progress
bar drawn on a pseudo-terminal."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pexpect
import pytest

from tests.e2e.conftest import KEY_CLI
from tests.e2e.harness import RunningStack
from tests.job_endpoint import JobEndpoints, Reply, job_endpoints

BATCHOPS = shutil.which("batchops", path=str(Path(sys.executable).parent)) or "batchops"
F_SETPIPE_SZ = 1031  # <linux/fcntl.h>; fcntl.F_SETPIPE_SZ from Python 3.10 on


@pytest.fixture(scope="module")
def endpoints() -> Iterator[JobEndpoints]:
    with job_endpoints() as server:
        yield server


def env_for(stack: RunningStack, **more: str) -> dict[str, str]:
    return {
        **os.environ,
        "BATCHOPS_BASE_URL": stack.api,
        "BATCHOPS_API_KEY": KEY_CLI,
        "NO_COLOR": "1",
        "COLUMNS": "120",
        **more,
    }


def batchops(
    stack: RunningStack, *argv: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    assert BATCHOPS, "the client's console script is not installed in this venv (make installs ./client)"
    return subprocess.run(
        [BATCHOPS, *map(str, argv)],
        capture_output=True,
        text=True,
        env=env if env is not None else env_for(stack),
        timeout=180,
        check=False,
    )


def config_file(tmp_path: Path, jobs: list[dict[str, Any]], **fields: Any) -> Path:
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({"name": "cli e2e", "type": "analysis", "jobs": jobs, **fields}))
    return path


def http_jobs(endpoints: JobEndpoints, path: str, count: int) -> list[dict[str, Any]]:
    return [{"id": f"job_{i}", "type": "http", "config": {"url": endpoints.url(path)}} for i in range(count)]


def created_batch(stack: RunningStack, tmp_path: Path, jobs: list[dict[str, Any]], **fields: Any) -> str:
    made = batchops(stack, "batch", "create", "--config", config_file(tmp_path, jobs, **fields), "--json")
    assert made.returncode == 0, made.stderr
    batch_id: str = json.loads(made.stdout)["batch_id"]
    return batch_id


def assert_one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    # Progress and retry notices may come first; the error is the last line, and one line.
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), done.stderr
    assert sum(line.startswith("error: ") for line in lines) == 1, done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def test_watch_until_done_then_results_written_to_disk_and_opened(
    stack: RunningStack, endpoints: JobEndpoints, tmp_path: Path
) -> None:
    endpoints.script("/cli/ok", Reply(200, {"quality_score": 8.5}))
    batch_id = created_batch(stack, tmp_path, http_jobs(endpoints, "/cli/ok", 3))

    watched = batchops(stack, "batch", "status", batch_id, "--watch", "--interval", "0.5", "--json")
    assert watched.returncode == 0, watched.stderr
    final = json.loads(watched.stdout)
    assert final["status"] == "completed" and final["jobs"]["completed"] == 3

    reports = tmp_path / "reports"
    written = batchops(stack, "batch", "results", batch_id, "--format", "xlsx", "--output", reports)
    assert written.returncode == 0, written.stderr
    xlsx = reports / f"{batch_id}.xlsx"
    assert xlsx.is_file() and str(xlsx) in written.stdout
    sheets = openpyxl.load_workbook(xlsx, read_only=True)
    cells = [str(cell) for sheet in sheets for row in sheet.iter_rows(values_only=True) for cell in row if cell]
    assert {"job_0", "job_1", "job_2"} <= set(cells)

    as_csv = batchops(stack, "batch", "results", batch_id, "--format", "csv", "--output", reports)
    assert as_csv.returncode == 0, as_csv.stderr
    with (reports / f"{batch_id}.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["job_id"] for row in rows) == ["job_0", "job_1", "job_2"]


def test_a_batch_that_ends_failed_exits_1(stack: RunningStack, endpoints: JobEndpoints, tmp_path: Path) -> None:
    endpoints.script("/cli/broken", Reply(400, {"error": "no"}))
    batch_id = created_batch(
        stack, tmp_path, http_jobs(endpoints, "/cli/broken", 2), options={"max_retries": 0, "retry_failed": False}
    )
    watched = batchops(stack, "batch", "status", batch_id, "--watch", "--interval", "0.5", "--json")
    assert watched.returncode == 1, (watched.stdout, watched.stderr)
    assert json.loads(watched.stdout)["status"] == "failed"


def test_a_wait_that_times_out_exits_4(stack: RunningStack, endpoints: JobEndpoints, tmp_path: Path) -> None:
    # A job that takes 6 s: the watch must give up at its 1 s timeout, naming the batch.
    endpoints.script("/cli/held", Reply(200, {"ok": True}, delay=6))
    batch_id = created_batch(stack, tmp_path, http_jobs(endpoints, "/cli/held", 1))
    watched = batchops(stack, "batch", "status", batch_id, "--watch", "--interval", "0.5", "--timeout", "1")
    assert watched.returncode == 4, (watched.stdout, watched.stderr)
    assert_one_line_error(watched, batch_id)


def test_api_errors_exit_3_with_one_line_and_no_traceback(stack: RunningStack) -> None:
    missing = batchops(stack, "batch", "status", "batch_does_not_exist")
    assert missing.returncode == 3
    assert_one_line_error(missing, "404")

    unreachable = batchops(stack, "batch", "list", env=env_for(stack, BATCHOPS_BASE_URL="http://127.0.0.1:9"))
    assert unreachable.returncode == 3
    assert_one_line_error(unreachable, "127.0.0.1:9")

    wrong_key = batchops(stack, "batch", "list", env=env_for(stack, BATCHOPS_API_KEY="bo_wrong"))
    assert wrong_key.returncode == 3
    assert_one_line_error(wrong_key, "401")


def test_usage_errors_exit_2(stack: RunningStack, tmp_path: Path) -> None:
    no_key = {k: v for k, v in env_for(stack).items() if k != "BATCHOPS_API_KEY"}
    unconfigured = batchops(stack, "batch", "list", env=no_key)
    assert unconfigured.returncode == 2
    assert_one_line_error(unconfigured, "BATCHOPS_API_KEY")

    assert batchops(stack, "batch", "status").returncode == 2  # the id is missing
    assert batchops(stack, "batch", "create", "--config", tmp_path / "absent.json").returncode == 2


def test_global_options_anywhere_on_the_line(stack: RunningStack) -> None:
    bare = {k: v for k, v in env_for(stack).items() if not k.startswith("BATCHOPS_")}
    before = batchops(stack, "--base-url", stack.api, "--api-key", KEY_CLI, "--json", "batch", "list", env=bare)
    after = batchops(stack, "batch", "list", "--json", "--api-key", KEY_CLI, "--base-url", stack.api, env=bare)
    assert before.returncode == after.returncode == 0, (before.stderr, after.stderr)
    assert json.loads(before.stdout).keys() == json.loads(after.stdout).keys()


def test_a_closed_pipe_ends_quietly(stack: RunningStack, tmp_path: Path) -> None:
    # `batchops ... | head -1`: the reader goes away while the command still writes.
    operations = [
        {"id": f"op-{n}", "method": "POST", "path": "/v1/track", "body": {"event": "e", "properties": {"n": n}}}
        for n in range(50)
    ]
    ops = tmp_path / "ops.json"
    ops.write_text(json.dumps(operations))
    argv = [BATCHOPS, "--json", "ops", "run", str(ops), "--dry-run"]
    whole = subprocess.run(argv, capture_output=True, text=True, env=env_for(stack), check=False)
    assert len(whole.stdout) > 3 * 4096, "the output must overflow the pipe for the test to mean anything"

    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_for(stack), text=True)
    assert process.stdout is not None and process.stderr is not None
    # A one-page pipe: the command blocks on it until the reader leaves, then writes into a closed pipe.
    fcntl.fcntl(process.stdout.fileno(), F_SETPIPE_SZ, 4096)
    assert process.stdout.readline().strip() in ("{", "[")
    process.stdout.close()
    code = process.wait(timeout=60)
    stderr = process.stderr.read()
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert code in (0, 1, 141), (code, stderr)


def test_the_watch_draws_a_live_progress_bar_on_a_terminal(
    stack: RunningStack, endpoints: JobEndpoints, tmp_path: Path
) -> None:
    # One job at a time, each about a second: several polls see the bar move.
    endpoints.script("/cli/slow", Reply(200, {"ok": True}, delay=0.8))
    batch_id = created_batch(stack, tmp_path, http_jobs(endpoints, "/cli/slow", 4), options={"max_parallel": 1})
    env = {k: v for k, v in env_for(stack).items() if k not in ("NO_COLOR", "CI", "TERM")}
    terminal = pexpect.spawn(
        BATCHOPS,
        ["batch", "status", batch_id, "--watch", "--interval", "0.3"],
        env={**env, "TERM": "xterm-256color"},
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=120,
    )
    seen = ""
    started = time.monotonic()
    while terminal.isalive() and time.monotonic() - started < 120:
        try:
            seen += terminal.read_nonblocking(4096, timeout=1)
        except pexpect.TIMEOUT:
            continue
        except pexpect.EOF:
            break
    terminal.close()
    assert terminal.exitstatus == 0, seen[-2000:]
    # Rich redraws the line in place (carriage returns / cursor moves), with a bar and counts.
    assert "\r" in seen or "\x1b[" in seen
    assert "━" in seen, seen[-2000:]
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen)
    counts = set(re.findall(r"\b([0-4])/4\b", plain))
    assert {"4"} <= counts and len(counts) >= 2, f"the counts never moved: {sorted(counts)}"
