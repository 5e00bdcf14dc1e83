"""Shared CLI plumbing: consoles, error handling (exit code 2), progress bars."""
from __future__ import annotations

import errno
import functools
import os
import re
import shutil
import signal
import sys

import typer
from rich.console import Console
from rich.markup import escape
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
            _report(e)
            raise typer.Exit(e.exit_code) from None
        except OSError as e:  # permission, full disk, name too long, is-a-directory ...: the same exit-2 path
            err = os_error(e)
            _report(err)
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt as e:
            err_console.print("[bold red]interrupted[/]" + (f": {escape(str(e))}" if str(e) else ""), highlight=False,
                              markup=True, soft_wrap=True)
            raise typer.Exit(130) from None

    return wrapper


def terminate_as_interrupt() -> None:
    """SIGTERM and SIGHUP (a scheduler's time limit, a closed terminal) end a command as Ctrl-C does: its cleanup
    runs (temporary files, worker processes) and it says "interrupted", exit 130, where SIGTERM killed it on the
    spot and its worker processes died on broken pipes, each with a traceback. A signal the caller ignores (nohup's
    SIGHUP) stays ignored."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, handler)


def _report(e: XlingError) -> None:
    # escaped: messages quote paths and log lines, whose brackets rich would read as markup (a log's
    # "[/__w/.../pair.cc:553]" made the report itself fail with a MarkupError)
    err_console.print(f"[bold red]error:[/] {escape(e.render())}", highlight=False, markup=True, soft_wrap=True)


# errno -> (what happened, the fix); {path} and {parent} are filled in
OS_ERRORS = {
    errno.EACCES: ("permission denied", "check the permissions of {parent} (`ls -ld {parent}`), or choose a "
                                        "path you can write"),
    errno.EPERM: ("operation not permitted", "check the permissions of {parent}, or choose another path"),
    errno.ENOSPC: ("no space left on the device", "free space (`df -h {parent}`) or write to another disk; "
                                                  "what this step had written was removed"),
    errno.EDQUOT: ("disk quota exceeded", "free space within your quota (`quota -s`), or write to another disk; "
                                          "what this step had written was removed"),
    errno.ENAMETOOLONG: ("file name too long", "use a shorter name (at most 255 bytes a name)"),
    errno.EISDIR: ("is a directory", "give a file path, not a directory"),
    errno.ENOTDIR: ("a part of the path is a file, not a directory", "check the path: every folder in it "
                                                                      "must be a directory"),
    errno.EROFS: ("read-only file system", "write to a writable disk"),
    errno.ENOENT: ("no such file or directory", "check the path"),
    errno.EEXIST: ("already exists", "choose another path"),
}


def os_error(e: OSError) -> XlingError:
    """An operating-system error as an :class:`XlingError` naming the file and the fix."""
    path = e.filename2 if getattr(e, "filename2", None) is not None else e.filename
    if path is not None:  # an atomic write's temp file (.NAME.XXXXXXXX.tmp): name the output itself
        m = re.match(r"^\.(.+)\.[A-Za-z0-9_]+\.tmp$", os.path.basename(os.fsdecode(path)))
        path = os.path.join(os.path.dirname(os.fsdecode(path)), m.group(1)) if m else path
    what, fix = OS_ERRORS.get(e.errno, (e.strerror or str(e), "check the path, its permissions and the disk"))
    if path is None:  # (the libraries' write errors name no file; xling.outputs.writing adds the output's)
        return XlingError(what, fix=fix.replace("`df -h {parent}`", "`df -h` shows each disk's free space"))
    parent = os.path.dirname(os.path.abspath(os.fsdecode(path)))
    while not os.path.isdir(parent) and os.path.dirname(parent) != parent:  # removed with the failed output
        parent = os.path.dirname(parent)
    if getattr(e, "needed", None):  # the output's size, where the command knows it (xling.outputs.needing)
        what += f": it needs about {_mib(e.needed)}, {_mib(shutil.disk_usage(parent).free)} free there"
    return XlingError(what, file=os.fsdecode(path), fix=fix.format(parent=parent))


def _mib(n: int) -> str:
    return f"{n / 2 ** 20:,.1f} MiB"


def progress(transient: bool = False) -> Progress:
    """A rich progress bar; quiet when stderr is not a terminal (CI logs stay readable)."""
    return Progress(SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=err_console, transient=transient, disable=not sys.stderr.isatty())


def renamed(old_flag: str, old_value, new_flag: str, new_value, default=None):
    """An option's old spelling (``--nnodes`` for ``--nodes``): still accepted, with a one-line notice; given
    beside the new spelling with another value, refused. Returns the value to use."""
    if old_value is None:
        return new_value
    err_console.print(f"[yellow]note:[/] {old_flag} is deprecated: use {new_flag}", highlight=False)
    if new_value is not None and new_value != default and new_value != old_value:
        raise XlingError(f"{old_flag} {old_value} and {new_flag} {new_value} disagree",
                         fix=f"give {new_flag} only ({old_flag} is its old spelling)")
    return old_value
