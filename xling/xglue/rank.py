"""Web page ranking (WPR): a pointwise relevance score from the ``<s>`` state of ``<s> query </s></s>
title snippet </s>``, trained by regression on the 0-4 label; predictions are one score a line and
the metric is nDCG over each query's documents. Pointwise (not listwise) keeps batches independent
of query groups, so the shared fine-tuning loop drives it unchanged.
"""
from __future__ import annotations

from xling.xglue.classify import Classifier


class Ranker(Classifier):
    n_out = 1

    def target(self, items: list):
        import torch

        return torch.tensor([float(e[1]) for e in items])

    def loss(self, model, batch: dict):
        import torch

        return torch.nn.functional.mse_loss(model(**batch["net_input"])[:, 0], batch["target"])

    def predict(self, model, loaded) -> list[float]:
        return [float(v) for v in self.outputs(model, loaded)[:, 0]]

    def score(self, loaded, predictions, lang: str) -> float:
        from xling.xglue.metrics import METRICS

        return METRICS[self.spec.metric]().score([(e[0][0], e[1]) for e in loaded], predictions)

    def format(self, predictions) -> str:
        return "".join(f"{p:.6f}\n" for p in predictions)
