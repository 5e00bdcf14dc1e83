"""Starting worker processes without losing a signal or printing a worker's traceback.

A forked worker begins life with its parent's Python signal handlers: a Ctrl-C (sent by the terminal to the
whole process group) or the parent's SIGTERM that arrives before the worker has set its own dispositions
raises ``KeyboardInterrupt`` inside the worker, which prints a traceback and loses its piece of work, while
ignoring the signals in the parent around the fork would lose the user's Ctrl-C. So the stop signals are
*blocked* (``pthread_sigmask``) in the forking thread while workers start: a child inherits the blocked mask,
sets its dispositions (:func:`worker_signals`) and only then unblocks, so nothing reaches it before; the
parent unblocks after the start, and whatever arrived meanwhile is delivered to it then, not lost.

The same holds across ``exec``: a Python child started with :func:`held_signals` around ``subprocess.Popen``
starts with the signals blocked and calls :func:`worker_signals` first thing. A program that is not ours
(eflomal) must not be started inside, since it would keep them blocked.

A signal whose disposition the caller set to "ignore" (``nohup``'s SIGHUP, SIGINT of ``cmd &``) stays ignored
in the parent; that is the caller's decision, and a test that sends SIGINT must start its child with SIGINT
deliverable.
"""
from __future__ import annotations

import contextlib
import signal
import threading

# the signals that stop an xling command (Ctrl-C, a scheduler's time limit or preemption, a closed terminal)
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


@contextlib.contextmanager
def held_signals():
    """Block :data:`STOP_SIGNALS` in this thread inside; on exit the previous mask comes back and a signal that
    arrived meanwhile is delivered (Python runs its handler at the next instruction of the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # Python handles signals in the main thread only; a worker thread's forks have nothing to hold
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def worker_signals() -> None:
    """The first thing a worker process does: Ctrl-C and a hang-up are its parent's to handle (they reach the
    whole process group; the parent stops its workers itself), SIGTERM (how a parent stops a pool) has its
    default, terminate; then the signals held by :func:`held_signals` are unblocked (one that came in between
    is discarded, or terminates the worker, by those dispositions)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
