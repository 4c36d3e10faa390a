"""`batchops ops ...`: many API operations in one request (`/v1/batch*`)."""

from __future__ import annotations

from typing import IO, Any, Callable, Optional

import click

from batchops_client.cli._base import BatchopsGroup
from batchops_client.cli._input import JSON_FILE, read_json
from batchops_client.cli.options import make_client, state
from batchops_client.cli.output import InputError, examples, finish, notice, show_record, show_table
from batchops_client.cli.progress import Counts, watch_with_progress
from batchops_client.models.operations import AsyncOperation, OperationsResult

RESULT_COLUMNS = [("ID", "id"), ("STATUS", "status"), ("CODE", "code"), ("BODY", "body")]
ASYNC_COLUMNS = [
    ("ID", "id"),
    ("STATUS", "status"),
    ("TOTAL", "summary.total"),
    ("SUCCEEDED", "summary.succeeded"),
    ("FAILED", "summary.failed"),
    ("CREATED", "createdAt"),
    ("COMPLETED", "completedAt"),
]
ASYNC_STATUSES = ("QUEUED", "PROCESSING", "COMPLETED", "FAILED")


@click.group(
    cls=BatchopsGroup,
    epilog=examples(
        "batchops ops run ops.json --transaction", "batchops ops run ops.json --async --wait", "batchops ops limits"
    ),
)
def ops() -> None:
    """Many API operations in one request: run (sequential, parallel, transaction, dry run,
    async), async status, limits."""


def _operations(source: IO[str]) -> tuple[list[Any], dict[str, Any]]:
    """The operations and request options of a file: `[op, ...]` or `{"operations": [...],
    "parallel"?, "continueOnError"?}`."""
    value = read_json(source)
    if isinstance(value, list):
        return value, {}
    if isinstance(value, dict) and isinstance(value.get("operations"), list):
        return value["operations"], {key: value[key] for key in ("parallel", "continueOnError") if key in value}
    raise InputError(f"{source.name}: expected a JSON array of operations or an object with `operations`")


def _show_results(result: OperationsResult, title: str) -> None:
    summary = result.summary
    show_table(
        result.results,
        RESULT_COLUMNS,
        title=title,
        caption=f"{summary.total} operations: {summary.succeeded} succeeded, {summary.failed} failed, "
        f"{summary.skipped} skipped",
        raw=result,
    )


def _async_counts(total: int) -> Callable[[AsyncOperation], Counts]:
    def counts(job: AsyncOperation) -> Counts:
        summary = job.summary
        if summary is None:
            return 0, total or None, 0, job.status
        return summary.succeeded + summary.failed + summary.skipped, summary.total, summary.failed, job.status

    return counts


def _wait_async(job_id: str, interval: float, timeout: float, total: int = 0) -> AsyncOperation:
    ctx = click.get_current_context()
    client = make_client(ctx)
    return watch_with_progress(
        state(ctx).stderr,
        f"async {job_id}",
        lambda on_status: client.operations.wait(job_id, poll_interval=interval, timeout=timeout, on_status=on_status),
        _async_counts(total),
    )


def _end_async(job: AsyncOperation) -> None:
    if job.results is not None:
        summary = job.summary
        show_table(
            job.results,
            RESULT_COLUMNS,
            title=f"async {job.id} {job.status}",
            caption=None
            if summary is None
            else f"{summary.total} operations: {summary.succeeded} succeeded, "
            f"{summary.failed} failed, {summary.skipped} skipped",
            raw=job,
        )
    else:
        show_record(job, title=f"async {job.id}")
    finish(not job.finished or job.succeeded, f"async {job.id} ended {job.status}")


WAIT_OPTIONS = [
    click.option(
        "--interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True, help="seconds between polls"
    ),
    click.option(
        "--timeout", type=click.FloatRange(min=0), default=600.0, show_default=True, help="give up after (exit 4)"
    ),
]


def wait_options(function: Any) -> Any:
    for option in reversed(WAIT_OPTIONS):
        function = option(function)
    return function


@ops.command(
    epilog="""\b
Example:
  batchops ops run ops.json                      # one after another
  batchops ops run ops.json --parallel --stop-on-error
  batchops ops run ops.json --transaction        # fail fast: the first failure skips the rest
  batchops ops run ops.json --dry-run            # validate only
  batchops ops run ops.json --async --wait
ops.json: [{"id": "a", "method": "GET", "path": "/v1/batches"}, ...]
          or {"operations": [...], "parallel": true, "continueOnError": false}"""
)
@click.argument("file", type=JSON_FILE)
@click.option("--parallel", is_flag=True, help="run the operations concurrently")
@click.option(
    "--stop-on-error", is_flag=True, help="skip the operations after the first failure (continueOnError false)"
)
@click.option("--transaction", is_flag=True, help="POST /v1/batch/transaction: fail fast")
@click.option("--dry-run", is_flag=True, help="POST /v1/batch/dry-run: validate without running")
@click.option("--async", "run_async", is_flag=True, help="POST /v1/batch/async: queue and return its job id")
@click.option("--wait", is_flag=True, help="with --async: wait for the job, with a live progress bar")
@wait_options
@click.option("--idempotency-key", help="Idempotency-Key header (default: a new one)")
def run(
    file: IO[str],
    parallel: bool,
    stop_on_error: bool,
    transaction: bool,
    dry_run: bool,
    run_async: bool,
    wait: bool,
    interval: float,
    timeout: float,
    idempotency_key: Optional[str],
) -> None:
    """Run a file of operations (POST /v1/batch). Exits 1 when an operation failed (or, with
    --dry-run, would fail)."""
    if sum((transaction, dry_run, run_async)) > 1:
        raise click.UsageError("--transaction, --dry-run and --async are exclusive")
    if wait and not run_async:
        raise click.UsageError("--wait goes with --async")
    if transaction and (parallel or stop_on_error):
        raise click.UsageError("a transaction runs in order and stops at the first failure")
    operations, given = _operations(file)
    options = {
        "parallel": True if parallel else given.get("parallel"),
        "continue_on_error": False if stop_on_error else given.get("continueOnError"),
    }
    client = make_client(click.get_current_context())
    if transaction:
        result = client.operations.transaction(operations, idempotency_key=idempotency_key)
    elif dry_run:
        checked = client.operations.dry_run(operations, **options)
        _show_results(checked, "dry run")
        finish(checked.valid, "dry run: some operations would fail")
        return
    elif run_async:
        job = client.operations.submit_async(operations, idempotency_key=idempotency_key, **options)
        if not wait:
            show_record(job, title=f"async {job.id} queued")
            notice(f"follow it: batchops ops status {job.id} --wait")
            return
        _end_async(_wait_async(job.id, interval, timeout, len(operations)))
        return
    else:
        result = client.operations.execute(operations, idempotency_key=idempotency_key, **options)
    _show_results(result, "transaction" if transaction else "operations")
    finish(result.succeeded, f"{len(result.failed)} of {result.summary.total} operations failed")


@ops.command(
    epilog="""\b
Example:
  batchops ops status 7d0c7e9a-...
  batchops ops status 7d0c7e9a-... --wait --timeout 120"""
)
@click.argument("job_id")
@click.option("--wait", is_flag=True, help="wait until COMPLETED or FAILED, with a live progress bar")
@wait_options
def status(job_id: str, wait: bool, interval: float, timeout: float) -> None:
    """An async job's status and, once done, its results (GET /v1/batch/async/{id}). Exits 1
    when it FAILED or an operation failed."""
    if wait:
        job = _wait_async(job_id, interval, timeout)
    else:
        job = make_client(click.get_current_context()).operations.get_async(job_id)
    _end_async(job)


@ops.command(
    "list",
    epilog="""\b
Example:
  batchops ops list --status FAILED
  batchops ops list --all --json""",
)
@click.option("--status", type=click.Choice(ASYNC_STATUSES))
@click.option("--limit", type=click.IntRange(1, 100), help="page size (20 unless given)")
@click.option("--cursor", help="the previous page's nextCursor")
@click.option("--all", "all_pages", is_flag=True, help="every page")
def list_async(status: Optional[str], limit: Optional[int], cursor: Optional[str], all_pages: bool) -> None:
    """The workspace's async jobs, newest first (GET /v1/batch/async)."""
    client = make_client(click.get_current_context())
    if all_pages:
        items = list(client.operations.iterate_async(status=status, limit=limit or 100))
        show_table(items, ASYNC_COLUMNS, caption=f"{len(items)} async jobs")
        return
    listed = client.operations.list_async(limit=limit, status=status, cursor=cursor)
    more = f"next: --cursor {listed.next_cursor}" if listed.next_cursor else None
    show_table(listed.data, ASYNC_COLUMNS, caption=more, raw=listed)


@ops.command(
    epilog="""\b
Example:
  batchops ops limits"""
)
def limits() -> None:
    """The batch limits, allowed methods and paths, and your rate limits (GET /v1/batch/limits)."""
    show_record(make_client(click.get_current_context()).operations.limits(), title="limits")
