"""Word splitting for alignment.

Hand-written (a few lines of ``re``): ``whitespace`` splits on spaces; ``unicode`` also splits
punctuation off as separate tokens and splits CJK ideographs/kana one character a word, which is
what aligners expect for unsegmented Chinese/Japanese. Libraries (sacremoses, jieba) would add
language-specific dependencies for little gain on alignment quality.
"""
from __future__ import annotations

import re

from xling.errors import XlingError

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
# A word: a CJK character alone, or a run of word characters (letters, digits, marks, _) that may
# contain inner apostrophes/hyphens ("don't", "well-known"); anything else non-space is one token.
_UNICODE_RE = re.compile(rf"[{_CJK}]|(?:(?![{_CJK}])[\w\u0300-\u036f\u0900-\u0dff])+"
                         rf"(?:['’\-](?:(?![{_CJK}])[\w\u0300-\u036f\u0900-\u0dff])+)*|[^\w\s]")

TOKENIZERS = ("unicode", "whitespace")


def tokenize(line: str, tokenizer: str = "unicode", lowercase: bool = False) -> list[str]:
    """Split ``line`` into words with the named tokenizer."""
    if lowercase:
        line = line.lower()
    if tokenizer == "whitespace":
        return line.split()
    if tokenizer == "unicode":
        return _UNICODE_RE.findall(line)
    raise XlingError(f"unknown tokenizer {tokenizer!r}", fix=f"use one of {', '.join(TOKENIZERS)}")
