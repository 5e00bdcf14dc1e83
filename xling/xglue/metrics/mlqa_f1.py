"""MLQA F1: token F1 after MLQA's language-specific normalization, max over gold answers, mean over
questions. Written by hand after the MLQA evaluation script's rules (lowercase, drop Unicode
punctuation, drop per-language articles, whitespace tokens; zh/ja-style text split per CJK character),
because that script is not packaged.
"""
from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections import Counter

from xling.xglue.metrics.base import Metric

PUNCT = {chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")} | set(
    string.punctuation)
ARTICLES = {
    "en": r"\b(a|an|the)\b", "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "ar": r"\sال^|ال", "hi": None, "zh": None,
}


def _tokens(text: str, lang: str) -> list[str]:
    if lang == "zh":
        out, buf = [], ""
        for ch in text:
            if re.match(r"[\u4e00-\u9fff\uff00-\uffef]", ch) or ch in PUNCT:
                if buf.strip():
                    out += buf.split()
                buf = ""
                out.append(ch)
            else:
                buf += ch
        if buf.strip():
            out += buf.split()
        return out
    return text.split()


def normalize(text: str, lang: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in PUNCT)
    art = ARTICLES.get(lang)
    if art:
        text = re.sub(art, " ", text)
    return " ".join(_tokens(text, lang))


def f1(pred: str, gold: str, lang: str) -> float:
    p, g = normalize(pred, lang).split(), normalize(gold, lang).split()
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    prec, rec = same / len(p), same / len(g)
    return 2 * prec * rec / (prec + rec)


class MlqaF1(Metric):
    name = "mlqa_f1"

    def __init__(self, lang: str = "en"):
        self.lang = lang

    def score(self, gold, pred) -> float:
        """gold: {qid: [answers]}; pred: {qid: answer}. Unanswered questions count 0."""
        vals = [max(f1(pred.get(q, ""), a, self.lang) for a in answers) for q, answers in gold.items()]
        return 100.0 * sum(vals) / max(len(vals), 1)
