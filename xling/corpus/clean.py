"""Line cleaning and the 64-bit line hashes that exact deduplication compares.

Cleaning: Unicode NFKC, control and format characters (categories Cc, Cf) dropped except
whitespace, whitespace runs collapsed to one space, stripped.

Hashes: the first 8 bytes of BLAKE2b over the cleaned line's UTF-8 (a pair: source, newline,
target; cleaned lines hold no newline, so the join is unambiguous). Two different lines share a hash
with probability 2^-64; over a corpus of ``n`` distinct lines the expected number of lines wrongly
dropped as duplicates is about ``n^2 / 2^65``: 3e-6 for 10 million lines, 3e-4 for 100 million,
0.03 for a billion.
"""
from __future__ import annotations

import functools
import hashlib
import re
import sys
import unicodedata

import numpy as np


@functools.lru_cache(maxsize=1)
def _format_chars() -> re.Pattern:
    """A character class of every Cc/Cf code point that is not whitespace (built once per process)."""
    bad = [chr(i) for i in range(sys.maxunicode + 1)
           if unicodedata.category(chr(i)) in ("Cc", "Cf") and not chr(i).isspace()]
    return re.compile("[" + "".join(re.escape(c) for c in bad) + "]")


def clean_line(s: str) -> str:
    """NFKC, control characters dropped, whitespace runs collapsed to one space, stripped."""
    s = _format_chars().sub("", unicodedata.normalize("NFKC", s))
    return " ".join(s.split())


def hash_lines(lines: list[str]) -> np.ndarray:
    """64-bit hashes (uint64) of cleaned lines, stable across processes and runs."""
    b2 = hashlib.blake2b
    return np.frombuffer(b"".join(b2(s.encode("utf-8"), digest_size=8).digest() for s in lines), dtype="<u8")


def hash_pairs(src: list[str], tgt: list[str]) -> np.ndarray:
    return hash_lines([a + "\n" + b for a, b in zip(src, tgt)])
