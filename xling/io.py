"""Small file helpers shared by every stage: validated reading, atomic writing, hashing."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

from xling.errors import XlingError
from xling.outputs import own_file, replace_dir, resolve_link, temp_prefix, user_umask, writing


def check_file(path: str | Path, what: str = "input file", allow_empty: bool = False) -> Path:
    """Return ``path`` as a Path after checking it exists, is a file and (optionally) is not empty."""
    p = Path(path)
    if not p.exists():
        raise XlingError(f"{what} does not exist", file=p, fix="check the path (relative paths are "
                         f"resolved from {Path.cwd()})")
    if not p.is_file():
        raise XlingError(f"{what} is not a regular file", file=p, fix="pass a text file, not a directory")
    if not allow_empty and p.stat().st_size == 0:
        raise XlingError(f"{what} is empty", file=p, fix="pass a file with at least one line of text")
    return p


def count_lines(text: str) -> int:
    """Lines in ``text`` under :func:`read_lines`' rules: a last line without ``\\n`` counts, nothing after a
    final ``\\n`` does."""
    return text.count("\n") + (text != "" and not text.endswith("\n"))


def split_lines(text: str) -> list[str]:
    """The lines of ``text`` under :func:`read_lines`' rules (split on ``\\n``, a trailing ``\\r`` dropped)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines] if "\r" in text else lines


def read_lines(path: str | Path, what: str = "input file", allow_empty: bool = False) -> list[str]:
    """Read a UTF-8 text file as a list of lines without their line ends.

    Invalid UTF-8 is reported with the 1-based line number of the first bad byte.
    """
    return read_lines_hashed(path, what, allow_empty)[0]


def read_lines_hashed(path: str | Path, what: str = "input file", allow_empty: bool = False) -> tuple[list[str], str]:
    """:func:`read_lines` plus the SHA-256 of the file's bytes, from one read of the file."""
    p = check_file(path, what, allow_empty=allow_empty)
    data = p.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise XlingError(f"invalid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})", file=p,
                         line=line, fix="convert the file to UTF-8, e.g. `iconv -f LATIN1 -t UTF-8`") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = split_lines(text)
    if not allow_empty and not any(ln.strip() for ln in lines):
        raise XlingError(f"{what} holds only blank lines", file=p, fix="pass a file with text in it")
    return lines, digest


def iter_text_blocks(path: str | Path, block: int = 1 << 20, hasher=None) -> Iterator[tuple[int, str]]:
    """Stream a UTF-8 text file as ``(number of the block's first line, text)``: blocks of about ``block``
    bytes, each cut after a ``\\n`` (the last may end without one), a byte-order mark at the start of the
    file dropped. Invalid UTF-8 is an :class:`XlingError` naming the line. ``hasher`` (e.g.
    ``hashlib.sha256()``) is updated with every byte read. Blocks stay small (1 MiB by default) so that
    the transient buffers are returned to the system between blocks instead of fragmenting the heap."""
    p = Path(path)
    rest, line0, offset = b"", 1, 0
    with open(p, "rb") as f:
        while True:
            b = f.read(block)
            if hasher is not None:
                hasher.update(b)
            data = rest + b
            cut = len(data) if not b else data.rfind(b"\n") + 1
            chunk, rest = data[:cut], data[cut:]
            if chunk:
                try:
                    text = chunk.decode("utf-8")
                except UnicodeDecodeError as e:
                    col = e.start - chunk.rfind(b"\n", 0, e.start)
                    raise XlingError(f"invalid UTF-8 (byte 0x{chunk[e.start]:02x} at column {col}, file offset "
                                     f"{offset + e.start})", file=p, line=line0 + chunk.count(b"\n", 0, e.start),
                                     fix="convert the file to UTF-8, e.g. `iconv -f LATIN1 -t UTF-8`") from None
                if offset == 0 and text.startswith("\ufeff"):
                    text = text[1:]
                yield line0, text
                line0 += count_lines(text)
                offset += len(chunk)
            if not b:
                return


def iter_line_blocks(path: str | Path, block: int = 1 << 23, hasher=None) -> Iterator[tuple[int, list[str]]]:
    """Stream a UTF-8 text file as ``(number of the block's first line, lines)`` in blocks of about
    ``block`` bytes, with the line rules of :func:`read_lines` (split on ``\\n``, a trailing ``\\r``
    dropped, a byte-order mark at the start dropped); see :func:`iter_text_blocks`."""
    for line0, text in iter_text_blocks(path, block, hasher):
        yield line0, split_lines(text)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, else delete it. A link
    ``path`` is written through (the temporary file lies beside its target, which it replaces)."""
    path = resolve_link(path)
    if path.is_dir():
        raise XlingError("output path is a directory, not a file", file=path,
                         fix=f"name a file, e.g. {path / 'out.json'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_p = Path(tmp)
    try:
        os.chmod(tmp_p, 0o666 & ~user_umask())  # mkstemp makes 0600: outputs follow the user's umask
        with writing(path):
            yield tmp_p
        os.replace(tmp_p, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_p.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, command: str | None = None, identity: dict | None = None,
               force: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success it replaces ``path``, keeping the files
    xling did not write there (see :func:`xling.outputs.replace_dir`)."""
    with replace_dir(path, command=command, identity=identity, force=force) as tmp:
        yield tmp


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_lines_atomic(path: str | Path, lines: list[str]) -> None:
    write_text_atomic(path, "".join(ln + "\n" for ln in lines))


def write_json_atomic(path: str | Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def write_json_owned(path: str | Path, obj) -> None:
    """:func:`write_json_atomic` for a single-file output claimed with :func:`xling.outputs.claim_file`: the
    file is entered in its folder's record, so that a later run may replace it without ``--force``."""
    write_json_atomic(path, obj)
    own_file(resolve_link(path))


def read_json(path: str | Path, what: str = "JSON file") -> dict:
    p = check_file(path, what)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise XlingError(f"{what} is not valid JSON: {e.msg}", file=p, line=e.lineno,
                         fix="regenerate it with the xling command that wrote it") from None
