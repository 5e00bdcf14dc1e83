"""Demo data: real parallel text from the gettext catalogs shipped in Django's wheel.

Django (BSD-3-Clause, translations included) ships ``.po`` catalogs for ~100 languages; each
``msgid`` (English) with its ``msgstr`` is a human translation. The wheel comes from PyPI (the only
reachable source), pinned for reproducibility, and is cached. polib parses the catalogs.
"""
from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

from xling.errors import XlingError
from xling.io import write_json_atomic, write_lines_atomic

DJANGO = "django==5.2.19"
# xling language code -> Django locale directory
DEMO_LANGS = {"de": "de", "es": "es", "fr": "fr", "ru": "ru", "zh": "zh_Hans", "ja": "ja", "ar": "ar", "hi": "hi"}
_FORMAT = re.compile(r"%(\([^)]*\))?[sdifr]|\{[^}]*\}|<[^>]+>")


def fetch_wheel(cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob("Django-*.whl")) + sorted(cache.glob("django-*.whl"))
    if found:
        return found[0]
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d",
                        str(cache), DJANGO], capture_output=True, text=True)
    found = sorted(cache.glob("[Dd]jango-*.whl"))
    if r.returncode != 0 or not found:
        raise XlingError(f"could not download {DJANGO} from the package index: {r.stderr.strip()[-300:]}",
                         file=cache, fix="check that pip can reach PyPI, or put the wheel in the cache dir")
    return found[0]


def _clean(s: str) -> str:
    s = _FORMAT.sub(" ", s).replace("_", " ")
    return " ".join(s.split())


def extract_pairs(wheel: Path, out: Path, langs: dict[str, str] = DEMO_LANGS) -> dict[str, int]:
    """Write ``out/django.XX-en.{XX,en}`` for each language; return pair counts. Cached."""
    import polib

    done = {lg: out / f"django.{lg}-en.{lg}" for lg in langs}
    if all(p.exists() for p in done.values()) and (out / "SOURCE.json").exists():
        return {lg: sum(1 for _ in open(p, encoding="utf-8")) for lg, p in done.items()}
    z = zipfile.ZipFile(wheel)
    counts = {}
    for lg, loc in langs.items():
        src, tgt, seen = [], [], set()
        for name in sorted(n for n in z.namelist() if f"/locale/{loc}/LC_MESSAGES/" in n and n.endswith(".po")):
            for e in polib.pofile(z.read(name).decode("utf-8")):
                if e.obsolete or "fuzzy" in e.flags or e.msgid_plural or not e.msgstr:
                    continue
                a, b = _clean(e.msgid), _clean(e.msgstr)
                if len(a) < 2 or len(b) < 1 or (a, b) in seen:
                    continue
                seen.add((a, b))
                src.append(a)
                tgt.append(b)
        write_lines_atomic(out / f"django.{lg}-en.en", src)
        write_lines_atomic(done[lg], tgt)
        counts[lg] = len(src)
    write_json_atomic(out / "SOURCE.json", {"package": DJANGO, "wheel": wheel.name, "license": "BSD-3-Clause",
                                            "what": "gettext catalogs (msgid English, msgstr translation)",
                                            "pairs": counts})
    return counts
