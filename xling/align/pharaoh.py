"""Pharaoh alignment files (``i-j`` sure, ``ipj`` possible): strict reading, atomic writing."""
from __future__ import annotations

from pathlib import Path

from xling.errors import XlingError
from xling.io import atomic_path, read_lines


def format_links(links) -> str:
    return " ".join(f"{i}-{j}" for i, j in links)


def write_pharaoh(path: str | Path, alignments) -> None:
    """Write one line per sentence pair atomically (temp file, then rename).

    ``alignments``: an :class:`~xling.align.links.Alignments` (fast path) or any iterable of link lists."""
    from xling.align.links import Alignments

    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            if isinstance(alignments, Alignments):
                f.write(alignments.pharaoh_text())
                return
            for links in alignments:
                f.write(format_links(links) + "\n")


def parse_pharaoh_line(text: str, *, path, line: int, one_indexed: bool = False):
    """Return ``(sure, possible)`` sets of 0-indexed ``(i, j)`` links; ``possible`` includes sure."""
    sure, possible = set(), set()
    for tok in text.split():
        sep = "-" if "-" in tok else ("p" if "p" in tok else None)
        parts = tok.split(sep) if sep else []
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise XlingError(f"malformed alignment link {tok!r}", file=path, line=line,
                             fix="write links as `i-j` (sure) or `ipj` (possible) with integer indices")
        i, j = int(parts[0]), int(parts[1])
        if one_indexed:
            if i == 0 or j == 0:
                raise XlingError(f"link {tok!r} has index 0 but the file is read as 1-indexed", file=path,
                                 line=line, fix="drop --gold-one-indexed if the gold file is 0-indexed")
            i, j = i - 1, j - 1
        possible.add((i, j))
        if sep == "-":
            sure.add((i, j))
    return sure, possible


def read_pharaoh(path: str | Path, what: str = "alignment file", one_indexed: bool = False):
    """Read a Pharaoh file as a list of ``(sure, possible)`` pairs, one per line."""
    lines = read_lines(path, what, allow_empty=True)
    return [parse_pharaoh_line(t, path=path, line=n, one_indexed=one_indexed) for n, t in enumerate(lines, 1)]
