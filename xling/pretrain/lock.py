"""One trainer per run directory: ``OUT/.xling-pretrain.lock`` names the ``xling pretrain`` process that
holds it and the fairseq trainer processes it started. A second launch on the same directory is refused
while any of them is alive; a lock left by dead processes (``kill -9``, a crash) is taken over."""
from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Iterator

from xling.errors import XlingError

LOCK = ".xling-pretrain.lock"


def lock_path(out: Path, node_rank: int = 0) -> Path:
    return Path(out) / (LOCK if node_rank == 0 else f".xling-pretrain.node{node_rank}.lock")


def proc_start(pid: int):
    """The start time of process ``pid`` (clock ticks after boot; None without /proc), to tell a recycled pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields[19]  # a zombie is dead, only not yet reaped


def pid_alive(pid: int, start=None) -> bool:
    """Whether ``pid`` is alive and (when ``start`` is known) still the process that was recorded."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    now = proc_start(pid)
    if now is None:
        return not Path(f"/proc/{pid}").exists()  # no /proc at all: trust the pid; a zombie: dead
    return start is None or now == start


def holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write(path: Path, info: dict) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class RunLock:
    def __init__(self, path: Path):
        self.path = path
        self.info = {"pid": os.getpid(), "start": proc_start(os.getpid()), "host": socket.gethostname(),
                     "trainers": []}

    def set_trainers(self, pids: list[int]) -> None:
        """Record the trainer processes, so that a later launch sees them even if this process was killed."""
        self.info["trainers"] = [[p, proc_start(p)] for p in pids]
        _write(self.path, self.info)


def _refuse_if_held(path: Path) -> None:
    h = holder(path)
    if not h:
        return
    here = socket.gethostname()
    if h.get("host", here) != here:
        raise XlingError(f"the run directory is locked by xling pretrain (pid {h.get('pid')}) on {h['host']}",
                         file=path, fix="wait for that run to finish; if it is no longer running, delete the lock "
                                        "file")
    procs = [[h.get("pid"), h.get("start")]] + [t for t in h.get("trainers", []) if isinstance(t, list)]
    alive = [p for p, start in procs if isinstance(p, int) and pid_alive(p, start)]
    if alive:
        what = "xling pretrain" if h.get("pid") in alive else "its fairseq trainer"
        raise XlingError(f"another training run is active in this directory ({what}, pid "
                         f"{', '.join(map(str, alive))})", file=path,
                         fix=f"wait for it to finish, or stop it (`kill {' '.join(map(str, alive))}`) and re-run: "
                             "the run resumes from checkpoint_last.pt")


@contextlib.contextmanager
def run_lock(out: Path, node_rank: int = 0) -> Iterator[RunLock]:
    """Hold the run directory's lock while training (see the module docstring)."""
    path = lock_path(out, node_rank)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = RunLock(path)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            _refuse_if_held(path)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # left by dead processes: take it over
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(lock.info) + "\n")
        break
    else:
        raise XlingError("could not take the run directory's lock", file=path,
                         fix="another launch is starting in the same directory; wait and re-run")
    try:
        yield lock
    finally:
        if holder(path).get("pid") == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
