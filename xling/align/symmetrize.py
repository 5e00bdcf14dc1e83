"""Symmetrization of two directional word alignments.

Written by hand: the heuristics (Koehn et al. 2003; as in Moses' ``symal`` and fast_align's
``atools``) are a few dozen lines and no maintained pure-Python package provides them.
Links are ``(i, j)`` pairs, source index first, in both directions.
"""
from __future__ import annotations

from xling.errors import XlingError

HEURISTICS = ("intersect", "union", "grow-diag", "grow-diag-final", "grow-diag-final-and")
_NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def _grow_diag(fwd: set, rev: set, union: set) -> set:
    a = fwd & rev
    src_done = {i for i, _ in a}
    tgt_done = {j for _, j in a}
    added = True
    while added:
        added = False
        for i, j in sorted(a):
            for di, dj in _NEIGHBOURS:
                n = (i + di, j + dj)
                if n in union and n not in a and (n[0] not in src_done or n[1] not in tgt_done):
                    a.add(n)
                    src_done.add(n[0])
                    tgt_done.add(n[1])
                    added = True
    return a


def _final(a: set, direction: set, both: bool) -> None:
    src_done = {i for i, _ in a}
    tgt_done = {j for _, j in a}
    for i, j in sorted(direction):
        ok = (i not in src_done and j not in tgt_done) if both else (i not in src_done or j not in tgt_done)
        if ok and (i, j) not in a:
            a.add((i, j))
            src_done.add(i)
            tgt_done.add(j)


def symmetrize(fwd, rev, heuristic: str = "grow-diag-final-and") -> list[tuple[int, int]]:
    """Combine forward and reverse links (both ``(src, tgt)``) into one sorted alignment."""
    f, r = set(map(tuple, fwd)), set(map(tuple, rev))
    if heuristic == "intersect":
        a = f & r
    elif heuristic == "union":
        a = f | r
    elif heuristic in ("grow-diag", "grow-diag-final", "grow-diag-final-and"):
        a = _grow_diag(f, r, f | r)
        if heuristic != "grow-diag":
            both = heuristic == "grow-diag-final-and"
            _final(a, f, both)
            _final(a, r, both)
    else:
        raise XlingError(f"unknown symmetrization heuristic {heuristic!r}",
                         fix=f"use one of {', '.join(HEURISTICS)}")
    return sorted(a)
