"""seqeval-based tagging metrics, as the official XGLUE scorer calls them (default mode, micro average).

NER: seqeval F1. POS: seqeval *precision* on raw UPOS tags, which is not token accuracy: seqeval reads
the first character of a tag as its chunk prefix and the rest as its type (``NOUN`` = prefix ``N``,
type ``OUN``), so a run of equal tags is one chunk, tags starting with ``S`` (SYM, SCONJ) are
single-word chunks, INTJ continues (``I``), and precision counts predicted chunks that match a gold
chunk exactly. We call seqeval itself so the chunking is the library's (its version is in the
signature; seqeval 1.x and 0.0.x chunk un-prefixed tags alike except adjacent CCONJ/SCONJ).
"""
import warnings

from xling.xglue.metrics.base import Metric


def _quiet(fn, gold, pred):
    with warnings.catch_warnings():  # seqeval warns for every tag without a B-/I- prefix (POS)
        warnings.simplefilter("ignore")
        return 100.0 * fn(gold, pred)


class _Seqeval(Metric):
    def signature(self) -> str:
        from importlib.metadata import version

        return f"metric:{self.name}|seqeval:{version('seqeval')}"


class SeqevalF1(_Seqeval):
    name = "seqeval_f1"

    def score(self, gold, pred) -> float:
        from seqeval.metrics import f1_score

        return _quiet(f1_score, gold, pred)


class SeqevalPrecision(_Seqeval):
    name = "seqeval_precision"

    def score(self, gold, pred) -> float:
        from seqeval.metrics import precision_score

        return _quiet(precision_score, gold, pred)
