"""BLEU for ``eval compare``: sacrebleu's own sufficient statistics and its own paired bootstrap test.

The metric is configured as :class:`xling.xglue.metrics.bleu.Bleu` configures it (the official XGLUE
scorer: lowercased, 13a). The p-value of a single-seed comparison is sacrebleu's ``PairedTest`` with
``test_type="bs"`` (Moses' bootstrap-hypothesis-difference-significance); its signature is reported.
The confidence interval of the difference comes from resampling sacrebleu's per-sentence statistics
(what ``PairedTest`` resamples internally), with xling's draws, so that seeds can be resampled too.
"""
from __future__ import annotations

import numpy as np


def _metric():
    from sacrebleu.metrics import BLEU

    from xling.xglue.metrics.bleu import Bleu

    cfg = Bleu()
    return BLEU(lowercase=cfg.lowercase, tokenize=cfg.tokenize)


def sentence_stats(hyps: list[str], refs: list[str]) -> np.ndarray:
    """n x k: per sentence, sacrebleu's BLEU statistics (hypothesis / reference length, matching and
    total n-grams for n = 1..4)."""
    return np.asarray(_metric()._extract_corpus_statistics(list(hyps), [list(refs)]), dtype=np.float64)


def bleu_score(sums: np.ndarray) -> np.ndarray:
    """Aggregate: corpus BLEU of summed statistics (any leading shape)."""
    m = _metric()
    flat = sums.reshape(-1, sums.shape[-1])
    vals = np.asarray([m._compute_score_from_stats(row.astype(int).tolist()).score for row in flat])
    return vals.reshape(sums.shape[:-1])


def paired_test(hyps_a: list[str], hyps_b: list[str], refs: list[str], n_samples: int) -> tuple[float, str]:
    """sacrebleu's paired bootstrap p-value for B against baseline A, and its signature. Identical
    outputs are not resampled: their difference is exactly 0 (p = 1; sacrebleu's strict ``>`` would
    give 1 / (n_samples + 1))."""
    from sacrebleu.significance import PairedTest

    test = PairedTest([("A", list(hyps_a)), ("B", list(hyps_b))], {"BLEU": _metric()}, [list(refs)],
                      test_type="bs", n_samples=n_samples)
    sigs, scores = test()
    sig = str(next(iter(sigs.values())).format())
    if list(hyps_a) == list(hyps_b):
        return 1.0, sig
    return float(scores["BLEU"][1].p_value), sig
