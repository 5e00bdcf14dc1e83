"""The stream pass of one corpus: chunks of its inputs go through the workers (in order) and every
non-empty line is appended to the corpus's work directory, with a checkpoint a few seconds apart.

Work directory: ``side{j}.bin`` (ids), ``side{j}.sizes`` (int32), ``side{j}.txt`` (cleaned lines) per
side (mono 1, pair 2), ``hash.u64`` (one hash a line or pair), ``forced.u8`` (mono with
``--mono-from-para``: 1 where the line is a pair's valid sentence), ``state.json``. A run that is
killed restarts from the last checkpoint: every file is cut back to its checkpointed size, and the
inputs are read on from the byte offsets stored with it.
"""
from __future__ import annotations

import ctypes
import functools
import json
import multiprocessing
import time
from collections import deque
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from xling.corpus.binarize import Appender
from xling.corpus.reader import Source, iter_chunks
from xling.corpus.work import init_worker, process_chunk
from xling.forking import held_signals, worker_signals
from xling.io import write_json_atomic

CHECKPOINT_SECONDS = 5.0


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; musl, macOS and Windows have none
    except (OSError, AttributeError, TypeError):
        return None


def release_free_heap() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``; nothing elsewhere).

    Reading a file in megabyte blocks leaves the heap holding tens of MB of freed buffers (glibc raises
    its mmap threshold after the first large free, so later blocks come from the heap). Trimmed before
    forking, the workers do not start with a copy of them, so memory stays the same at any corpus size."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class _Ready:
    def __init__(self, value):
        self.value = value

    def get(self):
        return self.value


def init_pool_worker(vocab_dir: str, num_threads: int) -> None:
    """A pool process: Ctrl-C is the parent's to handle (it reaches the whole process group, and a worker that
    raised KeyboardInterrupt printed a traceback and lost its chunk), and the parent stops the pool with SIGTERM,
    whose default is wanted here, not the parent's handler inherited through fork. The pool is started with the
    stop signals held (:mod:`xling.forking`), so none reaches the worker before this."""
    worker_signals()
    init_worker(vocab_dir, num_threads)


class Workers:
    """``n`` encoding processes (none for ``n == 1``: the chunks are processed in this process)."""

    def __init__(self, vocab_dir: str, n: int, num_threads: int):
        self.n = n
        release_free_heap()
        if n > 1:
            ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
            with held_signals():  # a Ctrl-C during the start waits for it, in the parent: not lost, not a worker's
                self.pool = ctx.Pool(n, initializer=init_pool_worker, initargs=(vocab_dir, num_threads))
        else:
            self.pool = None
            init_worker(vocab_dir, num_threads)

    def submit(self, payload):
        if self.pool is None:
            return _Ready(process_chunk(payload))
        return self.pool.apply_async(process_chunk, (payload,))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


def stream_files(work: Path, n_sides: int, forced: bool) -> list[Path]:
    files = [work / f"side{j}.{e}" for j in range(n_sides) for e in ("bin", "sizes", "txt")]
    return files + [work / "hash.u64"] + ([work / "forced.u8"] if forced else [])


def load_state(work: Path, fingerprint: str) -> Optional[dict]:
    try:
        st = json.loads((work / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return st if st.get("fingerprint") == fingerprint else None


def run_stream(work: Path, fingerprint: str, sources: list[Source], n_sides: int, workers: Workers,
               chunk_lines: int, forced: Optional[np.ndarray] = None,
               progress: Optional[Callable[[int, int], None]] = None) -> dict:
    """Stream ``sources`` into ``work``; resume from ``work/state.json`` when it belongs to ``fingerprint``.
    Returns the final state (``items``, ``counts``)."""
    state = load_state(work, fingerprint)
    files = stream_files(work, n_sides, forced is not None)
    if state is None:
        work.mkdir(parents=True, exist_ok=True)
        for f in files:
            f.write_bytes(b"")
        state = {"fingerprint": fingerprint, "source": 0, "pos": None, "items": 0,
                 "sizes": [0] * len(files), "counts": {"input": 0, "empty": 0}, "done_bytes": 0, "resumed": 0}
        write_json_atomic(work / "state.json", state)
    elif not state.get("streamed"):
        state["resumed"] = state.get("resumed", 0) + 1
    if state.get("streamed"):
        return state
    total = sum(s.n_bytes for s in sources)
    out = Appender(files, state["sizes"])
    pending: deque = deque()
    last_cp = time.monotonic()

    def consume():
        nonlocal last_cp
        i_src, pos, n_bytes, fut = pending.popleft()
        r = fut.get()
        for j, side in enumerate(r.sides):
            out.write(3 * j, side.ids)
            out.write(3 * j + 1, side.sizes)
            out.write(3 * j + 2, side.texts)
        out.write(3 * n_sides, r.hashes)
        if forced is not None:
            out.write(3 * n_sides + 1, np.isin(r.hashes, forced).astype(np.uint8))
        state["items"] += len(r.hashes)
        state["counts"]["input"] += r.lines
        state["counts"]["empty"] += r.lines - len(r.hashes)
        state["done_bytes"] += n_bytes
        state["source"], state["pos"] = (i_src, pos) if pos is not None else (i_src + 1, None)
        if progress:
            progress(state["done_bytes"], total)
        if pos is None or time.monotonic() - last_cp > CHECKPOINT_SECONDS:
            state["sizes"] = out.checkpoint()
            write_json_atomic(work / "state.json", state)
            last_cp = time.monotonic()

    try:
        for i_src in range(state["source"], len(sources)):
            src = sources[i_src]
            resume = state["pos"] if i_src == state["source"] else None
            prev = sum(resume["offsets"]) if resume else sum(f.start for f in src.files)
            for payload, pos in iter_chunks(src, chunk_lines, resume):
                n_bytes = sum(pos["offsets"]) - prev
                prev = sum(pos["offsets"])
                pending.append((i_src, pos, n_bytes, workers.submit(payload)))
                while len(pending) > 2 * workers.n:
                    consume()
            pending.append((i_src, None, 0, workers.submit((src.kind,) + (b"",) * len(src.files))))
            while pending:
                consume()
        state["streamed"] = True
        state["sizes"] = out.checkpoint()
        write_json_atomic(work / "state.json", state)
    finally:
        out.close()
    return state
