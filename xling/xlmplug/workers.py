"""Loader workers that outlive a crashed trainer stay quiet.

A trainer killed outright (the kernel's out-of-memory killer, ``kill -9``, a lost node) leaves its data-loader
workers (forked processes of torch's ``DataLoader``) behind for a moment: torch's watchdog ends them within a few
seconds. Meanwhile a worker that was handing a batch over (``multiprocessing.resource_sharer``'s thread, which
passes shared-memory file descriptors to the trainer) reads end-of-file from the dead trainer and printed a
traceback into ``train.log``, whose tail is the launcher's error message: a reader saw an ``EOFError`` in
multiprocessing as the cause of the failure, not the kill.

:func:`install` makes every process forked from the trainer drop a broken-connection error (``EOFError``,
``ConnectionError``) reported through ``sys.excepthook`` (what ``resource_sharer`` calls) or
``threading.excepthook`` (a thread's uncaught error) when, and only when, the process that forked it has gone;
any other error, or one while the trainer lives, is printed as before.
"""
from __future__ import annotations

import os
import sys
import threading
import time

PARENT_GRACE = 1.0  # seconds a worker waits to see its parent gone after a broken connection
BROKEN = (EOFError, ConnectionError)


def parent_gone(parent: int) -> bool:
    """Whether the process ``parent`` (the one that forked this one) has exited, waiting up to
    :data:`PARENT_GRACE` seconds: a dying parent closes its connections just before this process is handed to
    another parent."""
    deadline = time.monotonic() + PARENT_GRACE
    while os.getppid() == parent:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def orphan_broken(exc_type, parent: int) -> bool:
    """Whether an error of ``exc_type`` is a broken connection of a process whose parent ``parent`` has gone."""
    return isinstance(exc_type, type) and issubclass(exc_type, BROKEN) and parent_gone(parent)


def quiet_thread_hook(parent: int, original):
    """A ``threading.excepthook`` (one ``args`` record) that drops a broken connection once ``parent`` has gone."""
    def hook(args):
        if not orphan_broken(args.exc_type, parent):
            original(args)

    hook.xling_original = original
    return hook


def quiet_sys_hook(parent: int, original):
    """A ``sys.excepthook`` (type, value, traceback) that drops a broken connection once ``parent`` has gone."""
    def hook(exc_type, value, tb):
        if not orphan_broken(exc_type, parent):
            original(exc_type, value, tb)

    hook.xling_original = original
    return hook


def _underneath(hook):
    """The hook ours wraps (a grandchild inherits its parent's quiet hooks: wrap theirs again, for a new parent)."""
    return getattr(hook, "xling_original", hook)


def _after_fork_in_child() -> None:
    parent = os.getppid()
    threading.excepthook = quiet_thread_hook(parent, _underneath(threading.excepthook))
    sys.excepthook = quiet_sys_hook(parent, _underneath(sys.excepthook))


_installed = False


def install() -> None:
    """Quiet the processes this one forks from now on (idempotent)."""
    global _installed
    if not _installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _installed = True
