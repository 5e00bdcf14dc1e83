"""Pass 1 of an alignment: tokenize and number the corpus into eflomal runs (:mod:`.numbering`).

The corpus is cut into runs of ``run_pairs`` pairs (eflomal holds a whole run in memory). The two
sides of a pair are numbered independently (eflomal keeps one vocabulary per side), so for files
large enough to pay for it a second process numbers the target side while this one numbers the
source side: both read the input, each writes its own files of every run, and a run is handed on
once both sides are closed. A side's line with no words, or too many for eflomal, is written empty;
eflomal gives a pair with an empty side no links.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from xling.align.numbering import MAX_LEN, SideNumbering
from xling.errors import XlingError
from xling.forking import held_signals, worker_signals

PARALLEL_MIN_BYTES = 4 << 20  # smaller inputs are numbered faster than a second process starts


@dataclass
class Encoded:
    """Word counts per pair as written (0: the side is empty for eflomal) and, for input whose tokens
    were split into finer words (``mapped``), per pair and side whether its owners were written."""
    ns: np.ndarray
    nt: np.ndarray
    n_pairs: int
    tokens: int
    mapped: bool
    remap_s: np.ndarray | None = None
    remap_t: np.ndarray | None = None


class _RunSide:
    """One side of one run: its numbered file, word counts and (mapped input) owners file."""

    def __init__(self, d: Path, side: int, tokenizer: str, mapped: bool, lowercase: bool):
        d.mkdir(exist_ok=True)
        name = ("src", "tgt")[side]
        self.numbers = SideNumbering(d / f"{name}.num", tokenizer)
        self.own = open(d / f"own.{name}", "wb") if mapped else None
        self.lowercase, self.lens, self.flags = lowercase, [], []

    def add(self, lines: list[str], text=None) -> None:
        per_tok, n_words, wid, own = self.numbers.split(lines, self.lowercase, self.own is not None)
        bad = (n_words == 0) | (n_words >= MAX_LEN) | (per_tok > 0xFFFF)
        if bad.any():
            wid = wid[np.repeat(~bad, n_words)]
            n_words = np.where(bad, 0, n_words)
        self.numbers.write(n_words, wid)
        if text is not None:
            text.write(self.numbers.words_text(n_words, wid))
        self.lens.append(n_words.astype(np.uint16))
        if self.own is not None:
            self.flags.append(np.zeros(len(lines), bool) if own is None else own[0] & ~bad)
            if own is not None:
                self.own.write(own[1][~bad[own[2]]].astype(np.uint16).tobytes())

    def close(self) -> tuple[np.ndarray, np.ndarray | None, int]:
        """``(word counts, owner flags or None, words)``."""
        self.numbers.close()
        if self.own is not None:
            self.own.close()
        lens = np.concatenate(self.lens) if self.lens else np.zeros(0, np.uint16)
        if self.own is None:
            return lens, None, self.numbers.tokens
        return lens, np.concatenate(self.flags) if self.flags else np.zeros(0, bool), self.numbers.tokens


class Run:
    """Run ``k``'s share of the corpus, in folder ``d``; ``src``/``tgt``: the sides' numberings
    (``tgt`` is ``None`` when another process numbered it)."""

    def __init__(self, d: Path, k: int, opts: dict, mapped: bool, both: bool):
        self.d, self.k, self.n, self.mapped = d, k, 0, mapped
        args = (opts["tokenizer"], mapped, opts["lowercase"])
        self._sides = [_RunSide(d, 0, *args)] + ([_RunSide(d, 1, *args)] if both else [])
        self.src = self._sides[0].numbers
        self.tgt = self._sides[1].numbers if both else None
        self.enc: Encoded | None = None

    def add(self, s_lines: list[str], t_lines: list[str], text=None) -> None:
        for k, side in enumerate(self._sides):
            side.add((s_lines, t_lines)[k], None if text is None else text[k])
        self.n += len(s_lines)

    def close(self, target: tuple | None = None) -> Encoded:
        """``target``: the closed target side from the other process."""
        ns, rs, n1 = self._sides[0].close()
        nt, rt, n2 = self._sides[1].close() if target is None else target
        if len(nt) != len(ns):
            raise XlingError(f"the target side has {len(nt)} lines for {len(ns)} source lines", fix="re-run")
        self.enc = Encoded(ns.astype(np.int64), nt.astype(np.int64), self.n, n1 + n2, self.mapped, rs, rt)
        return self.enc


def by_run(blocks, limit: int) -> Iterator[tuple[int, list[str], list[str], int | None]]:
    """Cut ``(src_lines, tgt_lines, done)`` blocks into pieces ``(run, src_lines, tgt_lines, done)`` of runs of
    ``limit`` pairs (``--run-pairs``; 0: one run) (``done`` only on a block's last piece)."""
    limit = limit or (1 << 62)
    k = n = 0
    for s_lines, t_lines, done in blocks:
        start = 0
        while start < len(s_lines):
            if n >= limit:
                k, n = k + 1, 0
            end = min(len(s_lines), start + limit - n)
            yield k, s_lines[start:end], t_lines[start:end], done if end == len(s_lines) else None
            n += end - start
            start = end


def _number_target(source, d: Path, opts: dict, mapped: bool) -> None:
    """The second process: number the target side of every run; announce each closed run on stdout (its
    counts are saved beside its numbered file)."""
    side, k0 = None, 0

    def close():
        lens, flags, tokens = side.close()
        np.save(d / f"run{k0}" / "tgt.lens.npy", lens)
        if flags is not None:
            np.save(d / f"run{k0}" / "tgt.flags.npy", flags)
        print(json.dumps({"run": k0, "tokens": tokens}), flush=True)

    for k, _, t_lines, _ in by_run(source.columns(), opts["run_pairs"]):
        if side is None or k != k0:
            if side is not None:
                close()
            side, k0 = _RunSide(d / f"run{k}", 1, opts["tokenizer"], mapped, opts["lowercase"]), k
        side.add(t_lines)
    if side is not None:
        close()


class _Target:
    """The second process (``python -m xling.align.encode``, so that nothing of the caller's program is
    re-imported) and the runs it has closed."""

    def __init__(self, source, d: Path, opts: dict, mapped: bool):
        self.d = d
        job = {"src": source.src, "tgt": source.tgt, "input": source.input, "d": d, "opts": opts, "mapped": mapped}
        root = str(Path(__file__).resolve().parents[2])  # the folder holding the xling package
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH")))))
        self.err = open(d / "numbering.err", "w+")  # a file, not a pipe: a chatty child can never block on it
        with held_signals():  # it starts with them blocked and takes its dispositions first (worker_signals)
            self.proc = subprocess.Popen([sys.executable, "-m", "xling.align.encode", json.dumps(job, default=str)],
                                         stdout=subprocess.PIPE, stderr=self.err, text=True, env=env)

    def closed(self, k: int) -> tuple:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.err.seek(0)
            err = self.err.read().strip()
            if err.startswith("{"):
                raise XlingError(**json.loads(err.splitlines()[-1]))
            raise XlingError(f"numbering the target side failed (exit {self.proc.returncode}): {err[-500:]}",
                             fix="re-run; report it if it recurs")
        msg = json.loads(line)
        if msg["run"] != k:
            raise XlingError(f"the target side's run {msg['run']} came where run {k} was expected", fix="re-run")
        r = self.d / f"run{k}"
        flags = np.load(r / "tgt.flags.npy") if (r / "tgt.flags.npy").exists() else None
        return np.load(r / "tgt.lens.npy"), flags, msg["tokens"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.err.close()


def encode_runs(blocks, *, d: Path, opts: dict, pretokenized: bool, save_text: bool, progress=None,
                total_bytes: int = 0, source=None) -> Iterator[Run]:
    """Number ``(src_lines, tgt_lines, done)`` blocks; yield each run as soon as it is numbered and closed.
    ``source``: a :class:`~xling.align.source.ParallelSource` the blocks come from, which a second
    process may re-read to number the target side."""
    mapped = pretokenized and opts["tokenizer"] != "whitespace"  # indices must stay those of the input's tokens
    parallel = (source is not None and not save_text and opts["priors"] is None
                and total_bytes >= PARALLEL_MIN_BYTES)
    target = _Target(source, d, opts, mapped) if parallel else None
    text = [open(d / "src.txt", "w", encoding="utf-8"), open(d / "tgt.txt", "w", encoding="utf-8")] \
        if save_text else None
    run: Run | None = None
    try:
        for k, s_lines, t_lines, done in by_run(blocks, opts["run_pairs"]):
            if run is None or k != run.k:
                if run is not None:
                    run.close(target.closed(k - 1) if target else None)
                    yield run
                run = Run(d / f"run{k}", k, opts, mapped, both=target is None)
            run.add(s_lines, t_lines, text)
            if progress is not None and done is not None:
                progress("reading", done, total_bytes)
        if run is None:  # no pairs at all
            run = Run(d / "run0", 0, opts, mapped, both=True)
            run.close()
        else:
            run.close(target.closed(run.k) if target else None)
        yield run
    finally:
        for f in text or []:
            f.close()
        if target is not None:
            target.stop()


if __name__ == "__main__":
    from xling.align.source import ParallelSource

    worker_signals()  # Ctrl-C is the parent's, which kills this process; until here the signals were held

    job = json.loads(sys.argv[1])
    try:
        _number_target(ParallelSource(job["src"], job["tgt"], job["input"]), Path(job["d"]), job["opts"], job["mapped"])
    except XlingError as e:  # the parent raises it (its own read of the same file usually fails first)
        print(json.dumps({"message": e.message, "file": e.file, "line": e.line, "fix": e.fix}), file=sys.stderr)
        sys.exit(2)
