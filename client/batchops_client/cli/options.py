"""The options every command takes, wherever they stand on the line, and the one place a client
is built from them (`make_client`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import click
import httpx
from rich.console import Console

from batchops_client._client import BatchopsClient
from batchops_client._core import Retry

GLOBAL_HELP = {
    "base_url": "API base URL, e.g. https://abc.execute-api.eu-west-1.amazonaws.com/prod [env: BATCHOPS_BASE_URL]",
    "api_key": "API key (bo_...) [env: BATCHOPS_API_KEY]",
    "json_output": "print the API's JSON on stdout instead of tables",
    "debug": "show tracebacks on errors",
}


@dataclass
class State:
    """What the global options said, shared by every context of one invocation.

    `transport` and `sleep` are for tests: `CliRunner().invoke(cli, args, obj=State(sleep=...))`
    reaches every client the commands build."""

    base_url: Optional[str] = None
    api_key: Optional[str] = None
    json_output: bool = False
    debug: bool = False
    transport: Optional[httpx.BaseTransport] = None
    sleep: Optional[Callable[[float], None]] = None
    # Progress, retry notices and errors: stderr, so that stdout stays the result alone. Rich
    # resolves sys.stderr at each write, so a test runner's swapped stream is honoured.
    stderr: Console = field(default_factory=lambda: Console(stderr=True))
    max_retries: int = 3


def state(ctx: click.Context) -> State:
    found: State = ctx.ensure_object(State)
    return found


def _store(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    # Called on the root group first and on the leaf last, so a leaf's value wins; a flag left
    # off (False) or an option not given (None) never undoes what an earlier position set.
    if value is None or value is False or param.name is None:
        return
    setattr(state(ctx), param.name, value)


def global_params() -> list[click.Parameter]:
    """Fresh copies of the global options, for one command (click binds a parameter to a command)."""
    common: dict[str, Any] = {"expose_value": False, "callback": _store}
    return [
        click.Option(["--base-url", "--api-url", "base_url"], metavar="URL", help=GLOBAL_HELP["base_url"], **common),
        click.Option(["--api-key", "api_key"], metavar="KEY", help=GLOBAL_HELP["api_key"], **common),
        click.Option(["--json", "json_output"], is_flag=True, default=False, help=GLOBAL_HELP["json_output"], **common),
        click.Option(["--debug", "debug"], is_flag=True, default=False, help=GLOBAL_HELP["debug"], **common),
    ]


def duration(seconds: float) -> str:
    """4m59s, 12s, 0.5s, 1h02m03s."""
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def retry_notice(retry: Retry, max_retries: int) -> str:
    """The line shown before a retry wait, e.g.
    `rate limited (429): retrying in 4m59s as the API asked (attempt 1/3)`."""
    status = retry.reason.split(" ", 1)[0]
    if status == "429":
        why = "rate limited (429)"
    elif status.isdigit():
        why = f"API unavailable ({retry.reason})"
    else:
        why = f"connection failed ({retry.reason})"
    asked = " as the API asked" if retry.retry_after else ""
    return f"{why}: retrying in {duration(retry.seconds)}{asked} (attempt {retry.attempt}/{max_retries})"


def make_client(ctx: click.Context) -> BatchopsClient:
    """The client every command calls, built from the global options (the SDK falls back to
    $BATCHOPS_API_KEY / $BATCHOPS_BASE_URL, and raises ConfigurationError, exit 2, without them);
    closed when the command ends."""
    options = state(ctx)

    def on_retry(retry: Retry) -> None:
        # Through the same console as any live progress bar, which prints it above the bar.
        options.stderr.print(retry_notice(retry, options.max_retries), markup=False, highlight=False, soft_wrap=True)

    client = BatchopsClient(
        options.api_key,
        options.base_url,
        max_retries=options.max_retries,
        on_retry=on_retry,
        transport=options.transport,
        sleep=options.sleep,
    )
    return ctx.with_resource(client)
