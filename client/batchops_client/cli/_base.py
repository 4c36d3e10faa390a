"""The click classes every batchops command is made of: the global options on each command and
group, and SDK errors turned into one line and an exit code."""

from __future__ import annotations

from typing import Any

import click

from batchops_client.cli.options import global_params
from batchops_client.cli.output import API_ERROR, INTERRUPTED, USAGE, fail
from batchops_client.errors import BatchopsError

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class BatchopsCommand(click.Command):
    """A leaf command: it takes the global options too (its values win over the root's)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", CONTEXT_SETTINGS)
        super().__init__(*args, **kwargs)
        self.params.extend(global_params())


class BatchopsGroup(click.Group):
    """A group whose commands and subgroups are batchops commands; the root one reports SDK errors."""

    command_class = BatchopsCommand
    group_class = type  # subgroups: this class too

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", CONTEXT_SETTINGS)
        super().__init__(*args, **kwargs)
        self.params.extend(global_params())

    def invoke(self, ctx: click.Context) -> Any:
        if ctx.parent is not None:
            return super().invoke(ctx)
        try:
            return super().invoke(ctx)
        except BatchopsError as error:
            fail(ctx, error)
        except click.exceptions.ClickException:
            raise  # usage errors: click prints them and exits 2
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            # Ctrl-C while watching: 130 as shells report SIGINT, not 1 ("it ended failed").
            click.echo("interrupted", err=True)
            raise click.exceptions.Exit(INTERRUPTED) from None
        except (OSError, ValueError, TypeError) as error:
            # A file that cannot be read or written here, or input the SDK refused before sending
            # (an event above the size limit, an operation that is not an object): the command
            # line's fault, not the API's (the SDK's own errors, answers included, came above).
            fail(ctx, error, code=USAGE)
        except Exception as error:  # noqa: BLE001 - anything else is still one line, never a traceback
            fail(ctx, error, code=API_ERROR)
