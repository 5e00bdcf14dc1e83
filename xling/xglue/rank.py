"""Web page ranking (WPR): a pointwise relevance score from the ``<s>`` state of ``<s> query </s></s>
title snippet </s>``, trained by regression on the 0-4 label; predictions are one score a line and
the metric is nDCG over each query's documents. Pointwise (not listwise) keeps batches independent
of query groups, so the shared fine-tuning loop drives it unchanged.
"""
from __future__ import annotations

from xling.xglue.classify import Classifier


class Ranker(Classifier):
    def __init__(self, encoder, spec):
        super().__init__(encoder, spec, n_out=1)

    def loss(self, batch):
        import torch

        target = torch.tensor([float(b[1]) for b in batch])
        return torch.nn.functional.mse_loss(self._logits(batch)[:, 0], target)

    def predict(self, examples) -> list[float]:
        return [float(v) for v in self._outputs(examples)[:, 0]]

    def score(self, examples, pred, lang):
        from xling.xglue.metrics import METRICS

        return METRICS[self.spec.metric]().score([(e[0][0], e[1]) for e in examples], pred)

    @staticmethod
    def format(preds) -> str:
        return "".join(f"{p:.6f}\n" for p in preds)
