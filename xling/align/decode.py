"""Pass 2 of an alignment: read a run's links, map them to input tokens, symmetrize, in bounded chunks.

A run's chunks are independent, so a large run is split in two halves by symmetrization work: a forked
copy of this process decodes the second half into a file while this one decodes (and hands on) the
first. eflomal has finished by then, so the second core is otherwise idle.
"""
from __future__ import annotations

import multiprocessing
import sys
import warnings
from itertools import chain, islice
from pathlib import Path
from typing import Iterator

import numpy as np

from xling.align.encode import Encoded
from xling.align.links import parse_links, read_link_lines
from xling.align.symmetrize import symmetrize_batch
from xling.errors import XlingError
from xling.forking import held_signals, worker_signals

MAX_CELLS = 1 << 23  # symmetrization grid cells per chunk (a few bool arrays of this size)
MAX_CHUNK = 50_000
PARALLEL_MIN_PAIRS = 20_000  # smaller runs decode faster than a process forks


class _Owners:
    """Input-token index of every word of the flagged pairs of a chunk (read from ``f``), and each pair's
    length in input tokens."""

    def __init__(self, f, flags: np.ndarray, lens: np.ndarray):
        self.flags, self.lens, self.owners = flags, lens, None
        count = int(lens[flags].sum())
        if count:
            self.owners = np.fromfile(f, np.uint16, count).astype(np.int64)
            idx = np.flatnonzero(flags)
            self.start = np.zeros(len(flags), np.int64)
            self.start[idx] = np.concatenate(([0], np.cumsum(lens[idx])[:-1]))
            self.lens = lens.copy()
            self.lens[idx] = np.maximum.reduceat(self.owners, self.start[idx]) + 1

    def apply(self, sid: np.ndarray, idx: np.ndarray) -> np.ndarray:
        if self.owners is None:
            return idx
        hit = self.flags[sid]
        return np.where(hit, self.owners[np.where(hit, self.start[sid] + idx, 0)], idx)


def _to_tokens(links, own_s: _Owners, own_t: _Owners):
    """One direction's word links as input-token links (several words of one token: one link)."""
    sid, i, j = links
    if own_s.owners is None and own_t.owners is None:
        return links
    hit = own_s.flags[sid] | own_t.flags[sid]  # only links of pairs with split tokens can repeat
    sub = sid[hit]
    key = np.unique((sub << 42) | (own_s.apply(sub, i[hit]) << 21) | own_t.apply(sub, j[hit]))
    return (np.concatenate((sid[~hit], key >> 42)), np.concatenate((i[~hit], (key >> 21) & 0x1FFFFF)),
            np.concatenate((j[~hit], key & 0x1FFFFF)))


def chunks(enc: Encoded) -> list[tuple[int, int]]:
    """``(start, end)`` pair ranges of at most ``MAX_CELLS`` grid cells (or one pair) and ``MAX_CHUNK`` pairs."""
    cells = np.cumsum(enc.ns * enc.nt)
    out, start = [], 0
    while start < enc.n_pairs:
        base = cells[start - 1] if start else 0
        end = int(np.searchsorted(cells, base + MAX_CELLS, side="right"))
        end = min(max(end, start + 1), start + MAX_CHUNK, enc.n_pairs)
        out.append((start, end))
        start = end
    return out


def decode_spans(enc: Encoded, d: Path, sym: str, spans: list[tuple[int, int]]) -> Iterator[tuple]:
    """``(n_pairs, sid, i, j)`` of each of the consecutive ``spans`` (``sid`` counts from the span's start)."""
    if not spans:
        return
    a0 = spans[0][0]
    own = [open(d / "own.src", "rb"), open(d / "own.tgt", "rb")] if enc.mapped else None
    if own is not None:  # skip the owners of the pairs before the first span
        for f, lens, flags in zip(own, (enc.ns, enc.nt), (enc.remap_s, enc.remap_t)):
            f.seek(2 * int(lens[:a0][flags[:a0]].sum()))
    with open(d / "fwd", "rb") as ff, open(d / "rev", "rb") as rf:
        for f in (ff, rf):
            for _ in islice(f, a0):
                pass
        for a, b in spans:
            n = b - a
            try:
                fwd = parse_links(read_link_lines(ff, n), n)
                rev = parse_links(read_link_lines(rf, n), n)
            except ValueError as e:
                raise XlingError(f"eflomal's output is incomplete ({e})", fix="re-run; report it if it recurs")
            ns, nt = enc.ns[a:b], enc.nt[a:b]
            if own is not None:  # symmetrize the input's tokens, the units the links are read in
                own_s, own_t = _Owners(own[0], enc.remap_s[a:b], ns), _Owners(own[1], enc.remap_t[a:b], nt)
                fwd, rev = _to_tokens(fwd, own_s, own_t), _to_tokens(rev, own_s, own_t)
                ns, nt = own_s.lens, own_t.lens
            yield n, *symmetrize_batch(ns, nt, fwd, rev, sym)
    for f in own or []:
        f.close()


def _decode_to_files(enc: Encoded, d: Path, sym: str, spans: list, out: Path) -> None:
    """The forked half: every span's links, concatenated, as ``.npy`` files (no pickling, no zip)."""
    worker_signals()  # started with the stop signals held: Ctrl-C is the parent's, which kills this process
    parts = list(decode_spans(enc, d, sym, spans))
    np.save(out / "n.npy", np.array([p[0] for p in parts], np.int64))
    np.save(out / "len.npy", np.array([len(p[1]) for p in parts], np.int64))
    for k, name in ((1, "sid"), (2, "i"), (3, "j")):
        np.save(out / f"{name}.npy", np.concatenate([p[k] for p in parts]).astype(np.int32))


def _child_results(child, out: Path) -> Iterator[tuple]:
    """Wait for the forked half, then its chunks from its files."""
    child.join()
    if child.exitcode != 0:
        raise XlingError(f"decoding the second half of the links failed (exit {child.exitcode})",
                         fix="re-run; report it if it recurs")
    n, lens = np.load(out / "n.npy"), np.load(out / "len.npy")
    sid, i, j = (np.load(out / f"{x}.npy").astype(np.int64) for x in ("sid", "i", "j"))
    at = np.concatenate(([0], np.cumsum(lens)))
    for k in range(len(n)):
        yield int(n[k]), sid[at[k]:at[k + 1]], i[at[k]:at[k + 1]], j[at[k]:at[k + 1]]


def decode_run(enc: Encoded, d: Path, sym: str, progress=None) -> Iterator[tuple]:
    """``(n_pairs, sid, i, j)`` chunks of a sampled run, in order (``sid`` counts from the chunk's first pair)."""
    spans = chunks(enc)
    mine, theirs, child = spans, [], None
    if len(spans) >= 2 and enc.n_pairs >= PARALLEL_MIN_PAIRS and "fork" in multiprocessing.get_all_start_methods():
        work = np.cumsum([int((enc.ns[a:b] * enc.nt[a:b]).sum()) + (b - a) for a, b in spans])
        k = min(max(1, int(np.searchsorted(work, work[-1] / 2))), len(spans) - 1)
        mine, theirs = spans[:k], spans[k:]
        out = d / "decoded"
        out.mkdir(exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        with warnings.catch_warnings():  # the child runs numpy and file I/O only: no lock of another thread
            warnings.simplefilter("ignore", DeprecationWarning)
            child = multiprocessing.get_context("fork").Process(target=_decode_to_files,
                                                                args=(enc, d, sym, theirs, out), daemon=True)
            with held_signals():
                child.start()
    parts = decode_spans(enc, d, sym, mine)
    if child is not None:
        parts = chain(parts, _child_results(child, out))
    done = 0
    try:
        for res in parts:
            yield res
            done += res[0]
            if progress is not None:
                progress("writing", done, enc.n_pairs)
    finally:
        if child is not None and child.is_alive():
            child.kill()
            child.join()
