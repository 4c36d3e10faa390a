"""`batchops`: the batchops API from the command line, a few lines over the SDK per command."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Optional

import click

from batchops_client._version import __version__
from batchops_client.cli._base import BatchopsGroup
from batchops_client.cli.batch import batch
from batchops_client.cli.events import events
from batchops_client.cli.jobs import batch_operations, jobs, runs
from batchops_client.cli.ops import ops
from batchops_client.cli.options import State, make_client
from batchops_client.cli.output import EXIT_CODES_HELP
from batchops_client.cli.track import track
from batchops_client.cli.webhooks import webhooks

__all__ = ["State", "cli", "main", "make_client"]


@click.group(
    cls=BatchopsGroup,
    epilog=f"""\b
Examples:
  export BATCHOPS_BASE_URL=http://127.0.0.1:3000 BATCHOPS_API_KEY=bo_...
  batchops batch create --config batch.json --json
  batchops batch status batch_abc123 --watch
  batchops batch list --status failed
  batchops ops run operations.json --async --wait
  batchops jobs trigger-bulk job_123 items.json --wait
  batchops track events.ndjson

Global options (--base-url/--api-url, --api-key, --json, --debug) go before or after the
subcommand; `batchops COMMAND --help` shows each command's options and an example.

{EXIT_CODES_HELP}""",
)
@click.version_option(__version__, "--version", "-V", prog_name="batchops", message="%(prog)s %(version)s")
def cli() -> None:
    """batchops: batches, operations, event log, jobs and runs, tracking and webhooks of the
    batchops API. Human output is tables on stdout; --json prints the API's JSON instead.
    Progress, retry notices and errors go to stderr."""


for command in (batch, ops, events, jobs, runs, batch_operations, track, webhooks):
    cli.add_command(command)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """The `batchops` entry point."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="batchops")
    except BrokenPipeError:
        # The reader went away (`batchops batch list | head -1`): the Python docs' recipe, so
        # that the interpreter's last flush of stdout does not fail again with a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
