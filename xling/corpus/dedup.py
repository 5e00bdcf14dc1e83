"""Exact deduplication over a corpus of any size, in bounded memory.

The stream pass stores one 64-bit hash per line (:mod:`xling.corpus.clean`) in a file. Up to
:data:`IN_MEMORY` lines the hashes are deduplicated in memory (8 bytes a line); above it they are
partitioned on disk by their top bits into at most :data:`FANOUT` buckets of (hash, line) records,
and each bucket is deduplicated on its own: equal lines have equal hashes, so they always meet in one
bucket. A bucket still larger than :data:`BUCKET` records (corpora above ``FANOUT * BUCKET`` lines) is
partitioned again by the next bits, so memory stays the same at any size and at most ``FANOUT`` files
are open at once; a large bucket of few distinct lines (a line repeated millions of times) is
deduplicated as it is read instead. Every partition is stable (records keep line order), so the first record of a
hash in its bucket is the line's first occurrence. The result is one byte per line on disk: 1 for the
first occurrence of a line, 0 for a repeat; it is written through a file mapping whose pages are
dropped after every bucket, so it never stays resident either.
"""
from __future__ import annotations

import mmap
import os
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np

IN_MEMORY = 1 << 19  # lines deduplicated in memory (4 MiB of hashes; np.unique needs about 4x that)
BUCKET = 1 << 18  # records (16 bytes) a bucket holds at most before it is partitioned again
FANOUT = 256  # buckets per partition at most (open files; a power of two)
STEP = 1 << 18  # records read at a time
REC = np.dtype([("h", "<u8"), ("i", "<i8")])


def _hash_records(path: Path) -> Iterator[np.ndarray]:
    """(hash, line index) records of the hash file, in steps."""
    start = 0
    with open(path, "rb") as f:
        while True:
            h = np.fromfile(f, dtype="<u8", count=STEP)
            if not len(h):
                return
            rec = np.empty(len(h), dtype=REC)
            rec["h"], rec["i"] = h, np.arange(start, start + len(h))
            start += len(h)
            yield rec


def _bucket_records(path: Path) -> Iterator[np.ndarray]:
    with open(path, "rb") as f:
        while True:
            rec = np.fromfile(f, dtype=REC, count=STEP)
            if not len(rec):
                return
            yield rec


def _partition(blocks: Iterator[np.ndarray], n: int, used_bits: int, work: Path) -> list[tuple[Path, int, int]]:
    """Split records by the hash bits after the first ``used_bits``; returns (file, records, bits used)."""
    bits = min(FANOUT.bit_length() - 1, max(1, int(np.ceil(np.log2(max(n, 1) / BUCKET))) + 1), 64 - used_bits)
    shift, mask = np.uint64(64 - used_bits - bits), np.uint64((1 << bits) - 1)
    work.mkdir(parents=True, exist_ok=True)
    paths = [work / f"{b}.bin" for b in range(1 << bits)]
    counts = np.zeros(1 << bits, dtype=np.int64)
    files = [open(p, "wb") for p in paths]
    try:
        for rec in blocks:
            b = ((rec["h"] >> shift) & mask).astype(np.int64)
            order = np.argsort(b, kind="stable")
            rec, b = rec[order], b[order]
            bounds = np.searchsorted(b, np.arange((1 << bits) + 1))
            for k in np.flatnonzero(bounds[1:] > bounds[:-1]):
                rec[bounds[k]:bounds[k + 1]].tofile(files[k])
            counts += bounds[1:] - bounds[:-1]
    finally:
        for fh in files:
            fh.close()
    return [(p, int(c), used_bits + bits) for p, c in zip(paths, counts)]


def _stream_firsts(path: Path, cap: int) -> np.ndarray | None:
    """First occurrences of a bucket read in steps against the sorted distinct hashes seen so far, or
    ``None`` once more than ``cap`` distinct hashes were seen (the bucket must be partitioned instead).
    This is what keeps a bucket of a few lines repeated millions of times (web boilerplate) small."""
    seen, out = np.zeros(0, dtype="<u8"), []
    for rec in _bucket_records(path):
        u, first = np.unique(rec["h"], return_index=True)
        if len(seen):
            pos = np.minimum(np.searchsorted(seen, u), len(seen) - 1)
            new = seen[pos] != u
            u, first = u[new], first[new]
        out.append(rec["i"][first])
        seen = np.union1d(seen, u)
        if len(seen) > cap:
            return None
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _firsts(path: Path, n: int, used_bits: int) -> Iterator[np.ndarray]:
    """Line indices of the first occurrences in one bucket file (partitioned again while too large)."""
    if n <= BUCKET:
        rec = np.fromfile(path, dtype=REC)
        os.unlink(path)
        if len(rec):
            yield rec["i"][np.unique(rec["h"], return_index=True)[1]]
        return
    first = _stream_firsts(path, BUCKET if used_bits < 64 else n)
    if first is not None:
        os.unlink(path)
        yield first
        return
    work = path.with_suffix(".d")
    for sub, m, bits in _partition(_bucket_records(path), n, used_bits, work):
        yield from _firsts(sub, m, bits)
    os.unlink(path)
    os.rmdir(work)


def first_occurrences(hash_path: Path, out_path: Path, dedup: bool = True) -> int:
    """Write ``out_path`` (uint8 per line: 1 first occurrence, 0 repeat); return the number of repeats."""
    n = os.path.getsize(hash_path) // 8
    if not dedup:
        np.ones(n, dtype=np.uint8).tofile(out_path)
        return 0
    if n <= IN_MEMORY:
        h = np.fromfile(hash_path, dtype="<u8")
        keep = np.zeros(n, dtype=np.uint8)
        keep[np.unique(h, return_index=True)[1]] = 1
        keep.tofile(out_path)
        return int(n - keep.sum())
    work = out_path.parent / (out_path.name + ".buckets")
    shutil.rmtree(work, ignore_errors=True)  # a killed run's partition
    buckets = _partition(_hash_records(hash_path), n, 0, work)
    repeats = n
    with open(out_path, "w+b") as f:
        f.truncate(n)  # all zeros: repeats until marked
        mm = mmap.mmap(f.fileno(), n)
        keep = np.frombuffer(mm, dtype=np.uint8)
        try:
            for path, m, bits in buckets:
                for first in _firsts(path, m, bits):
                    keep[np.sort(first)] = 1
                    repeats -= len(first)
                mm.flush()
                if hasattr(mm, "madvise"):  # written back: drop the pages from this process's memory
                    mm.madvise(mmap.MADV_DONTNEED)
        finally:
            del keep
            mm.close()
    os.rmdir(work)
    return repeats
