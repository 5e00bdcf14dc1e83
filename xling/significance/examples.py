"""Per-example sufficient statistics of the XGLUE metrics, so that a bootstrap sample of examples
scores exactly as the official metric would score that sample.

- accuracy (NC, XNLI, PAWS-X, QADSM, QAM): one example a line, ``[correct, 1]``;
- seqeval precision / F1 (POS / NER): one sentence an example, ``[matching chunks, predicted chunks,
  gold chunks]`` from seqeval's own chunker; the corpus score is the same (seqeval joins sentences with
  an ``O`` between them, so no chunk crosses a sentence boundary);
- MLQA F1: one gold question an example, ``[best F1 over its answers, 1]`` (unanswered: 0);
- nDCG (WPR): one query an example (queries of one document are skipped, as the official scorer does);
- BLEU (QG, NTG): one line an example, sacrebleu's n-gram statistics (see :mod:`xling.significance.bleu`).

The files are read with :mod:`xling.xglue.readers` and scored with the metric modules of
:mod:`xling.xglue.metrics`, so the per-example numbers sum to the run's own scores (``runs`` checks that).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from xling.errors import XlingError


def _tag_stats(gold: list[list[str]], pred: list[list[str]]) -> np.ndarray:
    from seqeval.metrics.sequence_labeling import get_entities

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for g, p in zip(gold, pred):
            p = p + ["O"] * (len(g) - len(p))  # the official scorer pads short sentences with O
            tg, tp = set(get_entities(g)), set(get_entities(p))
            rows.append([len(tg & tp), len(tp), len(tg)])
    return np.asarray(rows, dtype=np.float64).reshape(-1, 3)


def example_stats(spec, gold_path: Path, pred_path: Path, lang: str, limit: int | None = None):
    """(statistics n x k, aggregate name, example count) of one prediction file against its gold.
    ``limit``: the run scored only the first ``limit`` gold examples (``--max-eval-examples``)."""
    from xling.xglue import readers

    fam = spec.family
    if fam == "tag":
        gold = [t for _w, t in readers.read_conll(gold_path)][:limit]
        pred = readers.read_tag_predictions(pred_path)
        _same_count(len(gold), len(pred), pred_path, "sentences")
        stats = _tag_stats(gold, pred)
        return (stats[:, :2], "ratio") if spec.metric == "seqeval_precision" else (stats, "f1")
    if fam == "generate":
        from xling.significance.bleu import sentence_stats

        gold = readers.generation_gold(gold_path)[:limit]
        hyps = readers.read_generation_pred(pred_path, len(gold))
        return sentence_stats(hyps, gold), "bleu"
    if fam == "qa":
        from xling.xglue.metrics.mlqa_f1 import f1

        qs = readers.read_squad(gold_path)[:limit]
        pred = readers.read_qa_predictions(pred_path)
        vals = [max(f1(pred[q["id"]], a, lang) for a in ([x["text"] for x in q["answers"]] or [""]))
                if q["id"] in pred else 0.0 for q in qs]
        return np.column_stack([vals, np.ones(len(vals))]), "mean"
    rows = readers.read_tsv_gold(spec, gold_path)[:limit]
    pred = [ln.strip() for ln in readers.file_lines(pred_path)]
    _same_count(len(rows), len(pred), pred_path, "lines")
    if fam == "rank":
        from sklearn.metrics import ndcg_score

        from xling.xglue.metrics.ndcg import query_groups

        vals = [ndcg_score(np.asarray([[float(rows[i][-1]) for i in g]]), np.asarray([[float(pred[i]) for i in g]]))
                for g in query_groups([r[0] for r in rows]) if len(g) >= 2]
        return np.column_stack([vals, np.ones(len(vals))]), "mean"
    correct = [float(r[-1].strip() == p) for r, p in zip(rows, pred)]
    return np.column_stack([correct, np.ones(len(correct))]), "mean"


def _same_count(n_gold: int, n_pred: int, path: Path, what: str) -> None:
    if n_gold != n_pred:
        raise XlingError(f"prediction has {n_pred} {what}, gold has {n_gold}", file=path,
                         fix="give the XGLUE data the run was evaluated on (--gold)")
