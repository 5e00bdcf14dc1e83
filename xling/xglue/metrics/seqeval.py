"""seqeval-based tagging metrics, as the official XGLUE scorer uses them.

NER: seqeval F1. POS: seqeval *precision* on raw UPOS tags: seqeval reads a tag without a B-/I- prefix
as a chunk type, so runs of equal tags merge into one chunk; this is intentional (official behaviour).
"""
import warnings

from xling.xglue.metrics.base import Metric


def _quiet(fn, gold, pred):
    with warnings.catch_warnings():  # seqeval warns for every tag without a B-/I- prefix (POS)
        warnings.simplefilter("ignore", UserWarning)
        return 100.0 * fn(gold, pred)


class SeqevalF1(Metric):
    name = "seqeval_f1"

    def score(self, gold, pred) -> float:
        from seqeval.metrics import f1_score

        return _quiet(f1_score, gold, pred)


class SeqevalPrecision(Metric):
    name = "seqeval_precision"

    def score(self, gold, pred) -> float:
        from seqeval.metrics import precision_score

        return _quiet(precision_score, gold, pred)
