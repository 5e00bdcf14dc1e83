"""After the stream pass: deduplicate, filter by length (and length ratio), draw the valid split and
write the final datasets (``train`` whole or in shards, ``valid``), reading the work files in steps.

A line's fate is decided in the order of the original ``prep-data``: empty, duplicate (first
occurrence kept), too short / too long (source side first), length ratio. The valid split is the
same seeded draw over the kept sentences (``numpy.random.Generator.choice``); with
``--mono-from-para`` a language's valid split is exactly the pairs' valid sentences found in it, so
no sentence of a pair's valid split is trained on as monolingual text. Train shard ``k`` of ``S`` holds the
sentences ``[k*M//S, (k+1)*M//S)`` of the ``M`` train sentences, so every shard keeps each corpus's share.
"""
from __future__ import annotations

from itertools import compress, islice
from pathlib import Path
from typing import Optional

import numpy as np

from xling.corpus.binarize import DatasetWriter
from xling.corpus.dedup import first_occurrences
from xling.io import sha256_text

STEP = 1 << 16  # items per step


def _read(path: Path, dtype, offset_items: int, count: int) -> np.ndarray:
    with open(path, "rb") as f:
        f.seek(offset_items * np.dtype(dtype).itemsize)
        return np.fromfile(f, dtype=dtype, count=count)


def decide(work: Path, n_sides: int, n_items: int, cfg, forced: bool) -> tuple[dict, int, np.ndarray]:
    """Rewrite ``work/keep.u8`` as 0 dropped, 1 kept; return (counts, kept, ranks of kept forced lines)."""
    counts = {"duplicate": first_occurrences(work / "hash.u64", work / "keep.u8", cfg.dedup),
              "too_short": 0, "too_long": 0}
    if n_sides == 2:
        counts["ratio"] = 0
    keep = open(work / "keep.u8", "r+b")  # rewritten in place, a step at a time
    n_kept, forced_ranks = 0, []
    for a in range(0, n_items, STEP):
        b = min(a + STEP, n_items)
        keep.seek(a)
        first = np.fromfile(keep, dtype=np.uint8, count=b - a) == 1
        p = [_read(work / f"side{j}.sizes", np.int32, a, b - a) - 1 for j in range(n_sides)]
        short = [x < cfg.min_len for x in p]
        long = [x > cfg.max_len for x in p]
        if n_sides == 1:
            why_short, why_long, ok = short[0], ~short[0] & long[0], ~short[0] & ~long[0]
        else:
            s_ok = ~short[0] & ~long[0]
            why_short = short[0] | (s_ok & short[1])
            why_long = (~short[0] & long[0]) | (s_ok & ~short[1] & long[1])
            ok = s_ok & ~short[1] & ~long[1]
            bad_ratio = ok & (np.maximum(p[0], p[1]) > cfg.max_ratio * np.minimum(p[0], p[1]))
            counts["ratio"] += int((first & bad_ratio).sum())
            ok &= ~bad_ratio
        counts["too_short"] += int((first & why_short).sum())
        counts["too_long"] += int((first & why_long).sum())
        kept = first & ok
        keep.seek(a)
        kept.astype(np.uint8).tofile(keep)
        if forced:
            ranks = n_kept + np.cumsum(kept) - 1
            forced_ranks.append(ranks[(_read(work / "forced.u8", np.uint8, a, b - a) == 1) & kept])
        n_kept += int(kept.sum())
    keep.close()
    return counts, n_kept, (np.concatenate(forced_ranks) if forced_ranks else np.zeros(0, np.int64))


def valid_ranks(n_kept: int, forced: np.ndarray, cfg, key: str, size: Optional[int] = None) -> np.ndarray:
    """Sorted ranks (among kept sentences) of the valid split."""
    k = min(cfg.valid_size if size is None else size, int(n_kept * cfg.valid_max_fraction))
    rng = np.random.default_rng([cfg.seed, int(sha256_text(key)[:8], 16)])
    if len(forced):  # --mono-from-para: exactly the pairs' valid sentences (any other pick is in a pair's train)
        return np.sort(forced)
    return np.sort(rng.choice(n_kept, size=k, replace=False)) if k > 0 else np.zeros(0, np.int64)


def train_shards(m: int, s: int) -> list[np.ndarray]:
    """Train ranks of each of ``s`` shards (a corpus with fewer than ``s`` sentences repeats them)."""
    if m >= s:
        return [np.arange(k * m // s, (k + 1) * m // s) for k in range(s)]
    return [np.array([k % m]) if m else np.zeros(0, np.int64) for k in range(s)]


def assemble(work: Path, n_sides: int, n_items: int, n_kept: int, valid: np.ndarray, dtype,
             prefixes: dict) -> dict:
    """Write every output dataset. ``prefixes[(split, shard)]`` is a list of per-side prefixes (``shard``
    None for the valid split and for an unsharded train split). Returns {(split, shard): (items, tokens)}."""
    train_keys = sorted(k[1] for k in prefixes if k[0] == "train")
    sharded = train_keys != [None]
    m = n_kept - len(valid)
    multi = sharded and m < len(train_keys)  # fewer train sentences than shards: each shard repeats one
    shards = train_shards(m, len(train_keys)) if multi else None
    bounds = np.array([k * m // len(train_keys) for k in range(len(train_keys) + 1)])  # shard k: [b_k, b_k+1)
    writers = {key: [DatasetWriter(Path(p), dtype) for p in prefixes[key]] for key in prefixes}
    offsets = [0] * n_sides
    txt = [open(work / f"side{j}.txt", "rb") for j in range(n_sides)]
    base = 0
    try:
        for a in range(0, n_items, STEP):
            b = min(a + STEP, n_items)
            kept = _read(work / "keep.u8", np.uint8, a, b - a).astype(bool)
            ranks = base + np.cumsum(kept) - 1
            base += int(kept.sum())
            pos = np.searchsorted(valid, ranks)
            is_valid = kept & (pos < len(valid)) & (valid[np.minimum(pos, max(len(valid) - 1, 0))] == ranks) \
                if len(valid) else np.zeros(b - a, bool)
            train_rank = ranks - np.searchsorted(valid, ranks, side="right")
            sides = []
            for j in range(n_sides):
                sizes = _read(work / f"side{j}.sizes", np.int32, a, b - a)
                ids = _read(work / f"side{j}.bin", dtype, offsets[j], int(sizes.sum()))
                offsets[j] += int(sizes.sum())
                sides.append((sizes, ids, list(islice(txt[j], b - a))))
            groups = [(("valid", None), is_valid)]
            is_train = kept & ~is_valid
            if multi:
                for k, r in enumerate(shards):
                    groups.append((("train", train_keys[k]), is_train & np.isin(train_rank, r)))
            else:
                sh = np.where(is_train, np.searchsorted(bounds, train_rank, side="right") - 1, -1)
                for k in np.unique(sh[sh >= 0]):
                    groups.append((("train", train_keys[k]), sh == k))
            for key, mask in groups:
                if not mask.any():
                    continue
                for j, (sizes, ids, lines) in enumerate(sides):
                    writers[key][j].add(sizes[mask], ids[np.repeat(mask, sizes)], b"".join(compress(lines, mask)))
    finally:
        for f in txt:
            f.close()
    out = {}
    for key, ws in writers.items():
        for w in ws:
            w.close()
        out[key] = (ws[0].items, sum(w.tokens for w in ws))
    return out


def split_ranks(n_kept: int, valid: np.ndarray, train_keys: list) -> dict:
    """Kept ranks of every output (for alignments, which are computed over all kept pairs at once)."""
    train = np.setdiff1d(np.arange(n_kept), valid)
    out = {("valid", None): valid}
    for k, r in enumerate(train_shards(len(train), len(train_keys)) if train_keys != [None] else [np.arange(len(train))]):
        out[("train", train_keys[k])] = train[r]
    return out
