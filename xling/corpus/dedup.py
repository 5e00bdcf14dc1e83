"""Exact deduplication over a corpus of any size, in bounded memory.

The stream pass stores one 64-bit hash per line (:mod:`xling.corpus.clean`) in a file. Up to
:data:`IN_MEMORY` lines the hashes are deduplicated in memory (8 bytes a line); above it they are
partitioned on disk by their top bits into buckets of about that size, and each bucket is
deduplicated on its own: equal lines have equal hashes, so they always meet in one bucket. The
result is one byte per line on disk: 1 for the first occurrence of a line, 0 for a repeat.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

IN_MEMORY = 1 << 20  # lines (8 MiB of hashes; np.unique needs about 4x that)
STEP = 1 << 18


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
    bits = int(np.ceil(np.log2(n / IN_MEMORY))) + 1
    work = out_path.parent / (out_path.name + ".buckets")
    work.mkdir(exist_ok=True)
    files = [open(work / f"{b}.bin", "wb") for b in range(1 << bits)]
    try:  # bucket files hold (hash, line index) records in line order
        with open(hash_path, "rb") as f:
            start = 0
            while True:
                h = np.fromfile(f, dtype="<u8", count=STEP)
                if not len(h):
                    break
                rec = np.empty(len(h), dtype=[("h", "<u8"), ("i", "<i8")])
                rec["h"], rec["i"] = h, np.arange(start, start + len(h))
                b = (h >> np.uint64(64 - bits)).astype(np.int64)
                order = np.argsort(b, kind="stable")
                rec, b = rec[order], b[order]
                bounds = np.searchsorted(b, np.arange((1 << bits) + 1))
                for k in range(1 << bits):
                    if bounds[k + 1] > bounds[k]:
                        rec[bounds[k]:bounds[k + 1]].tofile(files[k])
                start += len(h)
    finally:
        for fh in files:
            fh.close()
    np.zeros(n, dtype=np.uint8).tofile(out_path)
    keep = np.memmap(out_path, dtype=np.uint8, mode="r+", shape=(n,))
    repeats = n
    for k in range(1 << bits):
        rec = np.fromfile(work / f"{k}.bin", dtype=[("h", "<u8"), ("i", "<i8")])
        first = rec["i"][np.unique(rec["h"], return_index=True)[1]]
        keep[np.sort(first)] = 1
        repeats -= len(first)
        os.unlink(work / f"{k}.bin")
    keep.flush()
    del keep
    os.rmdir(work)
    return repeats
