"""Language identification of generated text, for the off-target rate of the generation tasks.

Uses ``py3langid`` 0.4 (BSD-3-Clause; a maintained fork of langid.py whose naive Bayes model over byte
n-grams, 97 languages, ships inside the package: nothing is downloaded at run time). The identifier is
restricted to the languages of the evaluation (plus the training language), which keeps short
outputs such as 5-word titles from being read as some unrelated language.
"""
from __future__ import annotations

from functools import lru_cache

PACKAGE = "py3langid"


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec(PACKAGE) is not None


@lru_cache(maxsize=8)
def _identifier(langs: tuple[str, ...]):
    import logging

    logging.getLogger("py3langid").setLevel(logging.WARNING)  # fairseq sets the root logger to DEBUG
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE)  # py3langid 0.4's bundled model
    every = frozenset(ident.nb_classes)
    known = [lg for lg in langs if lg in every]
    if len(known) >= 2:
        ident.set_languages(known)
    return ident, every


def base_code(lang: str) -> str:
    """``zh-Hans`` -> ``zh``: the identifier knows ISO 639-1 codes."""
    return lang.replace("_", "-").split("-")[0].lower()


def identify(texts: list[str], candidates: list[str]) -> list[str | None]:
    """The language code of each text (None for an empty one), chosen among ``candidates``."""
    ident, _known = _identifier(tuple(sorted({base_code(c) for c in candidates})))
    return [ident.classify(t)[0] if t.strip() else None for t in texts]


def off_target_rate(texts: list[str], lang: str, candidates: list[str]) -> float | None:
    """Percent of the non-empty ``texts`` identified as a language other than ``lang``; None when the
    identifier is not installed or does not know ``lang``."""
    if not available():
        return None
    code = base_code(lang)
    _ident, known = _identifier(tuple(sorted({base_code(c) for c in candidates} | {code})))
    if code not in known:
        return None
    got = [g for g in identify(texts, list(candidates) + [code]) if g is not None]
    return 100.0 * sum(g != code for g in got) / len(got) if got else 0.0


def signature() -> str:
    if not available():
        return "langid:unavailable"
    from importlib.metadata import version

    return f"langid:{PACKAGE}-{version(PACKAGE)}"
