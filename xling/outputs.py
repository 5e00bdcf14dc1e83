"""Ownership of output directories: xling only ever replaces what it wrote.

Every directory written through :func:`replace_dir` (``xling.io.atomic_dir``) holds a record,
``.xling-outputs.json``: the command that wrote it, what it was written for (its *identity*: the model,
the data, the options that make another output incompatible) and the size and modification time of
each file it wrote. A file that is not in the record, or that changed since (a user's edit), is
*foreign*: replacing the directory carries foreign files over into the new one, and a foreign file
where the new output has a file of the same name stops the write unless ``--force``.

:func:`claim_dir` is the check a command makes before it starts work: ``--out`` must not be a file, must
not lie inside the model or data directory it reads, and a non-empty ``--out`` that xling did not write
(or wrote with another command or for another model / data / options) is refused unless ``--force``.
:func:`check_out_file` checks a single-file output's path (``--json``, ``--out FILE``); :func:`claim_file`
adds ownership: an existing file is replaced only when the record of its folder lists it unchanged
(:func:`own_file` enters it after the write), else only with ``--force``.

Symbolic links: an output path that is a link is resolved once (:func:`resolve_link`) and written through:
the temporary file or directory lies beside the link's target (so the final rename stays on one file
system) and replaces the target; the link itself is never replaced or moved.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterator, Mapping, Optional

from xling.errors import XlingError

RECORD = ".xling-outputs.json"


FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Name ``path`` in a full-disk error raised inside the block (``write()`` and ``close()`` errors carry no
    file name), so that the one message says which output did not fit. A library that reports the failed
    write in its own exception (safetensors' SafetensorError, numpy's short write) while the disk is full
    gets the same OSError."""
    try:
        yield
    except OSError as e:
        if e.errno in FULL_DISK and e.filename is None:
            raise OSError(e.errno, os.strerror(e.errno), str(path)) from None
        if e.errno is None and disk_full(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from e
        raise
    except XlingError:
        raise
    except Exception as e:
        if disk_full(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from e
        raise


@contextlib.contextmanager
def needing(nbytes: int) -> Iterator[None]:
    """A full-disk error raised inside says how many bytes the output needs (its ``needed``), where the caller
    knows it (the weights of a model it writes)."""
    try:
        yield
    except OSError as e:
        if e.errno in FULL_DISK and getattr(e, "needed", None) is None:
            e.needed = int(nbytes)
        raise


def disk_full(path: str | Path, margin: int = 1 << 20) -> bool:
    """Whether the file system holding ``path`` (or its nearest existing folder) has less than ``margin``
    bytes free: a library that reports a failed write in its own words failed for want of space."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free < margin
    except OSError:
        return False


def user_umask() -> int:
    """The process umask (read without changing it for longer than a call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_prefix(name: str) -> str:
    """A hidden temp-name prefix for ``name`` that stays within the 255-byte name limit."""
    return "." + name.encode("utf-8")[:100].decode("utf-8", "ignore") + "."


def _stamp(path: Path) -> list[int]:
    st = path.lstat()
    return [st.st_size, st.st_mtime_ns]


def files_under(root: Path) -> list[str]:
    """Every file (or symlink) below ``root``, as POSIX paths relative to it, without the record."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        names = filenames + [d for d in dirnames if (base / d).is_symlink()]
        for name in names:
            rel = (base / name).relative_to(root).as_posix()
            if rel != RECORD:
                out.append(rel)
    return sorted(out)


def read_record(d: Path) -> Optional[dict]:
    """The record of ``d``, None when there is none (or it is unreadable: then nothing in ``d`` is xling's)."""
    p = Path(d) / RECORD
    if not p.is_file():
        return None
    try:
        rec = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("files"), dict) else None


def foreign_files(d: Path) -> list[str]:
    """Files in ``d`` that xling did not write (or that changed since it wrote them)."""
    d = Path(d)
    if not d.is_dir():
        return []
    own = (read_record(d) or {}).get("files", {})
    foreign = []
    for rel in files_under(d):
        try:
            if own.get(rel) != _stamp(d / rel):
                foreign.append(rel)
        except OSError:
            foreign.append(rel)
    return foreign


def write_record(d: Path, command: Optional[str], identity: Optional[Mapping]) -> None:
    """Record every file now in ``d`` as written by ``command`` (for ``identity``)."""
    files = {rel: _stamp(d / rel) for rel in files_under(d)}
    rec = {"kind": "xling-outputs", "command": command, "identity": identity, "files": files}
    (d / RECORD).write_text(json.dumps(rec, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")


def _inside(child: Path, parent: Path) -> bool:
    c, p = child.resolve(), parent.resolve()
    return c == p or p in c.parents


def _listing(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def claim_dir(out: Path, *, command: str, identity: Optional[Mapping] = None, force: bool = False,
              protect: Optional[Mapping[str, Path]] = None, flag: str = "--out",
              what: str = "output directory") -> None:
    """Check, before any work, that ``command`` may write the directory ``out``.

    ``protect``: ``{"model directory": DIR, ...}``: ``out`` may not be one of them or lie inside one.
    """
    out = Path(out)
    for what, d in (protect or {}).items():
        if d is not None and Path(d).exists() and _inside(out, Path(d)):
            raise XlingError(f"{flag} {out} is inside the {what} {d}; writing there would mix outputs with "
                             "(or replace) its files", file=out, fix=f"choose a {flag} directory outside {d}")
    if out.exists() and not out.is_dir():
        raise XlingError(f"{flag} is an existing file, not a directory", file=out,
                         fix=f"choose a new directory for {flag} (the file is left as it is)")
    if not out.is_dir() or not any(out.iterdir()):
        return
    rec = read_record(out)
    if force:
        return
    if rec is None or rec.get("command") is None:  # (a folder that only holds single-file outputs)
        raise XlingError(f"{flag} is not empty and is not an xling {what} (xling did not write it; it holds "
                         f"{_listing(files_under(out) or sorted(p.name for p in out.iterdir()))})", file=out,
                         fix=f"choose a new or empty directory for {flag}, or pass --force (files of other names "
                             "are kept; files of the same names are replaced)")
    if rec.get("command") != command:
        raise XlingError(f"{flag} holds the output of `xling {rec.get('command')}`, not of `xling {command}`",
                         file=out, fix=f"choose another {flag}, or pass --force to replace it")
    if identity is not None and rec.get("identity") is not None and rec["identity"] != dict(identity):
        changed = sorted(k for k in set(rec["identity"]) | set(identity)
                         if rec["identity"].get(k) != identity.get(k))
        raise XlingError(f"{flag} holds the output of `xling {command}` for another "
                         + ", ".join(f"{k} ({rec['identity'].get(k)} there, {identity.get(k)} now)" for k in changed),
                         file=out, fix=f"choose another {flag}, or pass --force to replace it (files you added "
                                       "are kept)")


def resolve_link(path: str | Path) -> Path:
    """The path an output named ``path`` is written to: the target of a symbolic link (resolved once, also
    when it does not exist yet), else ``path`` itself."""
    p = Path(path)
    return Path(os.path.realpath(p)) if p.is_symlink() else p


def owned_file(path: str | Path) -> bool:
    """Whether the record of ``path``'s folder lists the file ``path`` as xling wrote it (unchanged since)."""
    p = Path(path)
    rec = read_record(p.parent)
    try:
        return rec is not None and rec["files"].get(p.name) == _stamp(p)
    except OSError:
        return False


def claim_file(path: str | Path, flag: str = "--out", *, force: bool = False) -> Path:
    """:func:`check_out_file` plus ownership, before any work: an existing file that xling did not write (or
    that changed since) is refused unless ``force``. Returns the path to write (a link's target)."""
    target = resolve_link(path)
    check_out_file(target, flag)
    if (target.exists() or target.is_symlink()) and not force and not owned_file(target):
        raise XlingError(f"{flag} names an existing file that xling did not write (or that was changed since); "
                         "it would be replaced", file=Path(path),
                         fix=f"choose another {flag} file, move it away, or pass --force to replace it")
    return target


def own_file(path: str | Path) -> None:
    """Enter a single-file output that xling has just written in its folder's record (see :func:`claim_file`)."""
    p = Path(path)
    note_written(p.parent, [p.name])


def check_out_file(path: Path, flag: str = "--out") -> Path:
    """A single-file output we can write, checked before any work: not a directory, no part of its parent a
    file, the nearest existing folder writable, the name within the file system's 255 bytes."""
    path = resolve_link(path)
    if path.is_dir():
        raise XlingError(f"{flag} is a directory, not a file", file=path,
                         fix=f"name a file, e.g. {flag} {path / 'report.json'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise XlingError(f"{flag}: {parent} is a file, not a directory", file=path,
                                 fix=f"choose a {flag} path whose folders are directories")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise XlingError(f"cannot write {flag}: permission denied, folder {parent} is not writable",
                                 file=path, fix="choose a folder you can write to")
            break
    if len(path.name.encode()) > 250:  # the atomic writer's temporary name beside it needs a few bytes more
        raise XlingError(f"{flag}: file name too long", file=path, fix="use a shorter name (at most 250 bytes)")
    return path


def _carry_foreign(old: Path, new: Path, force: bool) -> list[str]:
    """Move the foreign files of the existing ``old`` into ``new`` (same relative paths); return them."""
    foreign = foreign_files(old)
    clash = [rel for rel in foreign if (new / rel).exists() or (new / rel).is_symlink()]
    if clash and not force:
        raise XlingError(f"{old} holds files xling did not write (or that were changed since) where this output "
                         f"writes files of the same name: {_listing(clash)}", file=old / clash[0],
                         fix="move them away, choose another output directory, or pass --force to replace them")
    moved = []
    try:
        for rel in foreign:
            if rel in clash:
                continue
            dest = new / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(old / rel, dest)
            moved.append(rel)
    except BaseException:
        _move_back(new, old, moved)
        raise
    return moved


def _move_back(new: Path, old: Path, moved: list[str]) -> None:
    for rel in moved:
        with contextlib.suppress(OSError):
            (old / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(new / rel, old / rel)


@contextlib.contextmanager
def replace_dir(path: str | Path, *, command: Optional[str] = None, identity: Optional[Mapping] = None,
                force: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success it becomes ``path``, with a record of its
    files. Files of an existing ``path`` that xling did not write are carried over (a clash with a new
    file of the same name is an error unless ``force``); on failure nothing is changed. A link ``path`` is
    written through: its target directory is replaced, the link stays."""
    path = resolve_link(path)
    if path.exists() and not path.is_dir():
        raise XlingError("output path is an existing file, not a directory", file=path,
                         fix="choose a new directory (the file is left as it is)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent))
    try:
        os.chmod(tmp, 0o777 & ~user_umask())
        with writing(path):
            yield tmp
            write_record(tmp, command, identity)
        if not path.exists():
            os.replace(tmp, path)
            return
        moved = _carry_foreign(path, tmp, force)
        old = path.with_name(f"{temp_prefix(path.name)}{uuid.uuid4().hex[:8]}.old")
        try:
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)
                raise
        except BaseException:
            _move_back(tmp, path, moved)
            raise
        shutil.rmtree(old, ignore_errors=True)  # only xling's own files (and replaced clashes, --force) are left
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def note_written(d: Path, rels: list[str]) -> None:
    """Add files that xling wrote into ``d`` after :func:`replace_dir` (e.g. an aggregate ``results.json``)
    to its record, so that later runs may replace them."""
    d = Path(d)
    rec = read_record(d) or {"kind": "xling-outputs", "command": None, "identity": None, "files": {}}
    for rel in rels:
        if (d / rel).exists():
            rec["files"][Path(rel).as_posix()] = _stamp(d / rel)
    tmp = d / f"{RECORD}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.write_text(json.dumps(rec, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, d / RECORD)
