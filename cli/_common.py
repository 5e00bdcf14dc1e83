"""Shared CLI plumbing: consoles, error handling (exit code 2), progress bars."""
from __future__ import annotations

import functools
import sys

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from xling.errors import XlingError

# Tables stay readable in logs and captured output, where rich would otherwise assume 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def guarded(fn):
    """Turn :class:`XlingError` into one clear message on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except XlingError as e:
            err_console.print(f"[bold red]error:[/] {e.render()}", highlight=False, markup=True,
                              soft_wrap=True)
            raise typer.Exit(e.exit_code) from None

    return wrapper


def progress(transient: bool = False) -> Progress:
    """A rich progress bar; quiet when stderr is not a terminal (CI logs stay readable)."""
    return Progress(SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=err_console, transient=transient, disable=not sys.stderr.isatty())
