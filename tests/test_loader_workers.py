"""A killed trainer's loader workers keep their broken connection out of the log (:mod:`xling.xlmplug.workers`).

CI once failed on it: a trainer SIGKILLed at update 7 left a DataLoader worker whose ``resource_sharer`` thread
printed ``EOFError``'s traceback into ``train.log``, the tail of which is the launcher's error message."""
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from xling.xlmplug import workers

# A "trainer" that forks a worker (as torch's DataLoader does) with two threads waiting on connections to the
# trainer, then waits to be killed. When it dies, both read end-of-file: one reports it as
# multiprocessing.resource_sharer does (catches it and calls sys.excepthook), the other leaves it uncaught
# (threading.excepthook).
TRAINER = r"""
import multiprocessing as mp, sys, threading, time
if sys.argv[1] == "quiet":
    from xling.xlmplug import workers
    workers.install()

def reported(conn):
    try:
        conn.recv()
    except BaseException:
        sys.excepthook(*sys.exc_info())

def worker(pipes):
    threads = []
    for (mine, theirs), target in zip(pipes, (reported, lambda c: c.recv())):
        theirs.close()
        threads.append(threading.Thread(target=target, args=(mine,)))
        threads[-1].start()
    for t in threads:
        t.join()
    time.sleep(1.5)
    print("worker done", file=sys.stderr, flush=True)

pipes = [mp.Pipe(), mp.Pipe()]
p = mp.get_context("fork").Process(target=worker, args=(pipes,))
p.start()
for mine, _ in pipes:
    mine.close()
print("ready", flush=True)
time.sleep(60)
"""


def _kill_trainer(mode: str, tmp_path) -> str:
    err = tmp_path / f"{mode}.err"
    with open(err, "w") as f:
        trainer = subprocess.Popen([sys.executable, "-c", TRAINER, mode], stdout=subprocess.PIPE, stderr=f,
                                   text=True)
        assert trainer.stdout.readline().strip() == "ready"
        os.kill(trainer.pid, signal.SIGKILL)
        trainer.wait()
    deadline = time.monotonic() + 20
    while "worker done" not in err.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    return err.read_text()


@pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="needs os.register_at_fork")
def test_a_killed_trainers_worker_prints_no_traceback(tmp_path):
    plain = _kill_trainer("plain", tmp_path)
    assert "worker done" in plain and plain.count("Traceback") == 2 and "EOFError" in plain  # what the log showed
    quiet = _kill_trainer("quiet", tmp_path)
    assert "worker done" in quiet and "Traceback" not in quiet, quiet


def test_other_errors_and_errors_while_the_parent_lives_are_printed(monkeypatch):
    seen = []
    monkeypatch.setattr(workers, "PARENT_GRACE", 0.1)
    alive, gone = os.getppid(), os.getppid() + 10 ** 6  # no process has the second pid

    def args(exc_type):
        return SimpleNamespace(exc_type=exc_type, exc_value=exc_type(), exc_traceback=None, thread=None)

    start = time.monotonic()
    workers.quiet_thread_hook(alive, seen.append)(args(EOFError))  # parent alive: printed, after the grace
    assert len(seen) == 1 and time.monotonic() - start >= 0.1
    workers.quiet_thread_hook(gone, seen.append)(args(ConnectionResetError))  # parent gone: dropped
    workers.quiet_thread_hook(gone, seen.append)(args(ValueError))  # not a broken connection: printed
    assert [a.exc_type for a in seen] == [EOFError, ValueError]
    printed = []
    workers.quiet_sys_hook(gone, lambda *a: printed.append(a[0]))(EOFError, EOFError(), None)
    workers.quiet_sys_hook(gone, lambda *a: printed.append(a[0]))(KeyError, KeyError(), None)
    workers.quiet_sys_hook(alive, lambda *a: printed.append(a[0]))(BrokenPipeError, BrokenPipeError(), None)
    assert printed == [KeyError, BrokenPipeError]
