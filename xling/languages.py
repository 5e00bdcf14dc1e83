"""Language metadata (family, genus, script, ISO 639-3) and the ``--langs`` selectors built on it.

The table covers the languages of XGLUE, XTREME and ../shared/data (tatoeba, XGLUE-layout POS/NER/QA).
Sources: the family is Glottolog 4.8's top-level family (glottolog.org; "isolate" for Basque), the genus
WALS's genus (wals.info, Dryer 2013: Germanic, Romance, Slavic, Indic, ...), the script ISO 15924's code
of the script the benchmarks write the language in (names from pycountry's ISO 15924 table), and the
ISO 639-3 code and the name come from pycountry (ISO 639-3 tables), not from this file.

A selector is a comma-separated list of items, each a language code, ``family:NAME`` (a Glottolog
family or a WALS genus: ``family:romance``, ``family:indo-european``), ``genus:NAME``, ``script:NAME``
(an ISO 15924 code or name: ``script:cyrl``, ``script:cyrillic``) or ``all``; it picks from the
languages a command has (its inputs), in their order. Written by hand: no installed package carries
genus or the benchmarks' script per language (pycountry has codes and names only).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Iterable

from xling.errors import XlingError

# code: (Glottolog family, WALS genus, ISO 15924 script)
_TABLE: dict[str, tuple[str, str, str]] = {
    "af": ("Indo-European", "Germanic", "Latn"), "ar": ("Afro-Asiatic", "Semitic", "Arab"),
    "bg": ("Indo-European", "Slavic", "Cyrl"), "bn": ("Indo-European", "Indic", "Beng"),
    "de": ("Indo-European", "Germanic", "Latn"), "el": ("Indo-European", "Greek", "Grek"),
    "en": ("Indo-European", "Germanic", "Latn"), "es": ("Indo-European", "Romance", "Latn"),
    "et": ("Uralic", "Finnic", "Latn"), "eu": ("isolate", "Basque", "Latn"),
    "fa": ("Indo-European", "Iranian", "Arab"), "fi": ("Uralic", "Finnic", "Latn"),
    "fr": ("Indo-European", "Romance", "Latn"), "he": ("Afro-Asiatic", "Semitic", "Hebr"),
    "hi": ("Indo-European", "Indic", "Deva"), "hu": ("Uralic", "Ugric", "Latn"),
    "id": ("Austronesian", "Malayo-Sumbawan", "Latn"), "it": ("Indo-European", "Romance", "Latn"),
    "ja": ("Japonic", "Japanese", "Jpan"), "jv": ("Austronesian", "Javanese", "Latn"),
    "ka": ("Kartvelian", "Kartvelian", "Geor"), "kk": ("Turkic", "Turkic", "Cyrl"),
    "ko": ("Koreanic", "Korean", "Kore"), "ml": ("Dravidian", "Southern Dravidian", "Mlym"),
    "mr": ("Indo-European", "Indic", "Deva"), "ms": ("Austronesian", "Malayo-Sumbawan", "Latn"),
    "my": ("Sino-Tibetan", "Burmese-Lolo", "Mymr"), "nl": ("Indo-European", "Germanic", "Latn"),
    "pl": ("Indo-European", "Slavic", "Latn"), "pt": ("Indo-European", "Romance", "Latn"),
    "qu": ("Quechuan", "Quechuan", "Latn"), "ro": ("Indo-European", "Romance", "Latn"),
    "ru": ("Indo-European", "Slavic", "Cyrl"), "sw": ("Atlantic-Congo", "Bantoid", "Latn"),
    "ta": ("Dravidian", "Southern Dravidian", "Taml"), "te": ("Dravidian", "South-Central Dravidian", "Telu"),
    "th": ("Tai-Kadai", "Kam-Tai", "Thai"), "tl": ("Austronesian", "Greater Central Philippine", "Latn"),
    "tr": ("Turkic", "Turkic", "Latn"), "ur": ("Indo-European", "Indic", "Arab"),
    "vi": ("Austroasiatic", "Viet-Muong", "Latn"), "yo": ("Atlantic-Congo", "Defoid", "Latn"),
    "zh": ("Sino-Tibetan", "Chinese", "Hani"),
}
SOURCES = ("family: Glottolog 4.8 top-level family; genus: WALS (Dryer 2013); script: ISO 15924; "
           "ISO 639-3 code and name: pycountry")


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    iso639_3: str
    family: str
    genus: str
    script: str  # ISO 15924 code
    script_name: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _base(code: str) -> str:
    """The language subtag of a tag (``zh-Hans`` -> ``zh``), lower case."""
    return code.replace("_", "-").split("-")[0].lower()


def _script_name(code: str) -> str:
    import pycountry

    s = pycountry.scripts.get(alpha_4=code)
    return s.name.split(" (")[0] if s else code


@functools.lru_cache(maxsize=None)
def info(code: str) -> Language | None:
    """The metadata of ``code`` (a tag's language subtag decides), or None when the table lacks it."""
    base = _base(code)
    row = _TABLE.get(base)
    if row is None:
        return None
    import pycountry

    lang = pycountry.languages.get(alpha_2=base) or pycountry.languages.get(alpha_3=base)
    return Language(code, lang.name if lang else base, lang.alpha_3 if lang else base, *row, _script_name(row[2]))


def known() -> list[str]:
    return sorted(_TABLE)


def _norm(text: str) -> str:
    return text.strip().lower().replace(" ", "-").replace("_", "-")


def _matches(kind: str, value: str, lang: Language) -> bool:
    v = _norm(value)
    if kind == "family":
        return v in (_norm(lang.family), _norm(lang.genus))
    if kind == "genus":
        return v == _norm(lang.genus)
    return v in (_norm(lang.script), _norm(lang.script_name))


def _values(kind: str) -> list[str]:
    rows = [info(c) for c in _TABLE]
    if kind == "family":
        return sorted({_norm(r.family) for r in rows} | {_norm(r.genus) for r in rows})
    if kind == "genus":
        return sorted({_norm(r.genus) for r in rows})
    return sorted({_norm(r.script_name) for r in rows})


def is_selector(text: str | None) -> bool:
    """Whether ``text`` uses a ``family:``/``genus:``/``script:`` item or ``all`` (not plain codes)."""
    items = [t.strip().lower() for t in (text or "").split(",") if t.strip()]
    return any(":" in t or t == "all" for t in items)


def select(text: str, available: Iterable[str], what: str = "--langs") -> list[str]:
    """The languages of ``available`` (in its order) that the selector ``text`` picks; an item that picks
    nothing, an unknown family/genus/script or an available language without metadata (when a
    family/genus/script item must classify it) is one XlingError naming the fix."""
    avail = list(dict.fromkeys(available))
    items = [t.strip() for t in (text or "").split(",") if t.strip()]
    if not items:
        raise XlingError(f"{what} is empty", fix="give languages or selectors such as fr,de or family:romance")
    picked: set[str] = set()
    for item in items:
        if item.lower() == "all":
            picked.update(avail)
            continue
        if ":" not in item:
            if item not in avail:
                raise XlingError(f"{what}: {item!r} is not among the languages given ({', '.join(avail) or 'none'})",
                                 fix=f"choose from {','.join(avail)} or use family:/script: selectors")
            picked.add(item)
            continue
        kind, value = (p.strip() for p in item.split(":", 1))
        kind = kind.lower()
        if kind not in ("family", "genus", "script"):
            raise XlingError(f"{what}: unknown selector {kind + ':'!r} in {item!r}",
                             fix="use family:NAME, genus:NAME, script:NAME or language codes")
        codes = [_norm(r[2]) for r in _TABLE.values()] if kind == "script" else []
        if _norm(value) not in _values(kind) + codes:
            raise XlingError(f"{what}: unknown {kind} {value!r}", fix=f"known {kind} names: {', '.join(_values(kind))}")
        bare = [lg for lg in avail if info(lg) is None]
        if bare:
            raise XlingError(f"{what}: no family/script metadata for {', '.join(bare)} (xling.languages knows "
                             f"{len(_TABLE)} languages), so {item!r} cannot classify it",
                             fix=f"name the languages by code instead (e.g. {what} "
                                 f"{','.join(avail[:3])}) or leave {', '.join(bare)} out of the inputs")
        hits = [lg for lg in avail if _matches(kind, value, info(lg))]
        if not hits:
            raise XlingError(f"{what}: {item!r} picks none of the languages given ({', '.join(avail)})",
                             fix="check the selector against `xling.languages` (family, genus, script per language)")
        picked.update(hits)
    return [lg for lg in avail if lg in picked]


def resolve(text: str | None, available: Callable[[], Iterable[str]], what: str = "--langs") -> list[str] | None:
    """``--langs`` of a command: None when not given; plain codes as given (the command checks them as
    before); a selector resolved against ``available()`` (the command's inputs, read only then)."""
    if text is None or not text.strip():
        return None
    if not is_selector(text):
        return [t.strip() for t in text.split(",") if t.strip()]
    return select(text, available(), what)


def require(codes: Iterable[str], what: str) -> list[Language]:
    """The metadata of every code, or one XlingError naming those without it."""
    codes = list(codes)
    bare = [c for c in codes if info(c) is None]
    if bare:
        raise XlingError(f"{what}: no family/script metadata for {', '.join(bare)} (xling.languages knows "
                         f"{', '.join(known())})", fix=f"leave {', '.join(bare)} out of {what}")
    return [info(c) for c in codes]


def group_key(lang: Language) -> tuple:
    """Sort key that groups languages by family, then genus, then script."""
    return (lang.family, lang.genus, lang.script, lang.code)
