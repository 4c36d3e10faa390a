"""What the commands print: the API's JSON with `--json`, else Rich tables and panels on stdout;
one-line errors on stderr; the exit codes."""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn, Optional

import click
from rich import box
from rich.console import Console
from rich.table import Table

from batchops_client.cli.options import state
from batchops_client.errors import BatchopsError, ConfigurationError, WaitTimeout
from batchops_client.models._base import Model

# The exit codes (the root --help lists them).
OK = 0
FAILED = 1  # the batch, job, run or operation ended failed, cancelled or timed out
USAGE = 2  # click's usage errors, missing configuration, an unreadable input file
API_ERROR = 3  # any other API error, the API unreachable included
TIMEOUT = 4  # a --watch / --wait gave up
INTERRUPTED = 130  # Ctrl-C, as shells report a SIGINT

EXIT_CODES_HELP = """\b
Exit codes:
  0  success
  1  the batch, job, run or operation ended failed, cancelled or timed out
     (status --watch, --wait, and status/get of a finished one), or some items were rejected
  2  usage: a bad option, a missing API key or base URL, an unreadable input file
  3  API error: the API refused the call (4xx/5xx) or could not be reached
  4  timeout: --watch / --wait gave up before the end (--timeout)
  130  interrupted (Ctrl-C)"""


def examples(*lines: str) -> str:
    """A group's `--help` epilog: its example command lines, kept as written (click's \\b)."""
    return "\b\nExamples:\n" + "".join(f"  {line}\n" for line in lines)


Column = tuple[str, str]  # (header, key: snake_case attribute, wire key or dotted path)


class InputError(click.ClickException):
    """An input file that cannot be used: exit 2, one line."""

    exit_code = USAGE

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def jsonable(value: Any) -> Any:
    """The API's JSON for a result: a model as the API sent it, lists and dicts recursively."""
    if isinstance(value, Model):
        return value.to_dict()
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def field_of(item: Any, key: str) -> Any:
    """`item`'s `key` (a snake_case attribute or a wire key; dots go deeper), None when absent."""
    for part in key.split("."):
        if item is None:
            return None
        if isinstance(item, Model):
            found = item.get(part)
            if found is None:
                found = getattr(item, part, None)
            item = found
        elif isinstance(item, dict):
            item = item.get(part)
        else:
            item = getattr(item, part, None)
    return item


def text(value: Any, limit: int = 300) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (Model, dict, list, tuple)):
        shown = json.dumps(jsonable(value), separators=(",", ":"), default=str)
        return shown if len(shown) <= limit else shown[: limit - 1] + "…"
    return str(value)


def stdout() -> Console:
    # A new console per print: it resolves sys.stdout now, which tests swap.
    return Console(highlight=False, soft_wrap=False)


def is_json(ctx: Optional[click.Context] = None) -> bool:
    return state(ctx or click.get_current_context()).json_output


def print_json(value: Any) -> None:
    click.echo(json.dumps(jsonable(value), indent=2, ensure_ascii=False, default=str))


def show_record(result: Any, *, title: Optional[str] = None, fields: Optional[Sequence[str]] = None) -> None:
    """One record: its JSON with --json, else a two-column panel of its fields (wire keys)."""
    if is_json():
        print_json(result)
        return
    data = jsonable(result)
    if not isinstance(data, dict):
        stdout().print(text(data), markup=False)
        return
    table = Table(title=title, box=box.ROUNDED, show_header=False, title_justify="left")
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key in fields or list(data):
        if key in data:
            table.add_row(key, text(data[key]))
    stdout().print(table)


def show_table(
    items: Iterable[Any],
    columns: Sequence[Column],
    *,
    title: Optional[str] = None,
    caption: Optional[str] = None,
    raw: Any = None,
) -> None:
    """A list: `raw` (or the items) as JSON with --json, else a table of `columns`."""
    rows = list(items)
    if is_json():
        print_json(rows if raw is None else raw)
        return
    table = Table(
        title=title, caption=caption, box=box.SIMPLE_HEAD, show_edge=False, title_justify="left", caption_justify="left"
    )
    for header, key in columns:
        # Ids stay on one line, so they can be copied from a narrow terminal; other cells fold.
        whole = key == "id" or key.endswith(("_id", "Id"))
        table.add_column(header, overflow="fold", no_wrap=whole, min_width=len(header))
    for item in rows:
        table.add_row(*(text(field_of(item, key), 80) for _, key in columns))
    if not rows:
        table.caption = "(none)" if caption is None else f"(none) {caption}"
    stdout().print(table)


def show_path(target: Path) -> None:
    if is_json():
        print_json({"path": str(target)})
    else:
        click.echo(str(target))


def notice(message: str) -> None:
    """A line for the person at the terminal, on stderr."""
    state(click.get_current_context()).stderr.print(message, markup=False, highlight=False, soft_wrap=True)


def finish(ok: bool, what: str) -> None:
    """Exit 1 (after the result was shown) when what was waited for ended unsuccessfully."""
    if not ok:
        notice(f"{what}")
        raise click.exceptions.Exit(FAILED)


def error_line(error: BaseException) -> str:
    """`error: 404 BATCH_NOT_FOUND: Batch x not found (request abc); details: {...}`."""
    line = f"error: {error}"
    details = getattr(error, "details", None)
    if details:
        line += "; details: " + json.dumps(details, separators=(",", ":"), default=str)
    return line


def exit_code(error: BatchopsError) -> int:
    if isinstance(error, WaitTimeout):
        return TIMEOUT
    if isinstance(error, ConfigurationError):
        return USAGE
    return API_ERROR


def fail(ctx: click.Context, error: Exception, code: Optional[int] = None) -> NoReturn:
    """Report an error in one line on stderr (a traceback too with --debug) and exit: an SDK
    error with its exit code, anything else with `code`."""
    if state(ctx).debug:
        click.echo("".join(traceback.format_exception(type(error), error, error.__traceback__)), err=True, nl=False)
    if isinstance(error, BatchopsError):
        line = error_line(error)
        if isinstance(error, ConfigurationError):
            line += " (on the command line: --api-key KEY, --base-url URL)"
    else:
        line = f"error: {type(error).__name__}: {error}"
    click.echo(line, err=True)
    raise click.exceptions.Exit(exit_code(error) if isinstance(error, BatchopsError) else (code or API_ERROR))
