"""Inputs read in bounded memory: one validating pass (SHA-256, UTF-8, line count, `|||` format), then
chunks of lines for the workers, resumable from a byte offset.

Lines are what :func:`xling.io.read_lines` gives: split on ``\\n`` only, a trailing ``\\r`` dropped, a
UTF-8 byte-order mark at the start of a file dropped.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Iterator, Optional

from xling.errors import XlingError
from xling.io import check_file, count_lines, iter_text_blocks, split_lines

BLOCK = 1 << 23  # bytes a read when seeking to a line
SCAN_BLOCK = 1 << 20  # bytes a block when validating (small blocks keep the heap from growing with the file)
BOM = b"\xef\xbb\xbf"


@dataclass
class InputFile:
    path: str
    sha256: str
    lines: int
    size: int
    start: int  # byte offset of the first line (3 after a byte-order mark)


def scan_file(path: str, what: str, bars: bool = False) -> InputFile:
    """Validate a text input in one pass of bounded memory; raise :class:`XlingError` on the first problem."""
    p = check_file(path, what)
    h = hashlib.sha256()
    n_lines, nonblank = 0, False
    for line0, text in iter_text_blocks(p, SCAN_BLOCK, h):
        nonblank = nonblank or not (text.isspace() or text == "")  # a line that strips to something
        if bars:
            _check_bars(text, p, line0)
        n_lines = line0 - 1 + count_lines(text)
    if not nonblank:
        raise XlingError(f"{what} holds only blank lines", file=p, fix="pass a file with text in it")
    with open(p, "rb") as f:
        start = 3 if f.read(3) == BOM else 0
    return InputFile(str(path), h.hexdigest(), n_lines, p.stat().st_size, start)


def _check_bars(text: str, path: Path, line0: int) -> None:
    for i, ln in enumerate(split_lines(text), line0):
        c = ln.count("|||")
        if c == 1:
            continue
        if c == 0:
            raise XlingError("line is not `source ||| target`", file=path, line=i,
                             fix="separate the two sides with ' ||| ', or pass two files as SRC_PATH,TGT_PATH")
        raise XlingError("line holds more than one `|||`", file=path, line=i,
                         fix="each line must be exactly `source ||| target`")


@dataclass
class Source:
    """One input of a corpus: ``text`` (one file), ``pair`` (two line-aligned files), ``bars``
    (one file of `src ||| tgt` lines, both sides) or ``side0`` / ``side1`` (one side of such a file)."""
    kind: str
    files: list[InputFile]
    first: int = 0  # line range of this source to read (``--shard K/N`` reads one part)
    last: Optional[int] = None
    meta: dict = field(default_factory=dict)

    @property
    def n_lines(self) -> int:
        return (self.files[0].lines if self.last is None else self.last) - self.first

    @property
    def n_bytes(self) -> int:
        total = sum(f.size for f in self.files)
        return total * self.n_lines // max(self.files[0].lines, 1)


def _seek_line(f, start: int, n: int) -> None:
    """Position a binary file at the start of line ``n`` (counting from byte ``start``)."""
    f.seek(start)
    left = n
    while left:
        b = f.read(BLOCK)
        if not b:
            return
        c = b.count(b"\n")
        if c < left:
            left -= c
            continue
        pos = -1
        for _ in range(left):
            pos = b.index(b"\n", pos + 1)
        f.seek(f.tell() - len(b) + pos + 1)
        return


def iter_chunks(src: Source, chunk_lines: int, resume: Optional[dict] = None) -> Iterator[tuple[tuple, dict]]:
    """Yield ``(payload, position)``: payload ``(kind, bytes, ...)`` of up to ``chunk_lines`` lines, and the
    position after it (``{"line": .., "offsets": [..]}``, what :func:`iter_chunks` resumes from)."""
    handles = [open(f.path, "rb") for f in src.files]
    try:
        if resume:
            line = resume["line"]
            for fh, off in zip(handles, resume["offsets"]):
                fh.seek(off)
        else:
            line = src.first
            for fh, f in zip(handles, src.files):
                _seek_line(fh, f.start, src.first)
        last = src.n_lines + src.first
        while line < last:
            n = min(chunk_lines, last - line)
            parts = [b"".join(islice(fh, n)) for fh in handles]
            line += n
            yield (src.kind, *parts), {"line": line, "offsets": [fh.tell() for fh in handles]}
    finally:
        for fh in handles:
            fh.close()
