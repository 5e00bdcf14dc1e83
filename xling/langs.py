"""Language codes: ISO 639-1 / 639-3 with optional script and region subtags (BCP 47 style)."""
from __future__ import annotations

import re

from xling.errors import XlingError

_TAG = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{4}))?(?:[-_]([A-Za-z]{2}|[0-9]{3}))?$")


def _is_language(code: str) -> bool:
    import pycountry

    code = code.lower()
    if len(code) == 2:
        return pycountry.languages.get(alpha_2=code) is not None
    return pycountry.languages.get(alpha_3=code) is not None


def _is_script(code: str) -> bool:
    import pycountry

    return pycountry.scripts.get(alpha_4=code.title()) is not None


def is_valid_lang(code: str) -> bool:
    m = _TAG.match(code)
    if not m:
        return False
    lang, script, region = m.groups()
    if not _is_language(lang):
        return False
    if script and not _is_script(script):
        return False
    return True


def check_lang(code: str, *, file: str | None = None, line: int | None = None, what: str = "language code") -> str:
    """Return ``code`` if it is a valid language tag, else raise an XlingError that explains the fix."""
    if not is_valid_lang(code):
        raise XlingError(
            f"{what} {code!r} is not an ISO 639-1/639-3 code (optionally with a script or region "
            "subtag, e.g. zh-Hans, pt-BR)", file=file, line=line,
            fix="use a code such as en, fr, zh, zh-Hans, yue or ast")
    return code


def parse_lang_list(text: str, what: str = "--langs") -> list[str]:
    langs = [t.strip() for t in text.split(",") if t.strip()]
    if not langs:
        raise XlingError(f"{what} is empty", fix="give a comma-separated list such as fr,de")
    for lg in langs:
        check_lang(lg, what=f"{what} entry")
    return langs
