"""Nearest neighbours between two sets of sentence embeddings, by cosine or by ratio margin.

Ratio margin (Artetxe & Schwenk, 2019, "Margin-based parallel corpus mining with multilingual
sentence embeddings"): ``margin(x, y) = cos(x, y) / ((mean cos of x to its k nearest y) / 2 +
(mean cos of y to its k nearest x) / 2)``, k = 4 by default. It discounts "hub" sentences that are
close to everything. The score is symmetric, so both directions share the denominators. Every
candidate is scored (an exact arg-max, not a re-ranking of the k cosine neighbours), in chunks of
queries on the chosen device so that large collections (BUCC: hundreds of thousands of sentences)
fit in memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xling.errors import XlingError

Similarity = Literal["cosine", "margin"]
CHUNK_ELEMENTS = 1 << 25  # similarity entries computed at once (128 MiB in float32)


@dataclass
class Neighbours:
    """Best match of every query: ``index`` into the other side and its ``score``."""
    index: list[int]
    score: list[float]


def _normalize(x, device):
    import torch

    return torch.nn.functional.normalize(x.to(device=device, dtype=torch.float32), dim=-1)


def _chunks(n_query: int, n_db: int):
    step = max(1, CHUNK_ELEMENTS // max(n_db, 1))
    for i in range(0, n_query, step):
        yield i, min(n_query, i + step)


def knn_mean(q, db, k: int):
    """Mean cosine of each (normalized) query to its ``k`` nearest (normalized) rows of ``db``."""
    import torch

    k = min(k, db.shape[0])
    out = torch.empty(q.shape[0], device=q.device)
    for a, b in _chunks(q.shape[0], db.shape[0]):
        out[a:b] = (q[a:b] @ db.T).topk(k, dim=1).values.mean(1)
    return out


class Scorer:
    """Cosine or ratio-margin scores between embeddings ``x`` (N x C) and ``y`` (M x C)."""

    def __init__(self, x, y, similarity: Similarity = "cosine", k: int = 4, device="cpu"):
        if similarity not in ("cosine", "margin"):
            raise XlingError(f"unknown similarity {similarity!r}", fix="cosine or margin")
        if k < 1:
            raise XlingError("--margin-k must be at least 1")
        self.x, self.y = _normalize(x, device), _normalize(y, device)
        self.similarity, self.k = similarity, k
        if similarity == "margin":
            self.rx, self.ry = knn_mean(self.x, self.y, k), knn_mean(self.y, self.x, k)

    def _best(self, q, db, rq, rdb) -> Neighbours:
        import torch

        idx = torch.empty(q.shape[0], dtype=torch.long, device=q.device)
        val = torch.empty(q.shape[0], device=q.device)
        for a, b in _chunks(q.shape[0], db.shape[0]):
            s = q[a:b] @ db.T
            if self.similarity == "margin":
                s = s / ((rq[a:b, None] + rdb[None, :]) / 2)
            val[a:b], idx[a:b] = s.max(dim=1)
        return Neighbours(idx.cpu().tolist(), val.cpu().tolist())

    def forward(self) -> Neighbours:
        """For every x its best y."""
        m = self.similarity == "margin"
        return self._best(self.x, self.y, self.rx if m else None, self.ry if m else None)

    def backward(self) -> Neighbours:
        """For every y its best x."""
        m = self.similarity == "margin"
        return self._best(self.y, self.x, self.ry if m else None, self.rx if m else None)

    def signature(self) -> str:
        return "cosine" if self.similarity == "cosine" else f"margin-ratio(k={self.k})"
