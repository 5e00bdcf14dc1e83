"""WPR: mean nDCG over queries; a query is a run of equal query text; queries with < 2 docs are skipped.

Written by hand (a dozen lines) as sklearn is not a dependency: DCG = sum (2^rel - 1) / log2(rank + 1).
"""
import math

from xling.xglue.metrics.base import Metric


def _dcg(rels):
    return sum((2 ** r - 1) / math.log2(i + 2) for i, r in enumerate(rels))


def ndcg(rels_in_pred_order, rels):
    ideal = _dcg(sorted(rels, reverse=True))
    return _dcg(rels_in_pred_order) / ideal if ideal > 0 else 0.0


class Ndcg(Metric):
    name = "ndcg"

    def score(self, gold, pred) -> float:
        """gold: list of (query, relevance); pred: list of scores, same order."""
        groups, vals = [], []
        for i, (q, _r) in enumerate(gold):
            if groups and gold[groups[-1][-1]][0] == q:
                groups[-1].append(i)
            else:
                groups.append([i])
        for g in groups:
            if len(g) < 2:
                continue
            rels = [float(gold[i][1]) for i in g]
            order = sorted(g, key=lambda i: -float(pred[i]))
            vals.append(ndcg([float(gold[i][1]) for i in order], rels))
        return 100.0 * sum(vals) / max(len(vals), 1)
