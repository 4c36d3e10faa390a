"""`batchops jobs ...`, `batchops runs ...`, `batchops batch-operations ...`: jobs, their runs,
and the batch operations bulk triggers create (`/v1/jobs`, `/v1/runs`, `/v1/batch-operations`)."""

from __future__ import annotations

from typing import IO, Any, Callable, Optional

import click

from batchops_client._client import BatchopsClient
from batchops_client.cli._base import BatchopsGroup
from batchops_client.cli._input import JSON_FILE, parse_json_option, read_json, read_object
from batchops_client.cli.ops import wait_options
from batchops_client.cli.options import make_client, state
from batchops_client.cli.output import InputError, examples, finish, notice, show_record, show_table
from batchops_client.cli.progress import Counts, watch_with_progress
from batchops_client.models.jobs import BatchOperation, Run

JOB_COLUMNS = [
    ("ID", "id"),
    ("NAME", "name"),
    ("SLUG", "slug"),
    ("ENDPOINT", "endpoint_url"),
    ("ENABLED", "enabled"),
    ("CREATED", "created_at"),
]
RUN_COLUMNS = [
    ("ID", "id"),
    ("JOB", "job_id"),
    ("STATUS", "status"),
    ("ATTEMPT", "attempt"),
    ("BATCH", "batch_id"),
    ("CREATED", "created_at"),
    ("FINISHED", "finished_at"),
]
OPERATION_COLUMNS = [
    ("ID", "id"),
    ("JOB", "job_id"),
    ("ITEMS", "item_count"),
    ("CREATED RUNS", "created_count"),
    ("CREATED", "created_at"),
    ("FINISHED", "finished_at"),
]
RUN_STATUSES = ("queued", "delayed", "executing", "completed", "failed", "canceled", "timed_out", "expired")


def _client() -> BatchopsClient:
    return make_client(click.get_current_context())


# --- jobs ---------------------------------------------------------------------------------------


@click.group(
    cls=BatchopsGroup,
    epilog=examples(
        "batchops jobs create job.json",
        "batchops jobs trigger job_123 --payload '{\"n\": 1}' --wait",
        "batchops jobs trigger-bulk job_123 items.json --wait",
    ),
)
def jobs() -> None:
    """Jobs (an endpoint batchops calls): create, change, trigger one run or many."""


@jobs.command(
    epilog="""\b
Example:
  batchops jobs create job.json
job.json: {"name": "resize", "endpoint_url": "https://example.com/hooks/resize", "max_attempts": 3}"""
)
@click.argument("file", type=JSON_FILE)
@click.option("--idempotency-key", help="Idempotency-Key header (default: a new one)")
def create(file: IO[str], idempotency_key: Optional[str]) -> None:
    """Register a job (POST /v1/jobs). Its signing secret is shown only here."""
    job = _client().jobs.create(read_object(file), idempotency_key=idempotency_key)
    show_record(job, title=f"job {job.id} created")


@jobs.command(
    epilog="""\b
Example:
  batchops jobs get job_123"""
)
@click.argument("job_id")
def get(job_id: str) -> None:
    """One job (GET /v1/jobs/{id})."""
    show_record(_client().jobs.get(job_id), title=f"job {job_id}")


@jobs.command(
    "list",
    epilog="""\b
Example:
  batchops jobs list --limit 20
  batchops jobs list --all --json""",
)
@click.option("--limit", type=click.IntRange(1, 100), help="page size (50 unless given)")
@click.option("--cursor", help="the previous page's next_cursor")
@click.option("--slug", help="only the job with this slug")
@click.option("--all", "all_pages", is_flag=True, help="every page")
def list_jobs(limit: Optional[int], cursor: Optional[str], slug: Optional[str], all_pages: bool) -> None:
    """The workspace's jobs (GET /v1/jobs)."""
    client = _client()
    if all_pages:
        items = list(client.jobs.iterate(slug=slug, limit=limit or 100))
        show_table(items, JOB_COLUMNS, caption=f"{len(items)} jobs")
        return
    listed = client.jobs.list(limit=limit, cursor=cursor, slug=slug)
    more = f"next: --cursor {listed.next_cursor}" if listed.has_more and listed.next_cursor else None
    show_table(listed.data, JOB_COLUMNS, caption=more, raw=listed)


@jobs.command(
    epilog="""\b
Example:
  batchops jobs update job_123 changes.json
changes.json: {"max_attempts": 5, "description": null}  (only the fields given change)"""
)
@click.argument("job_id")
@click.argument("file", type=JSON_FILE)
def update(job_id: str, file: IO[str]) -> None:
    """Change a job (PATCH /v1/jobs/{id}): only the fields in FILE change."""
    show_record(_client().jobs.update(job_id, read_object(file)), title=f"job {job_id} updated")


@jobs.command(
    epilog="""\b
Example:
  batchops jobs delete job_123"""
)
@click.argument("job_id")
def delete(job_id: str) -> None:
    """Delete a job (DELETE /v1/jobs/{id}); its runs are kept."""
    _client().jobs.delete(job_id)
    show_record({"deleted": job_id})


def run_counts(run: Run) -> Counts:
    return (1 if run.finished else 0), 1, (1 if run.finished and not run.succeeded else 0), run.status


def _wait_run(run_id: str, interval: float, timeout: float) -> Run:
    ctx = click.get_current_context()
    client = make_client(ctx)
    return watch_with_progress(
        state(ctx).stderr,
        f"run {run_id}",
        lambda on_status: client.runs.wait(run_id, poll_interval=interval, timeout=timeout, on_status=on_status),
        run_counts,
    )


def _end_run(run: Run) -> None:
    show_record(run, title=f"run {run.id}")
    finish(not run.finished or run.succeeded, f"run {run.id} ended {run.status}")


@jobs.command(
    epilog="""\b
Example:
  batchops jobs trigger job_123 --payload '{"image": "s3://bucket/a.png"}' --wait
  batchops jobs trigger job_123 --idempotency-key order-42 --priority 7"""
)
@click.argument("job_id")
@click.option("--payload", help="the run's payload, as JSON ({} unless given)")
@click.option("--priority", type=click.IntRange(0, 10), help="0-10; 5 and above go ahead of any backlog")
@click.option("--scheduled-at", help="RFC 3339 time to run at")
@click.option("--idempotency-key", help="the run's key: a trigger with a key a run already has answers that run")
@click.option("--wait", is_flag=True, help="wait for the run to end, with a live status line")
@wait_options
def trigger(
    job_id: str,
    payload: Optional[str],
    priority: Optional[int],
    scheduled_at: Optional[str],
    idempotency_key: Optional[str],
    wait: bool,
    interval: float,
    timeout: float,
) -> None:
    """Create one run of a job (POST /v1/jobs/{id}/trigger). With --wait, exits 1 when the run
    failed, was canceled, timed out or expired."""
    triggered = _client().jobs.trigger(
        job_id,
        payload=parse_json_option(payload, "--payload"),
        priority=priority,
        scheduled_at=scheduled_at,
        idempotency_key=idempotency_key,
    )
    if not wait:
        show_record(triggered, title=f"run {triggered.id} {triggered.status}")
        return
    _end_run(_wait_run(triggered.id, interval, timeout))


def _items(source: IO[str]) -> list[Any]:
    value = read_json(source)
    if isinstance(value, dict) and isinstance(value.get("items"), list):
        value = value["items"]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InputError(f"{source.name}: expected a JSON array of items or an object with `items`")
    return value


def operation_counts(client: BatchopsClient) -> Callable[[BatchOperation], Counts]:
    """Counts for a batch operation's bar: its runs' statuses (the record itself has no counts)."""

    def counts(operation: BatchOperation) -> Counts:
        runs = client.batch_operations.run_counts(operation.id)
        status = "done" if operation.finished else "running"
        return runs.finished, operation.created_count or runs.total, runs.unsuccessful, status

    return counts


def _wait_operation(operation_id: str, interval: float, timeout: float) -> BatchOperation:
    ctx = click.get_current_context()
    client = make_client(ctx)
    return watch_with_progress(
        state(ctx).stderr,
        f"batch operation {operation_id}",
        lambda on_status: client.batch_operations.wait(
            operation_id, poll_interval=interval, timeout=timeout, on_status=on_status
        ),
        operation_counts(client),
    )


def _end_operation(operation: BatchOperation) -> None:
    """Show it; exit 1 when it finished with runs that did not complete."""
    show_record(operation, title=f"batch operation {operation.id}")
    if operation.finished:
        runs = _client().batch_operations.run_counts(operation.id)
        finish(
            runs.unsuccessful == 0,
            f"batch operation {operation.id}: {runs.unsuccessful} of {runs.total} runs did not complete",
        )


@jobs.command(
    "trigger-bulk",
    epilog="""\b
Example:
  batchops jobs trigger-bulk job_123 items.json --wait
items.json: [{"payload": {...}, "idempotency_key": "order-1"}, ...] (at most 500) or {"items": [...]}""",
)
@click.argument("job_id")
@click.argument("file", type=JSON_FILE)
@click.option("--idempotency-key", help="Idempotency-Key header of the request (items carry their own run keys)")
@click.option("--wait", is_flag=True, help="wait until every run ended, with a live progress bar")
@wait_options
def trigger_bulk(
    job_id: str, file: IO[str], idempotency_key: Optional[str], wait: bool, interval: float, timeout: float
) -> None:
    """Create many runs and their batch operation (POST /v1/jobs/{id}/trigger-bulk). With --wait,
    exits 1 when some runs did not complete."""
    bulk = _client().jobs.trigger_bulk(job_id, _items(file), idempotency_key=idempotency_key)
    if not wait:
        show_record(bulk, title=f"batch operation {bulk.batch_id}: {bulk.created} of {bulk.total} runs created")
        notice(f"follow it: batchops batch-operations wait {bulk.batch_id}")
        return
    _end_operation(_wait_operation(bulk.batch_id, interval, timeout))


# --- runs ---------------------------------------------------------------------------------------


@click.group(
    cls=BatchopsGroup,
    epilog=examples("batchops runs list --job-id job_123 --status failed", "batchops runs wait run_123"),
)
def runs() -> None:
    """Runs of jobs: get one, list them, wait for one."""


@runs.command(
    "get",
    epilog="""\b
Example:
  batchops runs get run_123""",
)
@click.argument("run_id")
def get_run(run_id: str) -> None:
    """One run: status, attempts, result or error (GET /v1/runs/{id}). Exits 1 when it ended
    unsuccessfully."""
    _end_run(_client().runs.get(run_id))


@runs.command(
    "list",
    epilog="""\b
Example:
  batchops runs list --job-id job_123 --status failed
  batchops runs list --batch-id bop_123 --all --json""",
)
@click.option("--job-id", help="only this job's runs")
@click.option("--batch-id", help="only this batch operation's runs")
@click.option("--status", type=click.Choice(RUN_STATUSES))
@click.option("--limit", type=click.IntRange(1, 100), help="page size (50 unless given)")
@click.option("--cursor", help="the previous page's next_cursor")
@click.option("--all", "all_pages", is_flag=True, help="every page")
def list_runs(
    job_id: Optional[str],
    batch_id: Optional[str],
    status: Optional[str],
    limit: Optional[int],
    cursor: Optional[str],
    all_pages: bool,
) -> None:
    """Runs, newest first (GET /v1/runs)."""
    client = _client()
    if all_pages:
        items = list(client.runs.iterate(job_id=job_id, batch_id=batch_id, status=status, limit=limit or 100))
        show_table(items, RUN_COLUMNS, caption=f"{len(items)} runs")
        return
    listed = client.runs.list(job_id=job_id, batch_id=batch_id, status=status, limit=limit, cursor=cursor)
    more = f"next: --cursor {listed.next_cursor}" if listed.has_more and listed.next_cursor else None
    show_table(listed.data, RUN_COLUMNS, caption=more, raw=listed)


@runs.command(
    "wait",
    epilog="""\b
Example:
  batchops runs wait run_123 --timeout 300""",
)
@click.argument("run_id")
@wait_options
def wait_run(run_id: str, interval: float, timeout: float) -> None:
    """Wait for a run to end (live status on stderr). Exits 1 when it failed, was canceled,
    timed out or expired; 4 when --timeout passed first."""
    _end_run(_wait_run(run_id, interval, timeout))


# --- batch operations ---------------------------------------------------------------------------


@click.group(
    "batch-operations",
    cls=BatchopsGroup,
    epilog=examples("batchops batch-operations list", "batchops batch-operations wait bop_123"),
)
def batch_operations() -> None:
    """The batch operations bulk triggers create (jobs trigger-bulk): get, list, wait."""


@batch_operations.command(
    "get",
    epilog="""\b
Example:
  batchops batch-operations get bop_123""",
)
@click.argument("operation_id")
def get_operation(operation_id: str) -> None:
    """One batch operation (GET /v1/batch-operations/{id}). Once finished, exits 1 when some of
    its runs did not complete."""
    _end_operation(_client().batch_operations.get(operation_id))


@batch_operations.command(
    "list",
    epilog="""\b
Example:
  batchops batch-operations list --all""",
)
@click.option("--limit", type=click.IntRange(1, 100), help="page size (50 unless given)")
@click.option("--cursor", help="the previous page's next_cursor")
@click.option("--all", "all_pages", is_flag=True, help="every page")
def list_operations(limit: Optional[int], cursor: Optional[str], all_pages: bool) -> None:
    """Bulk-trigger batch operations, newest first (GET /v1/batch-operations)."""
    client = _client()
    if all_pages:
        items = list(client.batch_operations.iterate(limit=limit or 100))
        show_table(items, OPERATION_COLUMNS, caption=f"{len(items)} batch operations")
        return
    listed = client.batch_operations.list(limit=limit, cursor=cursor)
    more = f"next: --cursor {listed.next_cursor}" if listed.has_more and listed.next_cursor else None
    show_table(listed.data, OPERATION_COLUMNS, caption=more, raw=listed)


@batch_operations.command(
    "wait",
    epilog="""\b
Example:
  batchops batch-operations wait bop_123 --interval 5""",
)
@click.argument("operation_id")
@wait_options
def wait_operation(operation_id: str, interval: float, timeout: float) -> None:
    """Wait until every run of a batch operation ended, with a live progress bar (done/total,
    failed, rate, ETA). Exits 1 when some runs did not complete; 4 on --timeout."""
    _end_operation(_wait_operation(operation_id, interval, timeout))
