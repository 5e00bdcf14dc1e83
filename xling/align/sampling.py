"""eflomal runs in a background thread, one after another, so that Python overlaps them.

A corpus larger than one eflomal run (``--run-pairs``) is split into runs; while eflomal samples run
``k`` (a separate program on its own threads), this process tokenizes and numbers run ``k + 1`` and then
reads, symmetrizes and writes the links of run ``k - 1``. Only one eflomal process exists at a time (its
memory grows with the run), and runs finish in input order.
"""
from __future__ import annotations

import queue
import resource
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from xling.align import eflomal


class SamplerQueue:
    """Submit numbered runs (objects with ``d``, ``n``, ``enc``, ``src``, ``tgt``), then :meth:`wait` for each
    in order; :meth:`close` stops a sampler still running (an error or an interrupt in the caller)."""

    def __init__(self, opts: dict, progress: Optional[Callable] = None, work: Optional[Path] = None):
        self.opts, self.progress = opts, progress
        self.exe = eflomal.seeded_sampler(work) if work is not None and opts.get("seed") is not None else None
        self.sizes: list[int] = []  # sampling iterations (both directions) of every submitted run
        self.wall = self.cpu = self.peak = 0.0
        self._q: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._state: dict[int, dict] = {}
        self._thread = threading.Thread(target=self._work, name="eflomal", daemon=True)
        self._thread.start()

    def submit(self, run) -> None:
        o = self.opts
        it = eflomal.iterations(run.n, o["length"], o["model"], o["schedule"], o["floor"])
        size = 2 * (sum(it) + 1) if run.enc.tokens else 0
        self._state[id(run)] = {"done": threading.Event(), "error": None, "before": sum(self.sizes), "size": size}
        self.sizes.append(size)
        self._q.put(run)

    def wait(self, run) -> None:
        st = self._state[id(run)]
        while not st["done"].wait(0.25):
            if not self._thread.is_alive():  # stopped on an earlier run's error: that one was raised already
                raise RuntimeError("the eflomal thread stopped")
        if st["error"] is not None:
            raise st["error"]

    def close(self) -> None:
        self._stop.set()
        self._q.put(None)
        self._thread.join()

    def _work(self) -> None:
        while True:
            run = self._q.get()
            if run is None or self._stop.is_set():
                return
            st = self._state[id(run)]
            try:
                self._sample(run, st)
            except BaseException as e:  # handed to the caller's wait(); later runs are not sampled
                st["error"] = e
            finally:
                st["done"].set()
            if st["error"] is not None:
                return

    def _sample(self, run, st: dict) -> None:
        o = self.opts
        t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        if st["size"] == 0:  # nothing to align: every pair gets no links
            (run.d / "fwd").write_bytes(b"\n" * run.n)
            (run.d / "rev").write_bytes(b"\n" * run.n)
        else:
            priors = None
            if o["priors"] is not None:
                priors = run.d / "priors.num"
                eflomal.write_numbered_priors(Path(o["priors"]), run.src, run.tgt, priors, o["lowercase"])
            rep = None
            if self.progress is not None:
                rep = lambda ph, c, t, k=st["before"]: self.progress(ph, k + c, max(sum(self.sizes), k + c))  # noqa: E731
            res = eflomal.run_sampler(run.d / "src.num", run.d / "tgt.num", run.d / "fwd", run.d / "rev",
                                      n_sentences=run.n, tokens=run.enc.tokens, model=o["model"], length=o["length"],
                                      n_samplers=o["n_samplers"], schedule=o["schedule"], floor=o["floor"],
                                      null_prior=o["null_prior"],
                                      priors=priors, progress=rep, stop=self._stop,
                                      seeded=None if self.exe is None else
                                      (self.exe, eflomal.seed_bytes(o["seed"], run.k)))
            self.peak = max(self.peak, res["eflomal_peak_rss_mb"])
        r2 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.wall += time.perf_counter() - t1
        self.cpu += r2.ru_utime + r2.ru_stime - r1.ru_utime - r1.ru_stime
