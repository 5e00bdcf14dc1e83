"""``xling eval transfer``: one fine-tune per source language, every target scored, a source x target matrix.

Each source is one ``eval xglue`` run (:func:`xling.xglue.run.evaluate`) in ``OUT/runs/SRC/``, so a
finished source is skipped on a re-run (its signature is unchanged) and an interrupted matrix resumes
at the first unfinished source. A source trains on its train set, or on its dev set where the task has
no train file for it (``train_split="auto"``; see :mod:`xling.xglue.sources`). Every cell is the test
score of the target (the source's own test set is its in-language cell, never trained on).

Rows and columns are ordered by family, genus, script (:mod:`xling.languages`). The summary compares the
off-diagonal cells whose source and target share a group (``group``: WALS genus by default, so Germanic
-> Germanic is in-group, English -> French is not) with the cells that do not: each mean and their gap
(in-group - cross-group) with a 95 % bootstrap interval. A replicate draws every target's test sentences
with replacement (one draw per target, shared by all its sources: the cells stay paired) and re-scores
each cell from per-sentence statistics (:mod:`xling.significance`), averaging a cell over seeds.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from xling import __version__, languages
from xling.errors import XlingError
from xling.io import read_json
from xling.xglue.run import EvalConfig, evaluate
from xling.xglue.tasks import get_tasks

KIND = "xling-eval-transfer"
GROUPS = ("genus", "family", "script")
FILES = ("transfer.json", "transfer.md", "transfer.png")


@dataclass
class TransferConfig:
    xglue: EvalConfig  # the fine-tuning and evaluation settings shared by every source (its out is unused)
    sources: str = "en"  # a --langs selector over the languages with a train or dev file
    targets: str = "all"  # a --langs selector over the languages with a test file
    train_split: str = "auto"  # auto: train where the language has a train file, else dev
    out: Path = Path("transfer-out")
    group: str = "genus"  # what "in-family" means: genus, family or script
    n_samples: int = 1000
    seed: int = 12345
    force: bool = False


def plan(cfg: TransferConfig) -> tuple:
    """(task spec, sources, {source: train split}, targets), checked before any training."""
    specs = get_tasks(cfg.xglue.tasks)
    if len(specs) != 1:
        raise XlingError(f"eval transfer takes one task, not {cfg.xglue.tasks!r}", fix="--task pos (one at a time)")
    spec = specs[0]
    if cfg.group not in GROUPS:
        raise XlingError(f"--group must be one of {', '.join(GROUPS)}, not {cfg.group!r}")
    if cfg.train_split not in ("auto", "train", "dev"):
        raise XlingError(f"--train-split must be auto, train or dev, not {cfg.train_split!r}")
    if cfg.n_samples < 10:
        raise XlingError("--samples must be at least 10")
    data = Path(cfg.xglue.data)
    has_train = set(spec.found_langs(data, "train"))
    trainable = sorted(has_train | set(spec.found_langs(data, "dev")))
    testable = spec.found_langs(data, "test")
    if not testable:
        raise XlingError(f"task {spec.name}: no test file in --data", file=data,
                         fix=f"expected the official layout, e.g. {spec.path(data, 'en', 'test')}")
    sources = languages.select(cfg.sources, trainable, "--sources")
    targets = languages.select(cfg.targets, testable, "--targets")
    languages.require(sources + targets, "the transfer matrix's languages")
    splits = {s: cfg.train_split if cfg.train_split != "auto" else "train" if s in has_train else "dev"
              for s in sources}
    return spec, sources, splits, targets


def _check_out(out: Path, force: bool) -> None:
    rec = out / "transfer.json"
    if rec.is_file():
        if read_json(rec, "eval transfer record").get("kind") != KIND and not force:
            raise XlingError("--out holds a transfer.json that xling did not write", file=rec,
                             fix="choose another --out, or --force to replace it")
    elif any((out / f).exists() for f in FILES[1:]) and not force:
        raise XlingError("--out holds transfer files that xling did not write", file=out,
                         fix="choose another --out, or --force to replace them")


def run(cfg: TransferConfig, on_step: Callable[[], None] | None = None,
        on_source: Callable[[str, int, int], None] | None = None,
        on_done: Callable[[str, bool], None] | None = None) -> dict:
    """Fine-tune (or skip, when up to date) each source, score every target, write the matrix files.
    ``on_source(src, i, n)`` before each source, ``on_done(src, skipped)`` after it."""
    spec, sources, splits, targets = plan(cfg)
    out = Path(cfg.out)
    _check_out(out, cfg.force)
    runs = {}
    for i, s in enumerate(sources):
        if on_source:
            on_source(s, i, len(sources))
        sub = dataclasses.replace(cfg.xglue, train_lang=s, train_split=splits[s], out=out / "runs" / s,
                                  zero_shot=[t for t in targets if t != s], force=cfg.force)
        runs[s] = evaluate(sub, on_step=on_step)
        if on_done:
            on_done(s, bool(runs[s].get("skipped")))
    result = matrix(cfg, spec, sources, splits, targets, runs)
    from xling.xglue.transfer_report import write

    write(result, out)
    return result


def _cell(res: dict, task: str, lang: str) -> Optional[float]:
    v = res["tasks"][task]["splits"]["test"]["langs"].get(lang)
    return None if v is None else v["mean"]


def matrix(cfg: TransferConfig, spec, sources, splits, targets, runs: dict) -> dict:
    """The result record: ordered languages, the score matrix, the in-/cross-group summary."""
    from xling.significance.runs import load_run

    meta = {lg: languages.info(lg) for lg in dict.fromkeys(sources + targets)}
    rows = sorted(sources, key=lambda lg: languages.group_key(meta[lg]))
    cols = sorted(targets, key=lambda lg: languages.group_key(meta[lg]))
    scores = {s: {t: _cell(runs[s], spec.name, t) for t in cols} for s in rows}
    stats = {}
    for s in rows:
        units = load_run(Path(cfg.out) / "runs" / s, Path(cfg.xglue.data), "test").units
        stats[s] = {t: units[(spec.name, t)] for t in cols if (spec.name, t) in units}
    summaries = gaps(rows, cols, meta, stats, cfg.n_samples, cfg.seed)
    x = cfg.xglue
    return {"kind": KIND, "xling": __version__, "task": spec.name, "metric": spec.metric, "split": "test",
            "sources": rows, "targets": cols, "train_split": {s: splits[s] for s in rows}, "scores": scores,
            "languages": {lg: m.as_dict() for lg, m in meta.items()}, "metadata_sources": languages.SOURCES,
            "group": cfg.group, "summary": summaries[cfg.group],
            "summaries": summaries,
            "runs": {s: {"dir": str(Path("runs") / s), "signature": runs[s]["signature"]} for s in rows},
            "settings": {"seeds": x.seeds, "max_train_examples": x.max_train_examples,
                         "max_eval_examples": x.max_eval_examples, "recipe": x.recipe, "overrides": x.overrides}}


def _replicates(rows, cols, stats: dict, n_samples: int, seed: int) -> tuple[dict, dict]:
    """({cell: observed score}, {cell: n_samples replicate scores}): one draw of each target's test
    sentences shared by all its sources; a cell's score is the mean over its seeds."""
    from xling.significance.runs import _aggregate

    rng = np.random.default_rng(seed)
    obs, rep = {}, {}
    for t in cols:
        have = [s for s in rows if t in stats[s]]
        if not have:
            continue
        n = stats[have[0]][t].stats[0].shape[0]
        counts = np.zeros((n_samples, n))
        np.add.at(counts, (np.arange(n_samples)[:, None], rng.integers(0, n, size=(n_samples, n))), 1.0)
        for s in have:
            u = stats[s][t]
            agg = _aggregate(u.aggregate)
            obs[(s, t)] = float(np.mean([agg(st.sum(0)) for st in u.stats]))
            rep[(s, t)] = np.mean([agg(counts @ st) for st in u.stats], axis=0)
    return obs, rep


def gaps(rows, cols, meta, stats: dict, n_samples: int, seed: int) -> dict:
    """For each grouping level (genus, family, script): the mean in-group and cross-group transfer over the
    off-diagonal cells and their gap with a 95 % bootstrap interval over each target's test sentences."""
    obs, rep = _replicates(rows, cols, stats, n_samples, seed)
    out = {}
    for level in GROUPS:
        same = {c: getattr(meta[c[0]], level) == getattr(meta[c[1]], level) for c in obs if c[0] != c[1]}
        cells_in = [c for c, v in same.items() if v]
        cells_cross = [c for c, v in same.items() if not v]
        g = {"level": level, "in_cells": [f"{s}->{t}" for s, t in cells_in],
             "cross_cells": [f"{s}->{t}" for s, t in cells_cross], "n_samples": n_samples, "seed": seed,
             "in_mean": None, "cross_mean": None, "gap": None, "ci_low": None, "ci_high": None}
        if cells_in:
            g["in_mean"] = float(np.mean([obs[c] for c in cells_in]))
        if cells_cross:
            g["cross_mean"] = float(np.mean([obs[c] for c in cells_cross]))
        if cells_in and cells_cross:
            d = np.mean([rep[c] for c in cells_in], axis=0) - np.mean([rep[c] for c in cells_cross], axis=0)
            lo, hi = np.percentile(d, [2.5, 97.5])
            g.update(gap=g["in_mean"] - g["cross_mean"], ci_low=float(lo), ci_high=float(hi))
        out[level] = g
    return out
