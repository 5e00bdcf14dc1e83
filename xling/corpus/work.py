"""The per-chunk work that runs in the worker processes: decode, clean, hash, encode.

Chunks are independent and results come back in input order, so any number of workers writes the
same output as one. A result holds only the non-empty lines (pairs: both sides non-empty).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from xling.corpus.clean import _format_chars, clean_line, hash_lines, hash_pairs
from xling.corpus.textenc import TextEncoder

_ENC: Optional[TextEncoder] = None


def init_worker(vocab_dir: str, num_threads: int) -> None:
    global _ENC
    _ENC = TextEncoder(vocab_dir, num_threads, check=False)
    _format_chars()


@dataclass
class Side:
    texts: bytes  # cleaned lines, each ending in "\n"
    sizes: np.ndarray  # int32, pieces + </s>
    ids: np.ndarray  # all ids, dataset dtype


@dataclass
class ChunkResult:
    lines: int  # input lines in the chunk
    hashes: np.ndarray  # uint64 per kept (non-empty) line or pair
    sides: list[Side]


def _lines(data: bytes) -> list[str]:
    lines = data.decode("utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def _side(texts: list[str]) -> Side:
    sizes, ids = _ENC.encode_flat(texts)
    return Side("".join(t + "\n" for t in texts).encode("utf-8"), sizes, ids)


def process_chunk(payload: tuple) -> ChunkResult:
    kind = payload[0]
    if kind == "text":
        lines = [clean_line(x) for x in _lines(payload[1])]
        kept = [x for x in lines if x]
        return ChunkResult(len(lines), hash_lines(kept), [_side(kept)])
    if kind == "pair":
        a, b = _lines(payload[1]), _lines(payload[2])
    else:
        a, b = zip(*(ln.split("|||") for ln in _lines(payload[1]))) if payload[1] else ((), ())
    if kind in ("side0", "side1"):
        side = [clean_line(x) for x in (a if kind == "side0" else b)]
        kept = [x for x in side if x]
        return ChunkResult(len(a), hash_lines(kept), [_side(kept)])
    pairs = [(x, y) for x, y in ((clean_line(x), clean_line(y)) for x, y in zip(a, b)) if x and y]
    src, tgt = [p[0] for p in pairs], [p[1] for p in pairs]
    return ChunkResult(len(a), hash_pairs(src, tgt), [_side(src), _side(tgt)])
