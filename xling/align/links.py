"""Links of many sentence pairs as flat numpy arrays: parsing eflomal's output, writing Pharaoh text.

Written by hand (numpy byte-level parsing and a table of link strings) because reading and writing
Pharaoh lines one Python object at a time cost more than the symmetrization itself.
"""
from __future__ import annotations

from itertools import islice
from typing import BinaryIO, Iterator

import numpy as np

_TO_SPACE = bytes.maketrans(b"-\n", b"  ")
_SMALL = 128
_LINK_SP = np.array([f"{i}-{j} " for i in range(_SMALL) for j in range(_SMALL)], dtype=object)


def parse_links(block: bytes, n_lines: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sid, i, j)`` of ``n_lines`` Pharaoh lines of ``i-j`` links (sure links only, as eflomal writes)."""
    raw = np.frombuffer(block, np.uint8)
    nl = np.flatnonzero(raw == 10)
    if len(nl) != n_lines:
        raise ValueError(f"expected {n_lines} lines of links, found {len(nl)}")
    dashes = np.cumsum(raw == 45)
    per_line = np.diff(np.concatenate(([0], dashes[nl]))) if len(nl) else np.zeros(0, np.int64)
    nums = np.fromstring(block.translate(_TO_SPACE), dtype=np.int64, sep=" ") if per_line.sum() else \
        np.zeros(0, np.int64)
    sid = np.repeat(np.arange(n_lines), per_line)
    return sid, nums[0::2], nums[1::2]


def read_link_lines(f: BinaryIO, n_lines: int) -> bytes:
    block = b"".join(islice(f, n_lines))
    if block and not block.endswith(b"\n"):
        block += b"\n"
    return block


def format_pharaoh(n_pairs: int, sid: np.ndarray, i: np.ndarray, j: np.ndarray) -> str:
    """Pharaoh text (one line per pair, links sorted as given) of ``(sid, i, j)`` sorted by ``sid``."""
    if len(sid) == 0:
        return "\n" * n_pairs
    small = (i < _SMALL) & (j < _SMALL)
    parts = np.empty(len(sid), dtype=object)
    parts[small] = _LINK_SP[(i[small] * _SMALL + j[small])]
    for k in np.flatnonzero(~small):
        parts[k] = f"{i[k]}-{j[k]} "
    counts = np.bincount(sid, minlength=n_pairs)
    last = np.cumsum(counts)[counts > 0] - 1
    parts[last] = [t[:-1] + "\n" for t in parts[last].tolist()]
    slots = np.maximum(counts, 1)  # an empty pair still takes one slot: its line end
    start = np.concatenate(([0], np.cumsum(slots)[:-1]))
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    out = np.full(int(slots.sum()), "\n", dtype=object)
    out[start[sid] + np.arange(len(sid)) - first[sid]] = parts
    return "".join(out.tolist())


class Alignments:
    """Word alignments of many pairs in three flat arrays; indexable like a list of ``[(i, j), ...]``."""

    def __init__(self, offsets: np.ndarray, src: np.ndarray, tgt: np.ndarray):
        self.offsets, self.src, self.tgt = offsets, src, tgt

    @classmethod
    def concat(cls, parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]) -> "Alignments":
        """Build from ``(n_pairs, sid, i, j)`` chunks in order."""
        counts = [np.bincount(s, minlength=n) for n, s, _, _ in parts] or [np.zeros(0, np.int64)]
        offsets = np.zeros(sum(len(c) for c in counts) + 1, np.int64)
        np.cumsum(np.concatenate(counts), out=offsets[1:])
        cat = (lambda k: np.concatenate([p[k] for p in parts]).astype(np.int32) if parts else np.zeros(0, np.int32))
        return cls(offsets, cat(2), cat(3))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, k: int) -> list[tuple[int, int]]:
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(k)
        a, b = self.offsets[k], self.offsets[k + 1]
        return list(zip(self.src[a:b].tolist(), self.tgt[a:b].tolist()))

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for k in range(len(self)):
            yield self[k]

    def take(self, indices) -> "Alignments":
        """The alignments of the pairs at ``indices``, in that order (e.g. one split of a corpus)."""
        idx = np.asarray(indices, np.int64)
        counts = self.offsets[idx + 1] - self.offsets[idx]
        sel = np.repeat(self.offsets[idx] - np.concatenate(([0], np.cumsum(counts)[:-1])), counts) + \
            np.arange(counts.sum())
        offsets = np.zeros(len(idx) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        return Alignments(offsets, self.src[sel], self.tgt[sel])

    def pharaoh_text(self) -> str:
        sid = np.repeat(np.arange(len(self)), np.diff(self.offsets))
        return format_pharaoh(len(self), sid, self.src.astype(np.int64), self.tgt.astype(np.int64))

    def n_links(self) -> int:
        return int(self.offsets[-1])
