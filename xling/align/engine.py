"""The alignment pipeline: one streaming pass to tokenize and number the text for eflomal
(:mod:`.encode`; the target side in a second process on large files), eflomal's sampler (a separate
program, :mod:`.sampling`), then links read, symmetrized and written in bounded chunks (:mod:`.decode`;
half of each large run in a forked process).

Memory is bounded by the vocabulary and the chunk size, not by the corpus: the text is never held
whole (besides two small integer arrays of sentence lengths). eflomal itself holds the numbered
corpus and one alignment per sampler and direction in memory (linear in tokens x samplers).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from xling.align import eflomal
from xling.align.decode import decode_run
from xling.align.encode import Run, encode_runs
from xling.align.links import Alignments, format_pharaoh
from xling.align.options import resolve
from xling.align.sampling import SamplerQueue
from xling.errors import XlingError
from xling.io import atomic_path
from xling.outputs import writing

RUN_PAIRS = 500_000  # pairs per eflomal run: eflomal holds its whole input in memory

Progress = Callable[[str, float, float], None]  # (phase, completed, total); phases: reading, sampling, writing


class Aligner:
    """eflomal in both directions + symmetrization. Options as ``xling align``; see :mod:`xling.align.options`."""

    def __init__(self, *, sym: str = "grow-diag-final-and", tokenizer: str = "unicode", lowercase: bool = True,
                 model: int = 3, preset: str = "default", length: float | None = None,
                 n_samplers: int | None = None, priors: str | Path | None = None, run_pairs: int = RUN_PAIRS,
                 seed: int = 1):
        self.opts = resolve(sym=sym, tokenizer=tokenizer, lowercase=lowercase, model=model, preset=preset,
                            length=length, n_samplers=n_samplers, priors=priors, run_pairs=run_pairs, seed=seed)
        self.timings: dict[str, float] = {}

    def _run(self, blocks, pretokenized: bool, progress, total_bytes, save_priors, source=None) -> Iterator:
        """Encode runs, sample each in the background as soon as it is numbered (:mod:`.sampling`), and
        yield the symmetrized links run by run; the phases of consecutive runs overlap."""
        with tempfile.TemporaryDirectory(prefix="xling-align-") as tmp, writing(tmp):  # a full disk names it
            d = Path(tmp)
            sampler = SamplerQueue(self.opts, progress, work=d)
            runs: list[Run] = []
            try:
                t0, c0 = time.perf_counter(), time.process_time()
                for run in encode_runs(blocks, d=d, opts=self.opts, pretokenized=pretokenized, save_text=save_priors is not None,
                                       progress=progress, total_bytes=total_bytes, source=source):
                    runs.append(run)
                    sampler.submit(run)
                t_read, c_read = time.perf_counter() - t0, time.process_time() - c0
                n_all = sum(r.n for r in runs)
                t_out = c_out = 0.0
                done_pairs = 0
                for run in runs:
                    sampler.wait(run)
                    if save_priors is not None:
                        for name in ("fwd", "rev"):
                            with open(d / name, "ab") as f:
                                f.write((run.d / name).read_bytes())
                    t3, c3 = time.perf_counter(), time.process_time()
                    rep = None if progress is None else (lambda ph, c, t, k=done_pairs: progress(ph, k + c, n_all))
                    yield from decode_run(run.enc, run.d, self.opts["sym"], rep)
                    t_out += time.perf_counter() - t3
                    c_out += time.process_time() - c3
                    done_pairs += run.n
                    shutil.rmtree(run.d)  # its disk space is not needed any more
            finally:
                sampler.close()
            if save_priors is not None:
                with atomic_path(save_priors) as out:
                    eflomal.make_priors(d / "src.txt", d / "tgt.txt", d / "fwd", d / "rev", out)
            self.timings = {"read_tokenize_number_s": t_read, "eflomal_s": sampler.wall, "links_symmetrize_write_s": t_out,
                            "read_tokenize_number_cpu": c_read, "eflomal_cpu": sampler.cpu,
                            "links_symmetrize_write_cpu": c_out, "pairs": n_all,
                            "tokens": sum(r.enc.tokens for r in runs), "eflomal_runs": len(runs),
                            "xling_peak_rss_mb": eflomal.peak_rss_mb(os.getpid()), "eflomal_peak_rss_mb": sampler.peak}

    def align_to_file(self, source, out: str | Path, *, progress: Progress | None = None,
                      save_priors: str | Path | None = None) -> dict:
        """Align a :class:`~xling.align.source.ParallelSource` and write Pharaoh links to ``out`` atomically."""
        n_pairs = n_links = 0
        with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for n, sid, i, j in self._run(source.columns(), source.pretokenized, progress, source.total_bytes,
                                          save_priors, source):
                f.write(format_pharaoh(n, sid, i, j))
                n_pairs += n
                n_links += len(sid)
        return {"pairs": n_pairs, "links": n_links, **self.timings}

    def align_blocks(self, blocks: Iterable[tuple[list[tuple[str, str]], int]], *, total: int = 0,
                     progress: Progress | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """Align raw (untokenized) pairs given in blocks ``(pairs, done)`` (``done``: progress out of ``total``);
        yield ``(n_pairs, sid, i, j)`` chunks in input order (``sid`` counts from the chunk's first pair), for
        :func:`~xling.align.links.format_pharaoh`. Memory: one block and one chunk, besides eflomal's run."""
        columns = (([s for s, _ in pairs], [t for _, t in pairs], done) for pairs, done in blocks)
        return self._run(columns, False, progress, total, None)

    def align_pairs(self, src_lines: Iterable[str], tgt_lines: Iterable[str], *, pretokenized: bool = False,
                    progress: Progress | None = None, save_priors: str | Path | None = None) -> Alignments:
        """Align in-memory sentence pairs; returns an :class:`Alignments` (list-like, compact)."""
        src_lines, tgt_lines = list(src_lines), list(tgt_lines)
        if len(src_lines) != len(tgt_lines):
            raise XlingError(f"source has {len(src_lines)} lines but target has {len(tgt_lines)}",
                             fix="give line-aligned text with the same number of lines on both sides")
        n, step = len(src_lines), 65536
        blocks = ((src_lines[k:k + step], tgt_lines[k:k + step], min(n, k + step)) for k in range(0, n, step))
        parts = list(self._run(blocks, pretokenized, progress, len(src_lines), save_priors))
        return Alignments.concat(parts)


def align_lines(src_lines: list[str], tgt_lines: list[str], *, sym: str = "grow-diag-final-and",
                tokenizer: str = "unicode", lowercase: bool = True, model: int = 3, length: float | None = None,
                n_samplers: int | None = None, priors: str | Path | None = None,
                save_priors: str | Path | None = None, progress: Progress | None = None,
                preset: str = "default", run_pairs: int = RUN_PAIRS, seed: int = 1) -> Alignments:
    """Word-align raw sentence pairs; links index the words of :func:`xling.align.tokenize.tokenize`.

    Returns a list-like :class:`Alignments` (``al[k]`` is ``[(i, j), ...]``; ``al.take(idx)`` selects
    pairs and :func:`xling.align.pharaoh.write_pharaoh` writes it without per-link Python objects).
    """
    al = Aligner(sym=sym, tokenizer=tokenizer, lowercase=lowercase, model=model, preset=preset, length=length,
                 n_samplers=n_samplers, priors=priors, run_pairs=run_pairs, seed=seed)
    return al.align_pairs(src_lines, tgt_lines, progress=progress, save_priors=save_priors)


def align_files(out: str | Path, *, src=None, tgt=None, input=None, progress: Progress | None = None,
                save_priors=None, **opts) -> dict:
    """Align files (``--src/--tgt`` or one ``src ||| tgt`` file) into Pharaoh ``out``; returns run stats."""
    from xling.align.source import ParallelSource

    return Aligner(**opts).align_to_file(ParallelSource(src, tgt, input), out, progress=progress,
                                         save_priors=save_priors)
