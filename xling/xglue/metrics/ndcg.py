"""WPR: mean nDCG over queries, as the official XGLUE scorer computes it.

A query is a run of consecutive gold lines with equal query text (first column); queries with fewer
than 2 documents are skipped; each query's nDCG is scikit-learn's ``ndcg_score`` over all its documents
(linear gain ``rel / log2(rank + 1)``, no cut-off, tied predicted scores share their average gain),
and the task score is the plain mean over queries. scikit-learn is the official scorer's own
implementation and comes with seqeval.
"""
from xling.xglue.metrics.base import Metric


def query_groups(queries: list[str]) -> list[list[int]]:
    """Indices grouped into runs of equal query text (a query text seen again later is a new query)."""
    groups: list[list[int]] = []
    for i, q in enumerate(queries):
        if groups and queries[groups[-1][-1]] == q:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


class Ndcg(Metric):
    name = "ndcg"

    def score(self, gold, pred) -> float:
        """gold: list of (query, relevance); pred: list of scores, same order."""
        import numpy as np
        from sklearn.metrics import ndcg_score

        vals = []
        for g in query_groups([q for q, _r in gold]):
            if len(g) < 2:
                continue
            rel = np.asarray([[float(gold[i][1]) for i in g]])
            vals.append(ndcg_score(rel, np.asarray([[float(pred[i]) for i in g]])))
        return 100.0 * float(np.mean(vals)) if vals else 0.0

    def signature(self) -> str:
        import sklearn

        return f"metric:{self.name}|sklearn:{sklearn.__version__}"
