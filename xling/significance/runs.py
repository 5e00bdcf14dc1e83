"""Read an ``xling eval xglue`` or ``xling eval retrieval`` output directory as comparable units.

A unit is one (task, language[, direction]) with per-example statistics for every seed, an aggregate
and the digest of the data it was scored on. ``eval xglue`` runs keep every seed's prediction files
(``OUT/TASK/seeds/S/SPLIT/LANG.prediction``); their gold comes from the XGLUE release (``gold``), and
the statistics must give back the scores the run recorded in ``results.json``, or the gold is not
the data the run used. ``eval retrieval`` runs keep per-example outcomes (``OUT/outcomes/PAIR.json``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from xling.errors import XlingError
from xling.io import read_json


@dataclass
class Unit:
    task: str
    lang: str
    metric: str
    aggregate: str  # a key of AGGREGATES, or "bleu"
    stats: list  # one n x k array per seed
    digest: str
    texts: list = field(default_factory=list)  # BLEU: hypotheses per seed
    refs: list = field(default_factory=list)  # BLEU: references


@dataclass
class Run:
    path: Path
    kind: str  # "xglue" or "retrieval"
    signature: str
    data: str  # what "the same data" means for the kind
    units: dict  # (task, lang) -> Unit


def sig_fields(signature: str) -> dict:
    return dict(part.split(":", 1) for part in signature.split("|") if ":" in part)


def load_run(path: Path, gold: Optional[Path] = None, split: str = "test", layer: Optional[int] = None) -> Run:
    path = Path(path)
    res = read_json(path / "results.json", "results file") if (path / "results.json").is_file() else None
    if res is None:
        raise XlingError("not an xling evaluation output (no results.json)", file=path,
                         fix="give directories written by `xling eval xglue` or `xling eval retrieval`")
    if res.get("kind") == "xling-retrieval":
        return _retrieval_run(path, res, layer)
    if "tasks" in res and "signature" in res:
        return _xglue_run(path, res, gold, split)
    raise XlingError("results.json is neither an eval xglue nor an eval retrieval result", file=path / "results.json")


def _retrieval_run(path: Path, res: dict, layer: Optional[int]) -> Run:
    layer = res["report_layer"] if layer is None else layer
    if layer not in res["layers"]:
        raise XlingError(f"the run has no layer {layer} (it has {', '.join(map(str, res['layers']))})",
                         file=path / "results.json", fix="--layer with a layer both runs evaluated")
    units = {}
    for pair, entry in res["pairs"].items():
        oc_path = path / "outcomes" / f"{pair}.json"
        oc = read_json(oc_path, "retrieval outcomes")
        per = oc["layers"][str(layer)]
        if res["task_kind"] == "mining":
            stats = np.asarray(per["per_source"], dtype=np.float64).reshape(-1, 3)
            units[(res["task"], pair)] = Unit(res["task"], pair, "F1", "f1", [stats], entry["digest"])
            continue
        gold = [tuple(g) for g in oc["gold"]]
        for direction, found in per.items():
            fwd = direction.split("->")[0] == pair.split("-")[0]
            pairs = gold if fwd else [(j, i) for i, j in gold]
            correct = [float(found[q] == want) for q, want in pairs]
            units[(res["task"], direction)] = Unit(res["task"], direction, "top-1 acc", "mean",
                                                   [np.column_stack([correct, np.ones(len(correct))])],
                                                   entry["digest"])
    sig = res["signature"]
    return Run(path, "retrieval", sig, f"task:{res['task']}", units)


def _xglue_run(path: Path, res: dict, gold: Optional[Path], split: str) -> Run:
    """Each task folder ``OUT/TASK/`` holds ``task.json`` (its signature, with the data digest, and every
    seed's scores) and ``seeds/S/SPLIT/LANG.prediction``."""
    from xling.significance.examples import example_stats
    from xling.xglue.tasks import get_tasks

    if gold is None:
        raise XlingError("comparing eval xglue runs needs the XGLUE data they were evaluated on", file=path,
                         fix="--gold XGLUE_DIR (the --data of both runs)")
    units, limits = {}, set()
    for spec in get_tasks(list(res["tasks"])):
        task = read_json(path / spec.pred_dir / "task.json", "eval xglue task record")
        f = sig_fields(task["signature"])
        limit = None if f.get("max_eval", "None") == "None" else int(f["max_eval"])
        limits.add(f.get("max_eval"))
        for lang in task["langs"]:
            if not any(lang in (run["scores"].get(split) or {}) for run in task["runs"]):
                continue  # a set the run trained on (--train-split dev) is never scored
            gold_path = spec.path(gold, lang, split)
            if not gold_path.is_file():
                raise XlingError(f"gold file missing for {spec.name}/{lang} ({split})", file=gold_path,
                                 fix="--gold must be the XGLUE release directory the runs used")
            stats, texts, agg = [], [], None
            for run in task["runs"]:
                pred = path / spec.pred_dir / "seeds" / str(run["seed"]) / split / f"{lang}.{spec.pred_ext}"
                if not pred.is_file():
                    raise XlingError("prediction file missing", file=pred,
                                     fix="compare complete `xling eval xglue` output directories")
                st, agg = example_stats(spec, gold_path, pred, lang, limit)
                score, recorded = float(_aggregate(agg)(st.sum(0))), run["scores"][split][lang]
                if abs(score - recorded) > 1e-3:
                    raise XlingError(f"{spec.name}/{lang} seed {run['seed']}: the gold gives {score:.4f}, the run "
                                     f"recorded {recorded:.4f}", file=gold_path,
                                     fix="--gold must be the XGLUE data the run was evaluated on")
                stats.append(st)
                if agg == "bleu":
                    from xling.xglue import readers

                    texts.append([x.strip() for x in readers.read_text_lines(pred)])
            refs = []
            if agg == "bleu":
                from xling.xglue import readers

                refs = readers.generation_gold(gold_path)[:limit]
            units[(spec.name, lang)] = Unit(spec.name, lang, spec.metric, agg, stats,
                                            f"{f.get('data', '?')}|max_eval:{f.get('max_eval')}", texts, refs)
    return Run(path, "xglue", res["signature"], f"split:{split}", units)


def _aggregate(name: str):
    if name == "bleu":
        from xling.significance.bleu import bleu_score

        return bleu_score
    from xling.significance.bootstrap import AGGREGATES

    return AGGREGATES[name]


def describe(run: Run) -> str:
    f = sig_fields(run.signature)
    return json.dumps({k: f.get(k) for k in ("model", "task", "tasks", "pooling", "layer", "seeds") if k in f})
