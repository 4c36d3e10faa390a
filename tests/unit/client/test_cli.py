"""The `batchops` CLI in-process (click's CliRunner) against a respx-mocked API: global options
anywhere on the line, --json and tables, exit codes 0-4, retry notices, one-line errors, result
files, and an example in every command's --help."""

from __future__ import annotations

import json
from pathlib import Path

import click
import httpx
import pytest
import respx
from click.testing import CliRunner, Result

from batchops_client.cli import State, cli

BASE = "http://api.test"


class Sleeps:
    """The client's sleep: records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def run(
    *args: str, env: dict[str, str] | None = None, sleeps: Sleeps | None = None, stdin: str | None = None
) -> Result:
    environment = {"BATCHOPS_BASE_URL": BASE, "BATCHOPS_API_KEY": "bo_test", "COLUMNS": "200"}
    environment.update(env or {})
    state = State(sleep=sleeps or Sleeps())
    return CliRunner().invoke(cli, list(args), obj=state, env=environment, input=stdin)


def batch(
    status: str = "running", *, done: int = 1, failed: int = 0, total: int = 4, batch_id: str = "batch_1"
) -> dict:
    return {
        "batch_id": batch_id,
        "name": "Q3 analysis",
        "status": status,
        "priority": "high",
        "progress": {"percentage": 100 * (done + failed) // total},
        "jobs": {"total": total, "completed": done, "failed": failed, "running": total - done - failed},
        "created_at": "2026-12-07T10:00:00Z",
    }


def ok(data) -> httpx.Response:
    return httpx.Response(200, json={"success": True, "data": data})


def not_found(batch_id: str) -> httpx.Response:
    return httpx.Response(
        404,
        json={"success": False, "error": f"Batch {batch_id} not found", "code": "BATCH_NOT_FOUND"},
        headers={"x-amzn-requestid": "abc"},
    )


# --- global options -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--base-url", BASE, "--api-key", "bo_cli", "batch", "status", "batch_1"],
        ["batch", "status", "batch_1", "--base-url", BASE, "--api-key", "bo_cli"],
        ["--api-url", BASE, "batch", "--api-key", "bo_cli", "status", "batch_1"],
        # The leaf's value wins over the root's.
        ["--api-key", "bo_root", "batch", "status", "batch_1", "--api-key", "bo_cli", "--api-url", BASE],
    ],
)
def test_global_options_before_or_after_the_subcommand(args):
    with (
        respx.mock(base_url="http://elsewhere.test", assert_all_called=False) as other,
        respx.mock(base_url=BASE) as api,
    ):
        other.route().respond(500)
        route = api.get("/v1/batches/batch_1").mock(return_value=ok(batch()))
        result = run(*args, env={"BATCHOPS_BASE_URL": "http://elsewhere.test", "BATCHOPS_API_KEY": "bo_env"})
    assert result.exit_code == 0, result.output
    assert route.calls.last.request.headers["Authorization"] == "Bearer bo_cli"


def test_json_flag_after_the_subcommand_prints_the_api_json_only():
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/batches/batch_1").mock(return_value=ok(batch()))
        result = run("batch", "status", "batch_1", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == batch()
    assert result.stderr == ""


def test_env_configures_the_client():
    with respx.mock(base_url=BASE) as api:
        route = api.get("/v1/batches/batch_1").mock(return_value=ok(batch()))
        result = run("--json", "batch", "status", "batch_1")
    assert result.exit_code == 0
    assert route.calls.last.request.headers["Authorization"] == "Bearer bo_test"


def test_version():
    from batchops_client import __version__

    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"batchops {__version__}"


# --- human output -------------------------------------------------------------------------------


def test_list_shows_a_table_of_the_batches():
    page = {
        "success": True,
        "data": [batch(), batch("failed", done=1, failed=3, batch_id="batch_2")],
        "pagination": {"page": 1, "per_page": 20, "total_pages": 3, "total_items": 42},
    }
    with respx.mock(base_url=BASE) as api:
        route = api.get("/v1/batches").respond(200, json=page)
        result = run("batch", "list", "--status", "running", "--per-page", "20")
    assert result.exit_code == 0, result.output
    assert route.calls.last.request.url.params["status"] == "running"
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "STATUS" in line)
    assert all(word in header for word in ("ID", "NAME", "PRIORITY", "FAILED"))
    row = next(line for line in lines if "batch_2" in line)
    assert "Q3 analysis" in row and "failed" in row and "high" in row
    assert "page 1 of 3 (42 batches)" in result.stdout


def test_list_json_is_the_whole_page():
    page = {
        "success": True,
        "data": [batch()],
        "pagination": {"page": 1, "per_page": 20, "total_pages": 1, "total_items": 1},
    }
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/batches").respond(200, json=page)
        result = run("--json", "batch", "list")
    assert json.loads(result.stdout) == page


def test_status_shows_a_panel_of_fields():
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/batches/batch_1").mock(return_value=ok(batch()))
        result = run("batch", "status", "batch_1")
    assert result.exit_code == 0
    assert "batch_id" in result.stdout and "batch_1" in result.stdout and "Q3 analysis" in result.stdout
    assert '"total":4' in result.stdout


# --- exit codes ---------------------------------------------------------------------------------


def test_watch_a_batch_that_fails_exits_1_with_live_counts_on_stderr():
    sleeps = Sleeps()
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/batches/batch_1").mock(
            side_effect=[ok(batch(done=1)), ok(batch(done=2, failed=1)), ok(batch("failed", done=2, failed=2))]
        )
        result = run("batch", "status", "batch_1", "--watch", "--interval", "3", "--json", sleeps=sleeps)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "failed"
    assert sleeps.waits == [3, 3]
    # The bar's last state (stderr is not a terminal here, so only that is drawn): counts and rate.
    assert "4/4" in result.stderr and "2 failed" in result.stderr and "items/s" in result.stderr
    assert "batch batch_1 ended failed" in result.stderr


def test_watch_a_batch_that_completes_exits_0():
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/batches/batch_1").mock(side_effect=[ok(batch(done=1)), ok(batch("completed", done=4))])
        result = run("batch", "status", "batch_1", "--watch")
    assert result.exit_code == 0, result.output


def test_status_of_a_finished_failed_batch_exits_1():
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/batches/batch_1").mock(return_value=ok(batch("cancelled", done=1)))
        assert run("batch", "status", "batch_1").exit_code == 1


def test_watch_that_times_out_exits_4():
    sleeps = Sleeps()
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/batches/batch_1").mock(return_value=ok(batch()))
        result = run("batch", "status", "batch_1", "--watch", "--interval", "1", "--timeout", "3", sleeps=sleeps)
    assert result.exit_code == 4
    assert sum(sleeps.waits) == 3
    assert result.stderr.strip().splitlines()[-1] == "error: WAIT_TIMEOUT: batch batch_1 still running after 3 s"


def test_not_found_is_one_line_and_exit_3():
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/batches/x").mock(return_value=not_found("x"))
        result = run("batch", "status", "x")
    assert result.exit_code == 3
    assert result.stderr == "error: 404 BATCH_NOT_FOUND: Batch x not found (request abc)\n"
    assert result.stdout == ""


def test_error_details_are_on_the_same_line():
    body = {"error": "Invalid batch", "code": "VALIDATION_ERROR", "details": [{"field": "jobs", "message": "required"}]}
    with respx.mock(base_url=BASE) as api:
        api.post("/v1/batches").respond(400, json=body)
        result = run("batch", "create", "--config", "-", stdin=json.dumps({"name": "n", "jobs": []}))
    assert result.exit_code == 3
    assert result.stderr == (
        'error: 400 VALIDATION_ERROR: Invalid batch; details: [{"field":"jobs","message":"required"}]\n'
    )


def test_debug_shows_the_traceback():
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/batches/x").mock(return_value=not_found("x"))
        result = run("batch", "status", "x", "--debug")
    assert result.exit_code == 3
    assert "Traceback" in result.stderr and "NotFoundError" in result.stderr
    assert result.stderr.endswith("error: 404 BATCH_NOT_FOUND: Batch x not found (request abc)\n")


def test_unreachable_api_is_one_line_and_exit_3():
    sleeps = Sleeps()
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/batches/batch_1").mock(side_effect=httpx.ConnectError("Connection refused"))
        result = run("batch", "status", "batch_1", sleeps=sleeps)
    assert result.exit_code == 3
    assert len(sleeps.waits) == 3
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: could not reach") and "Connection refused" in last
    assert "Traceback" not in result.stderr
    assert "connection failed (ConnectError" in result.stderr


def test_missing_api_key_exits_2():
    result = run("batch", "status", "batch_1", env={"BATCHOPS_API_KEY": ""})
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "BATCHOPS_API_KEY" in result.stderr
    assert "--api-key KEY" in result.stderr and len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_usage_error_exits_2():
    result = run("batch", "list", "--status", "nope")
    assert result.exit_code == 2
    assert "Invalid value for '--status'" in result.stderr


def test_unreadable_or_invalid_input_file_exits_2(tmp_path: Path):
    assert run("batch", "create", "--config", str(tmp_path / "missing.json")).exit_code == 2
    broken = tmp_path / "broken.json"
    broken.write_text("{nope", encoding="utf-8")
    result = run("batch", "create", "--config", str(broken))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {broken}: not a JSON object")
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"name": "n", "jobs": [], "colour": "red"}), encoding="utf-8")
    result = run("batch", "create", "--config", str(extra))
    assert result.exit_code == 2 and "unknown fields colour" in result.stderr


# --- retries ------------------------------------------------------------------------------------


def test_retry_after_wait_is_announced_on_stderr():
    sleeps = Sleeps()
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/batches/batch_1").mock(
            side_effect=[httpx.Response(429, headers={"Retry-After": "299"}, json={"error": "slow down"}), ok(batch())]
        )
        result = run("batch", "status", "batch_1", "--json", sleeps=sleeps)
    assert result.exit_code == 0
    assert sleeps.waits == [299]
    assert result.stderr == "rate limited (429): retrying in 4m59s as the API asked (attempt 1/3)\n"
    assert json.loads(result.stdout)["batch_id"] == "batch_1"


# --- batch commands -----------------------------------------------------------------------------


def test_create_reads_stdin_and_sends_the_config():
    config = {"name": "Q3", "jobs": [{"id": "j1", "type": "analysis", "config": {}}], "priority": "high"}
    created = {"batch_id": "batch_9", "name": "Q3", "status": "queued", "signing_secret": "whsec_x"}
    with respx.mock(base_url=BASE) as api:
        route = api.post("/v1/batches").respond(202, json={"success": True, "data": created})
        result = run("batch", "create", "--config", "-", "--idempotency-key", "k1", stdin=json.dumps(config))
    assert result.exit_code == 0, result.output
    request = route.calls.last.request
    assert json.loads(request.content) == config
    assert request.headers["Idempotency-Key"] == "k1"
    assert "batch_9" in result.stdout and "whsec_x" in result.stdout


def test_results_written_to_output_folder(tmp_path: Path):
    with respx.mock(base_url=BASE) as api:
        route = api.get("/v1/batches/batch_1/results").respond(200, content=b"job,status\nj1,completed\n")
        result = run("batch", "results", "batch_1", "--format", "csv", "--output", str(tmp_path))
    assert result.exit_code == 0, result.output
    target = tmp_path / "batch_1.csv"
    assert target.read_bytes() == b"job,status\nj1,completed\n"
    assert result.stdout.strip() == str(target)
    assert route.calls.last.request.url.params["format"] == "csv"


def test_results_open_launches_the_file(tmp_path: Path, monkeypatch):
    opened: list[str] = []
    monkeypatch.setattr(click, "launch", lambda target, **_: opened.append(target) or 0)
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/batches/batch_1/results").respond(200, content=b"%PDF-1.4")
        result = run("batch", "results", "batch_1", "--format", "pdf", "--output", str(tmp_path), "--open")
    assert result.exit_code == 0, result.output
    assert opened == [str(tmp_path / "batch_1.pdf")]


def test_cancel_and_retry():
    with respx.mock(base_url=BASE) as api:
        cancel = api.delete("/v1/batches/batch_1").mock(
            return_value=ok({"batch_id": "batch_1", "status": "cancelled", "jobs_cancelled": 3})
        )
        retry = api.post("/v1/batches/batch_1/retry").mock(
            return_value=ok({"batch_id": "batch_1", "jobs_retried": 2, "new_batch_id": "batch_2"})
        )
        assert run("batch", "cancel", "batch_1", "--reason", "oops", "--keep-running").exit_code == 0
        result = run("batch", "retry", "batch_1", "--job-id", "j1", "--job-id", "j2")
    assert json.loads(cancel.calls.last.request.content) == {"reason": "oops", "cancel_running_jobs": False}
    assert json.loads(retry.calls.last.request.content) == {"job_ids": ["j1", "j2"]}
    assert result.exit_code == 0 and "batch_2" in result.stdout


# --- help ---------------------------------------------------------------------------------------


def _leaves(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _leaves(command, (*prefix, name))
        else:
            yield (*prefix, name)


LEAVES = sorted(_leaves(cli))


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_every_command_help_has_an_example(path):
    result = run(*path, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout and f"batchops {' '.join(path)}" in result.stdout
    assert "--json" in result.stdout and "--base-url" in result.stdout


def test_root_help_lists_commands_and_exit_codes():
    result = run("--help")
    assert result.exit_code == 0
    assert "batch" in result.stdout and "Exit codes:" in result.stdout
    assert "4  timeout" in result.stdout


def test_an_answer_the_client_cannot_read_is_one_line_and_exit_3():
    # A 200 of another shape (a proxy's, another API's): the SDK's INVALID_RESPONSE, not pydantic's text.
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/batches/batch_1").mock(return_value=ok({"unexpected": True}))
        result = run("batch", "status", "batch_1")
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "error: INVALID_RESPONSE: the API's answer does not have the expected shape (batch_id: Field required)"
    ]


def test_an_output_path_that_cannot_be_written_is_a_usage_error(tmp_path):
    blocker = tmp_path / "reports"
    blocker.write_text("a file where the folder should be")
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/batches/batch_1/results").respond(200, content=b"a,b\n", headers={"Content-Type": "text/csv"})
        result = run("batch", "results", "batch_1", "--format", "csv", "--output", str(blocker / "sub"))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stderr.startswith("error: ")


class Interrupted(Sleeps):
    """Ctrl-C pressed during the first wait between polls."""

    def __call__(self, seconds: float) -> None:
        raise KeyboardInterrupt


def test_ctrl_c_while_watching_exits_130_not_1():
    with respx.mock(base_url=BASE) as api:
        api.get("/v1/batches/batch_1").mock(return_value=ok(batch("running")))
        result = run("batch", "status", "batch_1", "--watch", "--interval", "0.1", sleeps=Interrupted())
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.stderr and "Traceback" not in result.output


def test_a_base_url_without_a_scheme_is_a_usage_error():
    result = run("batch", "list", env={"BATCHOPS_BASE_URL": "127.0.0.1:3000"})
    assert result.exit_code == 2, result.output
    assert "http:// or https://" in result.stderr
