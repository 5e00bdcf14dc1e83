"""Streaming, validated reading of parallel text: two line-aligned files or one ``src ||| tgt`` file.

Files are read in blocks of lines (constant memory at any corpus size); invalid UTF-8, a malformed
``|||`` line and a line-count mismatch are reported with file and line before any output is kept.
"""
from __future__ import annotations

from itertools import zip_longest
from pathlib import Path
from typing import Iterator

from xling.errors import XlingError
from xling.io import check_file, split_lines

BLOCK_BYTES = 1 << 22


def iter_line_blocks(path: str | Path, what: str) -> Iterator[tuple[list[str], int]]:
    """Yield ``(lines, bytes_read_so_far)`` blocks of a UTF-8 file (BOM and ``\\r`` dropped)."""
    p = check_file(path, what)
    first, line_no, done = True, 0, 0
    with open(p, "rb") as f:
        rest = b""
        while True:
            data = f.read(BLOCK_BYTES)
            buf = rest + data
            if data:
                cut = buf.rfind(b"\n") + 1
                buf, rest = buf[:cut], buf[cut:]
            if not buf:
                if not data:
                    return
                continue
            done += len(buf)
            try:
                text = buf.decode("utf-8")
            except UnicodeDecodeError as e:
                raise XlingError(f"invalid UTF-8 (byte 0x{buf[e.start]:02x})", file=p,
                                 line=line_no + buf.count(b"\n", 0, e.start) + 1,
                                 fix="convert the file to UTF-8, e.g. `iconv -f LATIN1 -t UTF-8`") from None
            if first and text.startswith("\ufeff"):
                text = text[1:]
            first = False
            lines = split_lines(text)
            line_no += len(lines)
            yield lines, done
            if not data:
                return


def split_joint(line: str, path, n: int) -> tuple[str, str]:
    parts = line.split(" ||| ")
    if len(parts) == 2 and "|||" not in parts[1]:
        return parts[0].strip(), parts[1].strip()
    if not line.strip():
        return "", ""
    parts = line.split(" ||| ") if " ||| " in line else line.split("|||")
    if len(parts) != 2:
        raise XlingError(f"malformed line: expected `source ||| target`, found {len(parts) - 1} `|||` separators",
                         file=path, line=n, fix="write exactly one ` ||| ` between source and target on every line")
    return parts[0].strip(), parts[1].strip()


def split_joint_block(lines: list[str], path, before: int) -> tuple[list[str], list[str]]:
    """Source and target sides of a block of ``src ||| tgt`` lines (``before``: lines read earlier). The
    common case (one `` ||| `` a line) costs one split a line; anything else goes line by line."""
    parts = [ln.split(" ||| ") for ln in lines]
    if all(len(p) == 2 for p in parts):
        src, tgt = [p[0] for p in parts], [p[1] for p in parts]
        if "|||" not in "\n".join(tgt):
            return list(map(str.strip, src)), list(map(str.strip, tgt))
    pairs = [split_joint(ln, path, before + k) for k, ln in enumerate(lines, 1)]
    return [a for a, _ in pairs], [b for _, b in pairs]


class ParallelSource:
    """Sentence pairs from files, read block by block; ``total_bytes`` sizes a progress bar."""

    def __init__(self, src=None, tgt=None, input=None):
        if input is not None and (src is not None or tgt is not None):
            raise XlingError("give either --input or --src/--tgt, not both")
        if input is None and (src is None or tgt is None):
            raise XlingError("missing input", fix="give --src F --tgt F, or --input F with `src ||| tgt` lines")
        self.src, self.tgt, self.input = src, tgt, input
        self.pretokenized = input is not None  # fast_align's format is tokenized text by definition
        named = [(input, "input file")] if input is not None else [(src, "source file"), (tgt, "target file")]
        for f, what in named:
            check_file(f, what)
        files = [f for f, _ in named]
        self.files = [Path(f) for f in files]
        self.total_bytes = sum(f.stat().st_size for f in self.files)

    def columns(self) -> Iterator[tuple[list[str], list[str], int]]:
        """Yield ``(source_lines, target_lines, bytes_read_so_far)`` (stripped); raises on the first bad line or
        a count mismatch."""
        seen_text = False
        if self.input is not None:
            n = 0
            for lines, done in iter_line_blocks(self.input, "input file"):
                src, tgt = split_joint_block(lines, self.input, n)
                n += len(lines)
                seen_text = seen_text or any(src) or any(tgt)
                yield src, tgt, done
            self._check_text(seen_text, self.input, "input file")
            return
        s_it = iter_line_blocks(self.src, "source file")
        t_it = iter_line_blocks(self.tgt, "target file")
        s_buf: list[str] = []
        t_buf: list[str] = []
        s_n = t_n = 0
        s_done = t_done = 0
        for s_blk, t_blk in zip_longest(s_it, t_it):
            if s_blk is not None:
                s_buf += s_blk[0]
                s_n += len(s_blk[0])
                s_done = s_blk[1]
            if t_blk is not None:
                t_buf += t_blk[0]
                t_n += len(t_blk[0])
                t_done = t_blk[1]
            k = min(len(s_buf), len(t_buf))
            if k:
                src, tgt = list(map(str.strip, s_buf[:k])), list(map(str.strip, t_buf[:k]))
                del s_buf[:k], t_buf[:k]
                seen_text = seen_text or any(src) or any(tgt)
                yield src, tgt, s_done + t_done
        if s_n != t_n:
            raise XlingError(f"source has {s_n} lines but target {self.tgt} has {t_n} lines", file=self.src,
                             fix="the two files must be line-aligned translations")
        self._check_text(seen_text, self.src, "source file")

    @staticmethod
    def _check_text(seen: bool, path, what: str) -> None:
        if not seen:
            raise XlingError(f"{what} holds only blank lines", file=path, fix="pass a file with text in it")


def read_parallel(src=None, tgt=None, input=None) -> tuple[list[str], list[str]]:
    """Read all pairs into two lists (small files: gold sets, ``align score --text``)."""
    s_out: list[str] = []
    t_out: list[str] = []
    for s_lines, t_lines, _ in ParallelSource(src, tgt, input).columns():
        s_out += s_lines
        t_out += t_lines
    return s_out, t_out
