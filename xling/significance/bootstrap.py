"""Paired bootstrap resampling over test examples, and over seeds when both systems have several.

Each system is given per-example sufficient statistics, one array per seed (``n_examples x k``), and
an aggregate that turns summed statistics into the corpus score (accuracy: ``100 * sum(correct) /
count``; seqeval precision: ``100 * correct / predicted``; BLEU: sacrebleu's n-gram counts). One
bootstrap replicate draws ``n`` example indices with replacement, the same for both systems (the
pairing), and, with several seeds, draws each system's seeds with replacement; a system's replicate
score is the mean over its drawn seeds of the score on the drawn examples.

Reported: the observed difference B - A (mean over seeds), the 95 % percentile interval of the
replicate differences, and a two-sided p-value for "no difference" by the shift method of the Moses /
sacrebleu paired bootstrap (Koehn 2004; Clark et al. 2011): the replicate differences are centred on
zero and ``p = (1 + #{|d_i - mean(d)| >= |observed|}) / (1 + n_samples)``. ``>=`` makes a system
compared with itself (every difference exactly 0) get p = 1. Written by hand: scipy's ``bootstrap``
resamples one statistic without the seed level or the shared example draw across systems, and
sacrebleu's test is for its own metrics only (it is used for BLEU, see :mod:`xling.significance.bleu`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Aggregate = Callable[[np.ndarray], np.ndarray]  # (..., k) summed statistics -> (...) scores


def mean_score(sums: np.ndarray) -> np.ndarray:
    """Statistics ``[value, 1]``: 100 x the mean value (accuracy, per-question F1, per-query nDCG)."""
    return 100.0 * sums[..., 0] / np.maximum(sums[..., 1], 1e-12)


def ratio_score(sums: np.ndarray) -> np.ndarray:
    """Statistics ``[correct, predicted]``: 100 x precision (seqeval precision, XGLUE's POS metric)."""
    return 100.0 * sums[..., 0] / np.maximum(sums[..., 1], 1e-12)


def f1_score(sums: np.ndarray) -> np.ndarray:
    """Statistics ``[correct, predicted, gold]``: 100 x F1 = 2 correct / (predicted + gold)."""
    return 100.0 * 2 * sums[..., 0] / np.maximum(sums[..., 1] + sums[..., 2], 1e-12)


AGGREGATES: dict[str, Aggregate] = {"mean": mean_score, "ratio": ratio_score, "f1": f1_score}


@dataclass
class PairedResult:
    score_a: float
    score_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n_examples: int
    seeds_a: int
    seeds_b: int
    n_samples: int

    def as_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def draws(n: int, seeds_a: int, seeds_b: int, n_samples: int, seed: int):
    """The replicate draws: example indices (n_samples x n) and seed indices of A and B."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_samples, n))
    sa = rng.integers(0, seeds_a, size=(n_samples, seeds_a)) if seeds_a > 1 else np.zeros((n_samples, 1), int)
    sb = rng.integers(0, seeds_b, size=(n_samples, seeds_b)) if seeds_b > 1 else np.zeros((n_samples, 1), int)
    return idx, sa, sb


def shift_p_value(replicate_diffs: np.ndarray, observed: float) -> float:
    centred = np.abs(replicate_diffs - replicate_diffs.mean())
    return float((1 + np.sum(centred >= abs(observed) - 1e-9)) / (1 + len(replicate_diffs)))


def _replicate_scores(stats: list[np.ndarray], agg: Aggregate, counts: np.ndarray, seed_draw: np.ndarray):
    """(n_samples,) replicate scores of one system: per seed the score on the drawn examples, then
    the mean over the drawn seeds."""
    per_seed = np.stack([agg(counts @ s) for s in stats], axis=1)  # n_samples x seeds
    return np.take_along_axis(per_seed, seed_draw, axis=1).mean(1)


def paired_bootstrap(stats_a: list[np.ndarray], stats_b: list[np.ndarray], agg: Aggregate,
                     n_samples: int = 1000, seed: int = 12345) -> PairedResult:
    """``stats_a`` / ``stats_b``: one ``n x k`` array per seed, rows in the same example order."""
    n = stats_a[0].shape[0]
    if any(s.shape[0] != n for s in [*stats_a, *stats_b]):
        raise ValueError("both systems need statistics for the same examples")
    idx, sa, sb = draws(n, len(stats_a), len(stats_b), n_samples, seed)
    counts = np.zeros((n_samples, n))
    np.add.at(counts, (np.arange(n_samples)[:, None], idx), 1.0)
    a = float(np.mean([agg(s.sum(0)) for s in stats_a]))
    b = float(np.mean([agg(s.sum(0)) for s in stats_b]))
    d = _replicate_scores(stats_b, agg, counts, sb) - _replicate_scores(stats_a, agg, counts, sa)
    lo, hi = np.percentile(d, [2.5, 97.5])
    return PairedResult(a, b, b - a, float(lo), float(hi), shift_p_value(d, b - a), n, len(stats_a),
                        len(stats_b), n_samples)
