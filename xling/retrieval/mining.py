"""Bitext mining scored as BUCC 2018 is: precision, recall and F1 of the mined pairs at the best threshold.

Candidates (LASER's ``max`` retrieval, as XTREME mines BUCC): every source sentence's best target
and every target sentence's best source, sorted by score, taken greedily so that no sentence is in
two pairs. A pair is mined when its score is at least the threshold; the threshold reported is the
one with the best F1 against the gold (XTREME picks it the same way on BUCC's sample/dev split),
the midpoint between the last kept and the first dropped candidate's score.
"""
from __future__ import annotations

from dataclasses import dataclass

from xling.retrieval.similarity import Neighbours


@dataclass
class Candidate:
    src: int
    tgt: int
    score: float


def candidates(fwd: Neighbours, bwd: Neighbours) -> list[Candidate]:
    """One-to-one candidate pairs, best score first."""
    pool = [(s, i, j) for i, (j, s) in enumerate(zip(fwd.index, fwd.score))]
    pool += [(s, i, j) for j, (i, s) in enumerate(zip(bwd.index, bwd.score))]
    pool.sort(key=lambda t: (-t[0], t[1], t[2]))
    seen_src, seen_tgt, out = set(), set(), []
    for s, i, j in pool:
        if i in seen_src or j in seen_tgt:
            continue
        seen_src.add(i)
        seen_tgt.add(j)
        out.append(Candidate(i, j, float(s)))
    return out


def best_threshold(cands: list[Candidate], gold: set[tuple[int, int]]) -> dict:
    """P/R/F1 (0-100) at the threshold that maximises F1; ``kept``: how many candidates it keeps."""
    best = {"f1": 0.0, "precision": 0.0, "recall": 0.0, "kept": 0,
            "threshold": (cands[0].score + 1e-6) if cands else 0.0}
    tp = 0
    for n, c in enumerate(cands, 1):
        tp += (c.src, c.tgt) in gold
        if n < len(cands) and cands[n].score == c.score:
            continue  # a threshold cannot split equal scores
        p, r = tp / n, tp / max(len(gold), 1)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if f1 > best["f1"]:
            nxt = cands[n].score if n < len(cands) else c.score - 1e-6
            best = {"f1": f1, "precision": p, "recall": r, "kept": n, "threshold": (c.score + nxt) / 2}
    return {k: (100 * v if k in ("f1", "precision", "recall") else v) for k, v in best.items()}


def per_source_outcomes(cands: list[Candidate], gold: set[tuple[int, int]], n_src: int,
                        threshold: float) -> list[list[int]]:
    """Per source sentence ``[true positives, mined pairs, gold pairs]`` at ``threshold``: F1 over any
    sample of source sentences is ``2 tp / (mined + gold)`` summed over it (what ``eval compare``
    resamples)."""
    rows = [[0, 0, 0] for _ in range(n_src)]
    for i, _j in gold:
        rows[i][2] += 1
    for c in cands:
        if c.score >= threshold:
            rows[c.src][1] += 1
            rows[c.src][0] += (c.src, c.tgt) in gold
    return rows
