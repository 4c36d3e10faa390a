"""A live progress bar on stderr for --watch / --wait: done/total, failed, items/s and an ETA
that moves with the measured rate, redrawn in place (one line, not one per poll)."""

from __future__ import annotations

from types import TracebackType
from typing import Callable, Optional, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

T = TypeVar("T")


class RateColumn(ProgressColumn):
    """Items per second, from Rich's moving window of progress samples."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("- items/s" if speed is None else f"{speed:.1f} items/s", style="progress.data.speed")


class LiveProgress:
    """`with LiveProgress(console, "batch b_1") as bar: ... on_status=lambda s: bar.update(...)`."""

    def __init__(self, console: Console, label: str) -> None:
        self.label = label
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            RateColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            console=console,
            # The rate (and so the ETA) over the last two minutes of polls.
            speed_estimate_period=120.0,
        )
        self.task: Optional[TaskID] = None

    def __enter__(self) -> LiveProgress:
        self.progress.start()
        return self

    def __exit__(
        self,
        kind: Optional[type[BaseException]],
        error: Optional[BaseException],
        trace: Optional[TracebackType],
    ) -> None:
        self.progress.stop()

    def update(self, *, done: int, total: Optional[int], failed: int = 0, status: str = "") -> None:
        description = f"{self.label} {status}".strip()
        if self.task is None:
            # Start at what is already done, so that it does not count as speed.
            self.task = self.progress.add_task(description, total=total or None, completed=done, failed=failed)
            return
        self.progress.update(self.task, completed=done, total=total or None, failed=failed, description=description)


Counts = tuple[int, Optional[int], int, str]  # done, total (None: unknown), failed, status


def watch_with_progress(
    console: Console,
    label: str,
    wait: Callable[[Callable[[T], None]], T],
    counts: Callable[[T], Counts],
) -> T:
    """Run `wait(on_status)` (an SDK wait/wait_for_completion call) with a live bar fed by each poll."""
    with LiveProgress(console, label) as bar:

        def on_status(item: T) -> None:
            done, total, failed, status = counts(item)
            bar.update(done=done, total=total, failed=failed, status=status)

        return wait(on_status)
