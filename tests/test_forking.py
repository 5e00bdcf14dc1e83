"""Worker processes start with the stop signals held (xling.forking): a Ctrl-C during a start is delivered to the
parent afterwards (not lost), and a worker is never reached by one before it has set its own dispositions."""
from __future__ import annotations

import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signal masks only")

HELD = r"""
import os, signal, sys, time
from xling.forking import held_signals
signal.signal(signal.SIGINT, signal.default_int_handler)  # a terminal's foreground job, whatever started this test
try:
    with held_signals():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # a delivered signal would have raised by now
        print("held", flush=True)
    print("lost", flush=True)
except KeyboardInterrupt:
    print("delivered after the start", flush=True)
"""


def test_a_signal_during_a_start_is_delivered_after_it_not_lost():
    out = subprocess.run([sys.executable, "-c", HELD], capture_output=True, text=True, timeout=60).stdout.split("\n")
    assert out[:2] == ["held", "delivered after the start"], out


def _mask(status: str, field: str) -> int:
    return int(next(ln for ln in status.splitlines() if ln.startswith(field + ":")).split()[1], 16)


CHILD = r"""
import os, signal, sys
from xling.forking import held_signals, worker_signals
signal.signal(signal.SIGINT, signal.default_int_handler)
r, w = os.pipe()
with held_signals():
    pid = os.fork()
    if pid == 0:
        before = open("/proc/self/status").read()
        worker_signals()
        after = open("/proc/self/status").read()
        os.write(w, (before + "\n=====\n" + after).encode())
        os._exit(0)
os.close(w)
data = b""
while chunk := os.read(r, 65536):
    data += chunk
os.waitpid(pid, 0)
print(data.decode() + "\n=====\n" + open("/proc/self/status").read())
"""


def test_a_worker_holds_the_stop_signals_until_it_has_its_own_dispositions():
    before, after, parent = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                                           timeout=60, check=True).stdout.split("\n=====\n")
    bits = {s: 1 << (s - 1) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    for s, b in bits.items():
        assert _mask(before, "SigBlk") & b, f"{s.name} reached the fresh worker unheld"
        assert not _mask(after, "SigBlk") & b and not _mask(parent, "SigBlk") & b, f"{s.name} stayed blocked"
    ignored = _mask(after, "SigIgn")
    assert ignored & bits[signal.SIGINT] and ignored & bits[signal.SIGHUP], "Ctrl-C and hang-up are the parent's"
    assert not ignored & bits[signal.SIGTERM], "a pool is stopped with SIGTERM: its default in the worker"
    assert not _mask(parent, "SigIgn") & bits[signal.SIGINT], "the parent still takes Ctrl-C"
