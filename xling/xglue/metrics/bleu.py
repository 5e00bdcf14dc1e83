"""Corpus BLEU for the generation tasks (QG, NTG), exactly as the official XGLUE scorer computes it:
sacrebleu's corpus BLEU with one reference, lowercased, 13a tokenization, default exponential
smoothing. sacrebleu's own signature is kept so every report can print it.
"""
from __future__ import annotations

from xling.xglue.metrics.base import Metric


class Bleu(Metric):
    name = "bleu"

    def __init__(self, lowercase: bool = True, tokenize: str = "13a"):
        self.lowercase, self.tokenize = lowercase, tokenize
        self._bleu = None

    def _metric(self):
        if self._bleu is None:
            from sacrebleu.metrics import BLEU

            self._bleu = BLEU(lowercase=self.lowercase, tokenize=self.tokenize)
        return self._bleu

    def score(self, gold, pred) -> float:
        """gold: one reference string per example; pred: one hypothesis string per example."""
        if len(gold) != len(pred):
            raise ValueError(f"{len(pred)} hypotheses for {len(gold)} references")
        self._scored = True
        return float(self._metric().corpus_score(list(pred), [list(gold)]).score)

    def signature(self) -> str:
        m = self._metric()
        if not getattr(self, "_scored", False):  # sacrebleu knows nrefs only once it has scored
            m.corpus_score(["x"], [["x"]])
        return f"metric:{self.name}|sacrebleu:{m.get_signature()}"
