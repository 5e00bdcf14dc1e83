"""MLQA F1, as the official XGLUE scorer computes it (it calls MLQA's own evaluation script, v1).

Per question: token F1 between the predicted and each gold answer after MLQA's normalization, the
best over the gold answers; per language: the mean over every question of the gold file, a question
without a prediction counting 0. Normalization, in MLQA's order: lowercase; drop every character
whose Unicode category is P* and ASCII punctuation; drop the language's articles (en a/an/the,
es un/una/unos/unas/el/la/los/las, de ein/eine/.../des, vi của/là/cái/chiếc/những, ar the prefix ال;
none for hi and zh); tokens = whitespace split, except zh, where every CJK ideograph in
U+4E00-U+9FA5 (that range exactly) is a token of its own. Any other language is an error there, and
here. Written by hand because MLQA's script is not packaged.
"""
from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections import Counter

from xling.errors import XlingError
from xling.xglue.metrics.base import Metric

PUNCT = frozenset({chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")}
                  | set(string.punctuation))
ARTICLES = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "ar": r"\sال^|ال",
    "hi": None,
    "zh": None,
}
CJK = re.compile(r"[\u4e00-\u9fa5]")  # MLQA's range: U+9FA6-U+9FFF and full-width forms are not split


def _mixed_segmentation(text: str) -> list[str]:
    out, buf = [], ""
    for ch in text:
        if CJK.match(ch) or ch in PUNCT:
            out += buf.split()
            buf = ""
            out.append(ch)
        else:
            buf += ch
    return out + buf.split()


def normalize(text: str, lang: str) -> str:
    if lang not in ARTICLES:
        raise XlingError(f"MLQA F1 has no normalization for language {lang!r}",
                         fix="MLQA languages: " + " ".join(ARTICLES))
    text = "".join(ch for ch in text.lower() if ch not in PUNCT)
    if ARTICLES[lang]:
        text = re.sub(ARTICLES[lang], " ", text)
    tokens = _mixed_segmentation(text) if lang == "zh" else text.split()
    return " ".join(t for t in tokens if t.strip())


def f1(pred: str, gold: str, lang: str) -> float:
    p, g = normalize(pred, lang).split(), normalize(gold, lang).split()
    same = sum((Counter(p) & Counter(g)).values())
    if same == 0:
        return 0.0
    prec, rec = same / len(p), same / len(g)
    return 2 * prec * rec / (prec + rec)


def exact_match(pred: str, gold: str, lang: str) -> float:
    return float(normalize(pred, lang) == normalize(gold, lang))


class MlqaF1(Metric):
    name = "mlqa_f1"

    def __init__(self, lang: str = "en"):
        self.lang = lang

    def score(self, gold, pred) -> float:
        """gold: [(qid, [answer texts])] in file order (or a {qid: answers} dict); pred: {qid: answer}.
        Every gold question counts; an unanswered one scores 0; predictions for other ids are ignored."""
        items = list(gold.items()) if isinstance(gold, dict) else list(gold)
        vals = [max(f1(pred[q], a, self.lang) for a in answers) if q in pred else 0.0 for q, answers in items]
        return 100.0 * sum(vals) / max(len(vals), 1)

    def signature(self) -> str:
        return f"metric:{self.name}|mlqa_evaluation_v1"
