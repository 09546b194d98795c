"""A rich progress bar for the management commands: drawn on stderr when it is a
terminal, silent otherwise (cron jobs, pipes, CI logs get only the summary line)."""

import sys
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)


@contextmanager
def progress_bar(description: str, total: int | None, *, stream=None):
    """Yields `advance(n)`; the bar shows only when `stream` (stderr) is a terminal."""
    stream = stream or sys.stderr
    quiet = not (hasattr(stream, "isatty") and stream.isatty())
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=Console(file=stream),
        disable=quiet,
    )
    with progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)
