"""Run eflomal's sampler (GPLv3) as a separate program on files we write in its numeric format.

xling never imports eflomal. ``pip install eflomal`` ships the compiled sampler as
``eflomal/bin/eflomal`` inside the package (its ``eflomal-align`` script is a Python wrapper that
re-reads the text, numbers the words and calls that program). We write the numbered text ourselves
while we tokenize (:mod:`xling.align.numbering`: header ``N_SENTENCES VOCAB_SIZE``, then ``LENGTH id
id ...`` per sentence, ``0`` for an empty one), call the program directly and follow its stage messages
on stderr to move a progress bar while it samples. Written by hand: the priors translation to word
numbers and the progress estimate.

Seeds: eflomal 2.0 has no seed option; each direction seeds itself with 8 bytes read from
``/dev/urandom`` (``random_system_state``). :func:`seeded_sampler` makes a private copy of the program
whose only change is that path, renamed to the same-length relative name ``./xling.seed``; the sampler
runs in the run's folder, where :func:`run_sampler` writes 8 bytes derived from ``--seed``. With one
OpenMP thread inside each direction (``OMP_NUM_THREADS=N,1``: the two directions stay parallel) the
samplers of a direction draw their split states in a fixed order, so a run's links are a function of
its input, options and seed.
"""
from __future__ import annotations

import errno
import hashlib
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from importlib.util import find_spec
from pathlib import Path

from xling.errors import XlingError
from xling.outputs import disk_full

_INSTALL_FIX = (f"{sys.executable} -m pip install --no-deps --no-build-isolation eflomal==2.0.0 "
                "(needs numpy and cython; or pip install 'xling[align]')")


def _beside_python(name: str) -> str | None:
    exe = Path(sys.executable).parent / name
    return str(exe) if exe.is_file() and os.access(exe, os.X_OK) else shutil.which(name)


def find_eflomal() -> str:
    """Path of eflomal's sampler program in this Python's eflomal package (located, not imported)."""
    spec = find_spec("eflomal")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        exe = Path(loc) / "bin" / "eflomal"
        if exe.is_file() and os.access(exe, os.X_OK):
            return str(exe)
    raise XlingError(f"eflomal is not installed for this Python ({sys.executable})", fix=_INSTALL_FIX)


def eflomal_available() -> bool:
    try:
        find_eflomal()
        return True
    except XlingError:
        return False


_URANDOM, _SEED_NAME = b"/dev/urandom\0", b"./xling.seed\0"  # same length: the program's layout is unchanged


def seeded_sampler(dest: Path) -> str:
    """Copy eflomal's sampler into the folder ``dest`` (into the user's cache where that file system runs no
    programs, as a ``noexec`` TMPDIR) with its seed source renamed to ``./xling.seed`` (see the module's
    docstring); returns the copy's path."""
    src = find_eflomal()
    data = Path(src).read_bytes()
    if data.count(_URANDOM) != 1:
        raise XlingError(f"this eflomal build ({src}) does not read its seed from /dev/urandom once, so xling "
                         "cannot seed it", fix="reinstall eflomal 2.0.0: " + _INSTALL_FIX)
    patched = data.replace(_URANDOM, _SEED_NAME)
    exe = Path(dest) / "eflomal-seeded"
    if os.statvfs(dest).f_flag & getattr(os, "ST_NOEXEC", 0):  # a noexec TMPDIR: the user's cache, once per build
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xling"
        cache.mkdir(parents=True, exist_ok=True)
        exe = cache / f"eflomal-seeded-{hashlib.sha256(patched).hexdigest()[:16]}"
        if exe.is_file() and exe.read_bytes() == patched:
            return str(exe)
        tmp = exe.with_name(f".{exe.name}.{os.getpid()}.tmp")
        tmp.write_bytes(patched)
        tmp.chmod(0o700)
        os.replace(tmp, exe)  # another run may be writing the same bytes: the rename keeps one whole copy
        return str(exe)
    exe.write_bytes(patched)
    exe.chmod(0o700)
    return str(exe)


def seed_bytes(seed: int, run: int) -> bytes:
    """The sampler's 8-byte xorshift state for run ``run`` of a ``--seed seed`` alignment (never zero)."""
    b = hashlib.sha256(f"xling-align {seed} {run}".encode()).digest()[:8]
    return b if any(b) else b"\1" + b[1:]


def _omp_threads(env: dict) -> str:
    """OMP_NUM_THREADS for a seeded run: the user's outer count (2: the two directions), one inside each."""
    outer = (env.get("OMP_NUM_THREADS") or "2").split(",")[0].strip()
    return f"{outer if outer.isdigit() and int(outer) > 0 else 2},1"


def find_makepriors() -> str:
    exe = _beside_python("eflomal-makepriors")
    if exe is None:
        raise XlingError("the `eflomal-makepriors` program is missing (needed by --save-priors)", fix=_INSTALL_FIX)
    return exe


def iterations(n_sentences: int, length: float, model: int, schedule: str = "xling",
               floor: int = 8) -> tuple[int, int, int]:
    """Sampling iterations per model (IBM1, HMM, fertility). The last model gets eflomal's
    ``length * 5000 / sqrt(n)``, at least ``floor`` (so that the half-million-pair runs of a large corpus
    still mix); the total work grows as ``sqrt(n)``, not ``n``, with the corpus.

    ``eflomal``: eflomal-align's own shape, a quarter of that for each earlier model (at least 2).
    ``xling``: each earlier model gets a quarter of the last model's iterations beyond the first 8 (IBM1
    at least one, two on runs at the floor; no HMM stage before the fertility model at the floor, whose
    sampler learns the jump distribution itself): eflomal's shape on small corpora, where iterations
    are cheap and the earlier models help, and short IBM1/HMM stages on large ones, where the fertility
    model's own iterations buy a lower AER for the same sampling time (measured in
    :mod:`xling.align.options`)."""
    it = max(floor, int(round(length * 5000 / math.sqrt(max(1, n_sentences)))))
    if schedule == "eflomal":
        q = max(2, it // 4)
        return {1: (it, 0, 0), 2: (q, it, 0), 3: (q, q, it)}[model]
    extra = (it - 8) // 4
    first = max(2 if it == floor else 1, extra)
    return {1: (it, 0, 0), 2: (first, it, 0), 3: (first, max(0, extra), it)}[model]


def write_numbered_priors(priors: Path, src, tgt, out: Path, lowercase: bool) -> None:
    """Translate a text priors file (``LEX``/``HMMF``/``HMMR``/``FERF``/``FERR`` lines, as written by
    ``eflomal-makepriors``) to the sampler's numbered format over this run's vocabularies (``src.vocab`` /
    ``tgt.vocab``: word -> number, :class:`xling.align.numbering.SideNumbering`)."""
    def num(vocab, w):
        if w == "<NULL>":
            return 0
        k = vocab.get(w.lower() if lowercase else w)
        return None if k is None else k + 1

    lex: dict = {}
    jumps: dict = {"HMMF": {}, "HMMR": {}}
    fert: dict = {"FERF": {}, "FERR": {}}
    with open(priors, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            p = line.rstrip("\n").split("\t")
            try:
                alpha = float(p[-1])
                if p[0] == "LEX" and len(p) == 4:
                    e, t = num(src.vocab, p[1]), num(tgt.vocab, p[2])
                    if e is not None and t is not None:
                        lex[(e, t)] = lex.get((e, t), 0.0) + alpha
                elif p[0] in jumps and len(p) == 3:
                    jumps[p[0]][int(p[1])] = alpha
                elif p[0] in fert and len(p) == 4:
                    w = num(src.vocab if p[0] == "FERF" else tgt.vocab, p[1])
                    if w is not None:
                        key = (w, int(p[2]))
                        fert[p[0]][key] = fert[p[0]].get(key, 0.0) + alpha
                else:
                    raise ValueError
            except (ValueError, IndexError):
                raise XlingError("malformed eflomal priors line", file=priors, line=n,
                                 fix="pass a file written by `xling align --save-priors` or eflomal-makepriors") from None
    with open(out, "w", encoding="ascii") as f:
        f.write(f"{len(src.vocab) + 1} {len(tgt.vocab) + 1} {len(lex)} {len(jumps['HMMF'])} {len(jumps['HMMR'])} "
                f"{len(fert['FERF'])} {len(fert['FERR'])}\n")
        f.writelines(f"{e} {t} {a:g}\n" for (e, t), a in sorted(lex.items()))
        for k in ("HMMF", "HMMR"):
            f.writelines(f"{j} {a:g}\n" for j, a in sorted(jumps[k].items()))
        for k in ("FERF", "FERR"):
            f.writelines(f"{w} {x} {a:g}\n" for (w, x), a in sorted(fert[k].items()))


_STAGE = re.compile(r"Aligning with model (\d) \((\d+) iterations\)")


class _SamplerProgress:
    """Turns eflomal's stage lines into a moving count of sampling iterations (both directions).

    eflomal prints only when a model's iterations start and end, so inside a stage the count moves with
    time at the rate of the stages finished so far (the first stage guesses from the corpus size) and
    stops one short of the stage's end until eflomal says it is done."""

    def __init__(self, iters: tuple[int, int, int], tokens: int, callback):
        self.total = 2 * (sum(iters) + 1)  # + the final argmax pass, per direction
        self.callback = callback
        self.done = 0.0
        self.running: list[tuple[float, int]] = []  # (start time, iterations) of stages under way
        self.rate = 6e-7 * max(tokens, 1)  # seconds per iteration: a first guess, replaced by measurement
        self.lock = threading.Lock()

    def line(self, text: str) -> None:
        with self.lock:
            m = _STAGE.search(text)
            if m:
                self.running.append((time.monotonic(), int(m.group(2))))
            elif text.startswith("Done:") and self.running:
                start, n = self.running.pop(0)
                self.rate = max(1e-6, (time.monotonic() - start) / n)
                self.done += n
            elif text.startswith("Final argmax"):
                self.done += 1

    def estimate(self) -> float:
        with self.lock:
            now = time.monotonic()
            moving = sum(min(n - 1, (now - s) / self.rate) for s, n in self.running)
            return min(self.total - 1, self.done + max(0.0, moving))

    def tick(self) -> None:
        if self.callback is not None:
            self.callback("sampling", self.estimate(), self.total)


def run_sampler(src: Path, tgt: Path, fwd: Path, rev: Path, *, n_sentences: int, tokens: int, model: int,
                length: float, n_samplers: int, schedule: str = "xling", floor: int = 8, null_prior: float = 0.2,
                priors: Path | None = None, seeded: tuple[str, bytes] | None = None,
                progress=None, stop: threading.Event | None = None) -> dict:
    """Run both directions of eflomal (in parallel threads of one process) and wait for the links; ``stop``
    set from another thread kills it. ``seeded``: ``(program from seeded_sampler, seed_bytes(...))``; the
    sampler then runs in ``fwd``'s folder, where the seed is written.

    Returns ``{"eflomal_peak_rss_mb": ...}`` (its high-water mark read from /proc while it runs; 0 elsewhere)."""
    it = iterations(n_sentences, length, model, schedule, floor)
    src, tgt, fwd, rev = (Path(p).absolute() for p in (src, tgt, fwd, rev))  # it may run in another folder
    priors = None if priors is None else Path(priors).absolute()
    cmd = [seeded[0] if seeded else find_eflomal(), "-m", str(model), "-s", str(src), "-t", str(tgt),
           "-f", str(fwd), "-r", str(rev),
           "-n", str(n_samplers), "-N", str(null_prior), "-1", str(it[0]), "-2", str(it[1]), "-3", str(it[2])]
    if priors is not None:
        cmd += ["-p", str(priors)]
    track = _SamplerProgress(it, tokens, progress)
    tail: list[str] = []
    cwd, env = None, None
    if seeded is not None:
        cwd = Path(fwd).parent
        (cwd / _SEED_NAME[2:-1].decode()).write_bytes(seeded[1])
        env = dict(os.environ, OMP_NUM_THREADS=_omp_threads(os.environ))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace",
                            cwd=cwd, env=env)

    def follow():
        for text in proc.stderr:
            track.line(text)
            tail.append(text.strip())
            del tail[:-5]

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    peak = 0.0
    try:
        while proc.poll() is None:
            if stop is not None and stop.is_set():
                raise XlingError("eflomal was stopped")
            track.tick()
            peak = max(peak, peak_rss_mb(proc.pid))
            try:
                proc.wait(timeout=0.25)  # returns as soon as eflomal exits
            except subprocess.TimeoutExpired:
                pass
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    reader.join()
    if proc.returncode != 0:
        if disk_full(fwd):  # it cannot write its links
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(fwd.parent))
        raise XlingError(f"eflomal failed (exit {proc.returncode}): " + " | ".join(tail[-3:]),
                         fix="check the input text and options; report it if the input is valid")
    if progress is not None:
        progress("sampling", track.total, track.total)
    return {"eflomal_peak_rss_mb": peak}


def peak_rss_mb(pid: int) -> float:
    """High-water RSS of a process (Linux /proc; 0 elsewhere). Unlike getrusage it does not count the memory
    of the process that spawned it."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def make_priors(src_text: Path, tgt_text: Path, fwd: Path, rev: Path, out: Path) -> None:
    proc = subprocess.run([find_makepriors(), "-s", str(src_text), "-t", str(tgt_text), "-f", str(fwd),
                           "-r", str(rev), "-p", str(out)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise XlingError("eflomal-makepriors failed: " + proc.stderr.strip()[-300:], fix=_INSTALL_FIX)
