"""Alignment error rate with sure and possible links (Och & Ney 2003).

P = |A∩P| / |A|, R = |A∩S| / |S|, AER = 1 - (|A∩S| + |A∩P|) / (|A| + |S|), summed over the corpus.
Written by hand: three set counts; no maintained library scores Pharaoh files.
"""
from __future__ import annotations

from pathlib import Path

from xling.align.pharaoh import read_pharaoh
from xling.errors import XlingError


def score_alignments(pred, gold) -> dict:
    """``pred``: list of link sets; ``gold``: list of ``(sure, possible)``. Returns P, R, AER, F1."""
    a_s = a_p = n_a = n_s = 0
    for links, (sure, possible) in zip(pred, gold):
        a = set(links)
        possible = possible | sure
        a_s += len(a & sure)
        a_p += len(a & possible)
        n_a += len(a)
        n_s += len(sure)
    p = a_p / n_a if n_a else 0.0
    r = a_s / n_s if n_s else 0.0
    aer = 1.0 - (a_s + a_p) / (n_a + n_s) if (n_a + n_s) else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "aer": aer, "f1": f1, "pairs": len(gold),
            "pred_links": n_a, "sure_links": n_s}


def _check_range(al, bounds, path, what):
    for n, ((sure, possible), (ns, nt)) in enumerate(zip(al, bounds), 1):
        for i, j in possible | sure:
            if i >= ns or j >= nt:
                raise XlingError(f"{what} link {i}-{j} (0-indexed) is out of range for a pair of {ns} x {nt} "
                                 "words", file=path, line=n,
                                 fix="check the indexing (--gold-one-indexed) and that the files match")


def score_files(pred: str | Path, gold: str | Path, *, gold_one_indexed: bool = False,
                pred_one_indexed: bool = False, lengths: list[tuple[int, int]] | None = None) -> dict:
    """Score a predicted Pharaoh file against a gold file; ``lengths`` enables range checks."""
    p = read_pharaoh(pred, "prediction file", one_indexed=pred_one_indexed)
    g = read_pharaoh(gold, "gold file", one_indexed=gold_one_indexed)
    if len(p) != len(g):
        raise XlingError(f"prediction has {len(p)} lines but gold {gold} has {len(g)} lines", file=pred,
                         fix="score a prediction made for exactly the gold sentence pairs")
    if lengths is not None:
        if len(lengths) != len(g):
            raise XlingError(f"text has {len(lengths)} pairs but gold has {len(g)} lines", file=gold)
        _check_range(g, lengths, gold, "gold")
        _check_range(p, lengths, pred, "predicted")
    res = score_alignments([s for s, _ in p], g)
    res["warnings"] = []
    if not gold_one_indexed and looks_one_indexed(g):
        res["warnings"].append(f"gold indices look 1-based: no link of {gold} uses index 0 (source or target); "
                               "if the file counts from 1, add --gold-one-indexed")
    return res


def looks_one_indexed(al, min_links: int = 10) -> bool:
    """True when a file with enough links never uses index 0 on either side (0-based gold nearly always does)."""
    links = [x for sure, possible in al for x in possible | sure]
    return len(links) >= min_links and min(i for i, _ in links) >= 1 and min(j for _, j in links) >= 1
