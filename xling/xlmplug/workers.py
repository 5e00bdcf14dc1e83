"""Loader workers that outlive a crashed trainer stay quiet.

A trainer killed outright (the kernel's out-of-memory killer, ``kill -9``, a lost node) leaves its data-loader
workers (forked processes of torch's ``DataLoader``) behind for a moment: torch's watchdog ends them within a few
seconds. Meanwhile a worker that was handing a batch over (``multiprocessing.resource_sharer``'s thread, which
passes shared-memory file descriptors to the trainer) reads end-of-file from the dead trainer and printed a
traceback into ``train.log``, whose tail is the launcher's error message: a reader saw an ``EOFError`` in
multiprocessing as the cause of the failure, not the kill.

:func:`install` makes every process forked from the trainer swallow a broken-connection error of a thread
(``EOFError``, ``ConnectionError``) when, and only when, the process that forked it has gone; any other error,
or one while the trainer lives, is printed as before.
"""
from __future__ import annotations

import os
import threading
import time

PARENT_GRACE = 1.0  # seconds a worker waits to see its parent gone after a broken connection


def parent_gone(parent: int, grace: float = PARENT_GRACE) -> bool:
    """Whether the process ``parent`` (the one that forked this one) has exited, waiting up to ``grace`` seconds:
    a dying parent closes its connections just before this process is handed to another parent."""
    deadline = time.monotonic() + grace
    while os.getppid() == parent:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def quiet_orphan_hook(parent: int, original=threading.excepthook):
    """A ``threading.excepthook`` that drops a broken-connection error once ``parent`` has gone."""
    def hook(args):
        if args.exc_type is not None and issubclass(args.exc_type, (EOFError, ConnectionError)) \
                and parent_gone(parent):
            return
        original(args)

    hook.xling_original = original
    return hook


def _after_fork_in_child() -> None:
    # a grandchild inherits its parent's hook: wrap what that one wrapped, for the new parent
    original = getattr(threading.excepthook, "xling_original", threading.excepthook)
    threading.excepthook = quiet_orphan_hook(os.getppid(), original)


_installed = False


def install() -> None:
    """Quiet the threads of every process this one forks from now on (idempotent)."""
    global _installed
    if not _installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _installed = True
