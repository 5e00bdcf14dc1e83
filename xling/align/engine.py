"""The alignment pipeline: one streaming pass to tokenize and number the text for eflomal, eflomal's
sampler (a separate program), then links read, symmetrized and written in bounded chunks.

Memory is bounded by the vocabulary and the chunk size, not by the corpus: the text is never held
whole (besides two small integer arrays of sentence lengths). eflomal itself holds the numbered
corpus and one alignment per sampler and direction in memory (linear in tokens x samplers).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from xling.align import eflomal
from xling.align.links import Alignments, format_pharaoh, parse_links, read_link_lines
from xling.align.options import resolve
from xling.align.sampling import SamplerQueue
from xling.align.symmetrize import symmetrize_batch
from xling.align.numbering import MAX_LEN, SideNumbering
from xling.errors import XlingError
from xling.io import atomic_path

MAX_CELLS = 1 << 23  # symmetrization grid cells per chunk (a few bool arrays of this size)
MAX_CHUNK = 50_000
RUN_PAIRS = 500_000  # pairs per eflomal run: eflomal holds its whole input in memory

Progress = Callable[[str, float, float], None]  # (phase, completed, total); phases: reading, sampling, writing


@dataclass
class _Encoded:
    ns: np.ndarray
    nt: np.ndarray
    n_pairs: int
    tokens: int
    mapped: bool
    remap_s: np.ndarray | None = None  # per pair: are its source words finer than its input tokens?
    remap_t: np.ndarray | None = None


class _Run:
    """One eflomal run's share of the corpus: numbered text, word counts and (for mapped input) owners."""

    def __init__(self, d: Path, tokenizer: str, mapped: bool):
        d.mkdir()
        self.d, self.mapped, self.n = d, mapped, 0
        self.src, self.tgt = SideNumbering(d / "src.num", tokenizer), SideNumbering(d / "tgt.num", tokenizer)
        self.lens: list[tuple[np.ndarray, ...]] = []  # per block: ns, nt (and the remap flags when mapped)
        self.own = [open(d / "own.src", "wb"), open(d / "own.tgt", "wb")] if mapped else None

    def add(self, s_lines: list[str], t_lines: list[str], lowercase: bool, text=None) -> None:
        """Append a block of pairs; a pair with an empty or over-long side is written empty on both sides (no
        links), as eflomal-align does. ``text``: two files that get the words (for eflomal-makepriors)."""
        sides = [self.src.split(s_lines, lowercase, self.mapped), self.tgt.split(t_lines, lowercase, self.mapped)]
        bad = np.zeros(len(s_lines), bool)
        for per_tok, n_words, _, _ in sides:
            bad |= (n_words == 0) | (n_words >= MAX_LEN) | (per_tok > 0xFFFF)
        row = []
        for k, (side, (_, n_words, wid, own)) in enumerate(zip((self.src, self.tgt), sides)):
            if bad.any():
                wid = wid[np.repeat(~bad, n_words)]
                n_words = np.where(bad, 0, n_words)
            side.write(n_words, wid)
            if text is not None:
                text[k].write(side.words_text(n_words, wid))
            row.append(n_words.astype(np.uint16))
            if self.own is not None:
                flags = np.zeros(len(bad), bool) if own is None else own[0] & ~bad
                if own is not None:
                    self.own[k].write(own[1][~bad[own[2]]].astype(np.uint16).tobytes())
                row.append(flags)
        self.lens.append(tuple(row))
        self.n += len(s_lines)

    def close(self) -> _Encoded:
        for f in self.own or []:
            f.close()
        self.src.close()
        self.tgt.close()
        cols = [np.concatenate(c) for c in zip(*self.lens)] if self.lens else [np.zeros(0, np.uint16)] * 4
        if self.mapped:
            ns, rs, nt, rt = cols
        else:
            (ns, nt), rs, rt = cols[:2], None, None
        self.enc = _Encoded(ns.astype(np.int64), nt.astype(np.int64), self.n, self.src.tokens + self.tgt.tokens,
                            self.mapped, None if rs is None else rs.astype(bool), None if rt is None else rt.astype(bool))
        return self.enc


class _Owners:
    """Input-token index of every word of the flagged pairs of a chunk (read from ``f``), and each pair's
    length in input tokens."""

    def __init__(self, f, flags: np.ndarray, lens: np.ndarray):
        self.flags, self.lens, self.owners = flags, lens, None
        count = int(lens[flags].sum())
        if count:
            self.owners = np.fromfile(f, np.uint16, count).astype(np.int64)
            idx = np.flatnonzero(flags)
            self.start = np.zeros(len(flags), np.int64)
            self.start[idx] = np.concatenate(([0], np.cumsum(lens[idx])[:-1]))
            self.lens = lens.copy()
            self.lens[idx] = np.maximum.reduceat(self.owners, self.start[idx]) + 1

    def apply(self, sid: np.ndarray, idx: np.ndarray) -> np.ndarray:
        if self.owners is None:
            return idx
        hit = self.flags[sid]
        return np.where(hit, self.owners[np.where(hit, self.start[sid] + idx, 0)], idx)


def _to_tokens(links, own_s: _Owners, own_t: _Owners):
    """One direction's word links as input-token links (several words of one token: one link)."""
    sid, i, j = links
    if own_s.owners is None and own_t.owners is None:
        return links
    hit = own_s.flags[sid] | own_t.flags[sid]  # only links of pairs with split tokens can repeat
    sub = sid[hit]
    key = np.unique((sub << 42) | (own_s.apply(sub, i[hit]) << 21) | own_t.apply(sub, j[hit]))
    return (np.concatenate((sid[~hit], key >> 42)), np.concatenate((i[~hit], (key >> 21) & 0x1FFFFF)),
            np.concatenate((j[~hit], key & 0x1FFFFF)))


class Aligner:
    """eflomal in both directions + symmetrization. Options as ``xling align``; see :mod:`xling.align.options`."""

    def __init__(self, *, sym: str = "grow-diag-final-and", tokenizer: str = "unicode", lowercase: bool = True,
                 model: int = 3, preset: str = "default", length: float | None = None,
                 n_samplers: int | None = None, priors: str | Path | None = None, run_pairs: int = RUN_PAIRS):
        self.opts = resolve(sym=sym, tokenizer=tokenizer, lowercase=lowercase, model=model, preset=preset,
                            length=length, n_samplers=n_samplers, priors=priors, run_pairs=run_pairs)
        self.timings: dict[str, float] = {}

    # -- pass 1: tokenize and number -------------------------------------------------------------
    def _encode(self, blocks, pretokenized: bool, d: Path, save_text: bool, progress, total_bytes) -> Iterator[_Run]:
        """Number ``(src_lines, tgt_lines, done)`` blocks; yield each run as soon as it is numbered and closed."""
        tok, low, limit = self.opts["tokenizer"], self.opts["lowercase"], self.opts["run_pairs"] or (1 << 62)
        mapped = pretokenized and tok != "whitespace"  # indices must stay those of the input's tokens
        text = [open(d / "src.txt", "w", encoding="utf-8"), open(d / "tgt.txt", "w", encoding="utf-8")] \
            if save_text else None
        runs: list[_Run] = []  # the current one last
        for s_lines, t_lines, done in blocks:
            start = 0
            while start < len(s_lines):
                if not runs or runs[-1].n >= limit:
                    if runs:
                        runs[-1].close()
                        yield runs[-1]
                    runs.append(_Run(d / f"run{len(runs)}", tok, mapped))
                end = min(len(s_lines), start + limit - runs[-1].n)
                runs[-1].add(s_lines[start:end], t_lines[start:end], low, text)
                start = end
            if progress is not None:
                progress("reading", done, total_bytes)
        for f in text or []:
            f.close()
        if not runs:
            runs.append(_Run(d / "run0", tok, mapped))
        runs[-1].close()
        yield runs[-1]

    # -- pass 2: read links, symmetrize, write ---------------------------------------------------
    def _chunks(self, enc: _Encoded) -> Iterator[tuple[int, int]]:
        cells = np.cumsum(enc.ns * enc.nt)
        start = 0
        while start < enc.n_pairs:
            base = cells[start - 1] if start else 0
            end = int(np.searchsorted(cells, base + MAX_CELLS, side="right"))
            end = min(max(end, start + 1), start + MAX_CHUNK, enc.n_pairs)
            yield start, end
            start = end

    def _decode(self, enc: _Encoded, d: Path, progress) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        own = [open(d / "own.src", "rb"), open(d / "own.tgt", "rb")] if enc.mapped else None
        with open(d / "fwd", "rb") as ff, open(d / "rev", "rb") as rf:
            for a, b in self._chunks(enc):
                n = b - a
                try:
                    fwd = parse_links(read_link_lines(ff, n), n)
                    rev = parse_links(read_link_lines(rf, n), n)
                except ValueError as e:
                    raise XlingError(f"eflomal's output is incomplete ({e})", fix="re-run; report it if it recurs")
                ns, nt = enc.ns[a:b], enc.nt[a:b]
                if own is not None:  # symmetrize the input's tokens, the units the links are read in
                    own_s, own_t = _Owners(own[0], enc.remap_s[a:b], ns), _Owners(own[1], enc.remap_t[a:b], nt)
                    fwd, rev = _to_tokens(fwd, own_s, own_t), _to_tokens(rev, own_s, own_t)
                    ns, nt = own_s.lens, own_t.lens
                yield n, *symmetrize_batch(ns, nt, fwd, rev, self.opts["sym"])
                if progress is not None:
                    progress("writing", b, enc.n_pairs)
        for f in own or []:
            f.close()

    def _run(self, blocks, pretokenized: bool, progress, total_bytes, save_priors) -> Iterator:
        """Encode runs, sample each in the background as soon as it is numbered (:mod:`.sampling`), and
        yield the symmetrized links run by run; the phases of consecutive runs overlap."""
        with tempfile.TemporaryDirectory(prefix="xling-align-") as tmp:
            d = Path(tmp)
            sampler = SamplerQueue(self.opts, progress)
            runs: list[_Run] = []
            try:
                t0, c0 = time.perf_counter(), time.process_time()
                for run in self._encode(blocks, pretokenized, d, save_priors is not None, progress, total_bytes):
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
                    yield from self._decode(run.enc, run.d, rep)
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
                                          save_priors):
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
                preset: str = "default", run_pairs: int = RUN_PAIRS) -> Alignments:
    """Word-align raw sentence pairs; links index the words of :func:`xling.align.tokenize.tokenize`.

    Returns a list-like :class:`Alignments` (``al[k]`` is ``[(i, j), ...]``; ``al.take(idx)`` selects
    pairs and :func:`xling.align.pharaoh.write_pharaoh` writes it without per-link Python objects).
    """
    al = Aligner(sym=sym, tokenizer=tokenizer, lowercase=lowercase, model=model, preset=preset, length=length,
                 n_samplers=n_samplers, priors=priors, run_pairs=run_pairs)
    return al.align_pairs(src_lines, tgt_lines, progress=progress, save_priors=save_priors)


def align_files(out: str | Path, *, src=None, tgt=None, input=None, progress: Progress | None = None,
                save_priors=None, **opts) -> dict:
    """Align files (``--src/--tgt`` or one ``src ||| tgt`` file) into Pharaoh ``out``; returns run stats."""
    from xling.align.source import ParallelSource

    return Aligner(**opts).align_to_file(ParallelSource(src, tgt, input), out, progress=progress,
                                         save_priors=save_priors)
