"""Shared metric base: a name, a 0-100 score, and a signature string."""
from __future__ import annotations


class Metric:
    name = "metric"

    def score(self, gold, pred) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def signature(self) -> str:
        return f"metric:{self.name}"
