"""Language identification of generated text, for the off-target rate of the generation tasks.

Uses ``py3langid`` 0.4 (BSD-3-Clause; a maintained fork of langid.py whose naive Bayes model over byte
n-grams, 97 languages, ships inside the package: nothing is downloaded at run time). The identifier is
restricted to a fixed set, the 19 languages of XGLUE (:data:`LANGS`; plus the target language when it
is not one of them), whatever languages a run evaluates, so that one language's rate does not depend
on which other languages were run; the restriction keeps short outputs such as 5-word titles from
being read as some unrelated language of the 97.
"""
from __future__ import annotations

from functools import lru_cache

PACKAGE = "py3langid"
# every language of the XGLUE release (the union over its 11 tasks): the identifier's fixed label set
LANGS = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "it", "nl", "pl", "pt", "ru", "sw", "th", "tr", "ur",
         "vi", "zh")


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


def candidates(lang: str) -> tuple[str, ...]:
    """The identifier's label set for outputs meant to be in ``lang``: :data:`LANGS` (+ ``lang``)."""
    return tuple(sorted(set(LANGS) | {base_code(lang)}))


def identify(texts: list[str], lang: str) -> list[str | None]:
    """The language code of each text (None for an empty one), among :func:`candidates` of ``lang``."""
    ident, _known = _identifier(candidates(lang))
    return [ident.classify(t)[0] if t.strip() else None for t in texts]


def off_target_rate(texts: list[str], lang: str) -> float | None:
    """Percent of the non-empty ``texts`` identified as a language other than ``lang``; None when the
    identifier is not installed or does not know ``lang``."""
    if not available():
        return None
    code = base_code(lang)
    _ident, known = _identifier(candidates(lang))
    if code not in known:
        return None
    got = [g for g in identify(texts, lang) if g is not None]
    return 100.0 * sum(g != code for g in got) / len(got) if got else 0.0


def signature() -> str:
    if not available():
        return "langid:unavailable"
    from importlib.metadata import version

    return f"langid:{PACKAGE}-{version(PACKAGE)}+xglue{len(LANGS)}"
