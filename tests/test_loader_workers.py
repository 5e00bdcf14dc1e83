"""A killed trainer's loader workers keep their broken connection out of the log (:mod:`xling.xlmplug.workers`).

CI once failed on it: a trainer SIGKILLed at update 7 left a DataLoader worker whose ``resource_sharer`` thread
printed ``EOFError``'s traceback into ``train.log``, the tail of which is the launcher's error message."""
import os
import signal
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from xling.xlmplug import workers

# A "trainer" that forks a worker (as torch's DataLoader does) whose thread waits on a connection to the trainer,
# then waits to be killed. The worker's thread reads end-of-file when the trainer dies.
TRAINER = r"""
import multiprocessing as mp, os, sys, threading, time
if sys.argv[1] == "quiet":
    from xling.xlmplug import workers
    workers.install()

def worker(mine, theirs):
    theirs.close()
    t = threading.Thread(target=mine.recv)
    t.start()
    t.join()
    time.sleep(1.5)
    print("worker done", file=sys.stderr, flush=True)

mine, theirs = mp.Pipe()
p = mp.get_context("fork").Process(target=worker, args=(mine, theirs))
p.start()
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
    assert "worker done" in plain and "Traceback" in plain and "EOFError" in plain  # what the log showed
    quiet = _kill_trainer("quiet", tmp_path)
    assert "worker done" in quiet and "Traceback" not in quiet, quiet


def test_other_errors_and_errors_while_the_parent_lives_are_printed(monkeypatch):
    seen = []
    original = seen.append

    def args(exc_type):
        return SimpleNamespace(exc_type=exc_type, exc_value=exc_type(), exc_traceback=None, thread=None)

    monkeypatch.setattr(workers, "PARENT_GRACE", 0.1)
    alive = workers.quiet_orphan_hook(os.getppid(), original)
    gone = workers.quiet_orphan_hook(os.getppid() + 10 ** 6, original)  # no process has that pid
    start = time.monotonic()
    alive(args(EOFError))  # parent alive: printed, after waiting out the grace
    assert len(seen) == 1 and time.monotonic() - start >= 0.1
    gone(args(ConnectionResetError))  # parent gone: dropped
    gone(args(ValueError))  # not a broken connection: printed
    assert [a.exc_type for a in seen] == [EOFError, ValueError]
    assert threading.excepthook is not alive
