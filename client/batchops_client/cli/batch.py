"""`batchops batch ...`: the Batches API (`/v1/batches`)."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Optional

import click

from batchops_client.cli._base import BatchopsGroup
from batchops_client.cli._input import JSON_FILE, read_object
from batchops_client.cli.options import make_client, state
from batchops_client.cli.output import (
    InputError,
    examples,
    finish,
    notice,
    show_path,
    show_record,
    show_table,
)
from batchops_client.cli.progress import Counts, watch_with_progress
from batchops_client.models.batches import Batch, BatchResults

BATCH_FIELDS = {"name", "jobs", "description", "type", "priority", "options"}
STATUSES = ("queued", "running", "completed", "failed", "cancelled", "timed_out")
LIST_COLUMNS = [
    ("ID", "batch_id"),
    ("NAME", "name"),
    ("STATUS", "status"),
    ("PRIORITY", "priority"),
    ("%", "progress.percentage"),
    ("JOBS", "jobs.total"),
    ("FAILED", "jobs.failed"),
    ("CREATED", "created_at"),
]


# What GET /v1/batches sorts by (ascending; a leading - for descending).
SORT_FIELDS = ("created_at", "started_at", "priority", "name")


@click.group(
    cls=BatchopsGroup,
    epilog=examples(
        "batchops batch create --config batch.json",
        "batchops batch status batch_abc123 --watch",
        "batchops batch results batch_abc123 --format xlsx --output ./reports/",
        'batchops batch cancel batch_abc123 --reason "Emergency deployment"',
    ),
)
def batch() -> None:
    """Batches of jobs: create, watch, fetch results, cancel, retry."""


@batch.command(
    epilog="""\b
Example:
  batchops batch create --config batch.json
  echo '{"name": "Q3", "jobs": [{"id": "j1", "type": "analysis", "config": {}}]}' | batchops batch create --config -"""
)
@click.option(
    "--config",
    "config",
    type=JSON_FILE,
    required=True,
    help="JSON file {name, jobs, description?, type?, priority?, options?}; - for stdin",
)
@click.option("--idempotency-key", help="Idempotency-Key header (default: a new one; retries repeat it)")
def create(config: IO[str], idempotency_key: Optional[str]) -> None:
    """Create a batch (POST /v1/batches). Its signing secret is shown only here."""
    body = read_object(config)
    missing = [name for name in ("name", "jobs") if name not in body]
    unknown = sorted(set(body) - BATCH_FIELDS)
    if missing or unknown:
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unknown fields {', '.join(unknown)} (allowed: {', '.join(sorted(BATCH_FIELDS))})"] if unknown else []
        )
        raise InputError(f"{config.name}: {'; '.join(problems)}")
    client = make_client(click.get_current_context())
    created = client.batches.create(
        body["name"],
        body["jobs"],
        description=body.get("description"),
        type=body.get("type"),
        priority=body.get("priority"),
        options=body.get("options"),
        idempotency_key=idempotency_key,
    )
    show_record(created, title=f"batch {created.batch_id} created")


def batch_counts(item: Batch) -> Counts:
    """(done, total, failed, status) of a batch's jobs."""
    jobs = item.jobs
    done = jobs.completed + jobs.failed + jobs.cancelled + jobs.timed_out
    return done, jobs.total, jobs.failed + jobs.timed_out, item.status


@batch.command(
    epilog="""\b
Example:
  batchops batch status batch_abc123
  batchops batch status batch_abc123 --watch --interval 5 --timeout 3600"""
)
@click.argument("batch_id")
@click.option("--watch", is_flag=True, help="poll until the batch ends, with a live progress bar on stderr")
@click.option(
    "--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True, help="seconds between polls"
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="give up watching after this many seconds (exit 4)",
)
@click.option("--include-jobs", is_flag=True, help="include each job's status")
def status(batch_id: str, watch: bool, interval: float, timeout: float, include_jobs: bool) -> None:
    """A batch's status, progress and job counts (GET /v1/batches/{id}). Exits 1 when the batch
    ended failed, cancelled or timed out."""
    ctx = click.get_current_context()
    client = make_client(ctx)
    if watch:
        result = watch_with_progress(
            state(ctx).stderr,
            f"batch {batch_id}",
            lambda on_status: client.batches.wait_for_completion(
                batch_id, poll_interval=interval, timeout=timeout, on_status=on_status
            ),
            batch_counts,
        )
        if include_jobs:
            result = client.batches.get_status(batch_id, include_jobs=True)
    else:
        result = client.batches.get_status(batch_id, include_jobs=include_jobs)
    show_record(result, title=f"batch {result.batch_id}")
    finish(not result.finished or result.succeeded, f"batch {result.batch_id} ended {result.status}")


@batch.command(
    "list",
    epilog="""\b
Example:
  batchops batch list --status running
  batchops batch list --all --json | jq -r '.[].batch_id'""",
)
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--type", "type_", metavar="TYPE", help="only batches of this type")
@click.option("--priority", type=click.Choice(["low", "medium", "high", "urgent"]))
@click.option("--page", type=click.IntRange(min=1))
@click.option("--per-page", type=click.IntRange(min=1))
@click.option(
    "--sort",
    type=click.Choice(
        [f"{sign}{key}" for key in ("created_at", "started_at", "priority", "name") for sign in ("", "-")]
    ),
    help="order by a field; a leading - for descending (the API's default: -created_at)",
)
@click.option("--all", "all_pages", is_flag=True, help="every page (--json: one array)")
def list_batches(
    status: Optional[str],
    type_: Optional[str],
    priority: Optional[str],
    page: Optional[int],
    per_page: Optional[int],
    sort: Optional[str],
    all_pages: bool,
) -> None:
    """The workspace's batches, newest first (GET /v1/batches)."""
    client = make_client(click.get_current_context())
    if all_pages:
        items = list(
            client.batches.iterate(status=status, type=type_, priority=priority, per_page=per_page or 100, sort=sort)
        )
        show_table(items, LIST_COLUMNS, caption=f"{len(items)} batches")
        return
    listed = client.batches.list(status=status, type=type_, priority=priority, page=page, per_page=per_page, sort=sort)
    paging = listed.pagination
    show_table(
        listed.data,
        LIST_COLUMNS,
        caption=f"page {paging.page} of {paging.total_pages} ({paging.total_items} batches)",
        raw=listed,
    )


@batch.command(
    epilog="""\b
Example:
  batchops batch results batch_abc123
  batchops batch results batch_abc123 --format xlsx --output reports/ --open"""
)
@click.argument("batch_id")
@click.option(
    "--format", "file_format", type=click.Choice(["json", "csv", "xlsx", "pdf"]), default="json", show_default=True
)
@click.option(
    "--output",
    type=click.Path(file_okay=True, dir_okay=True, writable=True),
    help="folder for <batch_id>.<format> (default: json is shown, other formats go to .)",
)
@click.option("--open", "open_file", is_flag=True, help="open the written file with the platform's default application")
@click.option("--include-raw", is_flag=True, help="each job's raw output too")
@click.option("--jobs", help="only these jobs (comma-separated ids)")
def results(
    batch_id: str, file_format: str, output: Optional[str], open_file: bool, include_raw: bool, jobs: Optional[str]
) -> None:
    """A batch's results (GET /v1/batches/{id}/results): shown as JSON, or written to
    <output>/<batch_id>.<format>, whose path is printed."""
    client = make_client(click.get_current_context())
    if output is None and (file_format != "json" or open_file):
        output = "."
    result = client.batches.get_results(batch_id, format=file_format, include_raw=include_raw, jobs=jobs, output=output)
    if isinstance(result, BatchResults):
        show_record(result, title=f"results of batch {batch_id}")
        return
    if isinstance(result, Path):  # always, for files: `output` is given above
        show_path(result)
        if open_file:
            click.launch(str(result))


@batch.command(
    epilog="""\b
Example:
  batchops batch cancel batch_abc123 --reason "wrong input"
  batchops batch cancel batch_abc123 --keep-running"""
)
@click.argument("batch_id")
@click.option("--reason", help="recorded with the cancellation")
@click.option("--keep-running", is_flag=True, help="let running jobs finish (only queued ones are cancelled)")
def cancel(batch_id: str, reason: Optional[str], keep_running: bool) -> None:
    """Cancel a queued or running batch (DELETE /v1/batches/{id})."""
    client = make_client(click.get_current_context())
    cancelled = client.batches.cancel(batch_id, reason=reason, cancel_running_jobs=False if keep_running else None)
    show_record(cancelled, title=f"batch {batch_id} cancelled")


@batch.command(
    epilog="""\b
Example:
  batchops batch retry batch_abc123
  batchops batch retry batch_abc123 --job-id job_1 --job-id job_7 --max-retries 2"""
)
@click.argument("batch_id")
@click.option("--job-id", "job_ids", multiple=True, help="retry only this failed job (repeatable; default: all failed)")
@click.option("--max-retries", type=click.IntRange(min=0))
@click.option("--retry-delay-minutes", type=click.FloatRange(min=0))
@click.option("--idempotency-key", help="Idempotency-Key header (default: a new one)")
def retry(
    batch_id: str,
    job_ids: tuple[str, ...],
    max_retries: Optional[int],
    retry_delay_minutes: Optional[float],
    idempotency_key: Optional[str],
) -> None:
    """Run a finished batch's failed jobs again as a new batch (POST /v1/batches/{id}/retry)."""
    client = make_client(click.get_current_context())
    retried = client.batches.retry(
        batch_id,
        job_ids=list(job_ids) or None,
        max_retries=max_retries,
        retry_delay_minutes=retry_delay_minutes,
        idempotency_key=idempotency_key,
    )
    show_record(retried, title=f"batch {batch_id} retried")
    notice(f"new batch: {retried.new_batch_id} (watch it: batchops batch status {retried.new_batch_id} --watch)")
