"""Score XGLUE prediction files (``PRED/TASK/lang.prediction``) against the gold release, the way
the official scorer does: per task and language one metric value, task score = mean over languages.
"""
from __future__ import annotations

import json
from pathlib import Path

from xling.errors import XlingError
from xling.xglue.metrics import METRICS
from xling.xglue.metrics.mlqa_f1 import MlqaF1
from xling.xglue.tasks import TaskSpec, get_tasks, read_conll, read_tag_lines


def read_tsv_labels(spec: TaskSpec, path: Path) -> list[str]:
    rows = [r for r in path.read_text(encoding="utf-8").splitlines() if r.strip()]
    if spec.header:
        rows = rows[1:]
    return [r.split("\t")[-1].strip() for r in rows]


def read_tsv(spec: TaskSpec, path: Path) -> list[list[str]]:
    rows = [r.split("\t") for r in path.read_text(encoding="utf-8").splitlines() if r.strip()]
    return rows[1:] if spec.header else rows


def read_squad(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (ValueError, KeyError) as e:
        raise XlingError(f"not SQuAD v1.1 JSON ({e})", file=path) from None
    out = []
    for art in data:
        for para in art["paragraphs"]:
            for qa in para["qas"]:
                out.append({"id": qa["id"], "question": qa["question"], "context": para["context"],
                            "answers": qa.get("answers", [])})
    return out


def _nonblank(path: Path) -> int:
    return sum(1 for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip())


def score_file(spec: TaskSpec, gold_path: Path, pred_path: Path, lang: str) -> float:
    metric = METRICS[spec.metric]
    if spec.family == "tag":
        gold = [t for _w, t in read_conll(gold_path)]
        ng, npred = _nonblank(gold_path), _nonblank(pred_path)
        pred = read_tag_lines(pred_path)
        if ng != npred or [len(s) for s in gold] != [len(s) for s in pred]:
            raise XlingError(f"prediction has {npred} tag lines in {len(pred)} sentences, gold has {ng} in "
                             f"{len(gold)}", file=pred_path, fix="one tag a line, a blank line per sentence")
        _check(spec, [t for s in pred for t in s], pred_path)
        return metric().score(gold, pred)
    if spec.family == "qa":
        gold = {q["id"]: [a["text"] for a in q["answers"]] or [""] for q in read_squad(gold_path)}
        try:
            pred = json.loads(pred_path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise XlingError(f"prediction is not JSON: {e}", file=pred_path) from None
        return MlqaF1(lang).score(gold, pred)
    gold_rows = read_tsv(spec, gold_path)
    pred = [ln.strip() for ln in pred_path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if len(pred) != len(gold_rows):
        raise XlingError(f"prediction has {len(pred)} lines, gold has {len(gold_rows)}", file=pred_path,
                         fix="one prediction a line, in the order of the gold file")
    if spec.family == "rank":
        try:
            [float(p) for p in pred]
        except ValueError:
            raise XlingError("WPR predictions must be numbers (a score per document)", file=pred_path) from None
        return metric().score([(r[0], r[-1].strip()) for r in gold_rows], pred)
    _check(spec, pred, pred_path)
    return metric().score([r[-1].strip() for r in gold_rows], pred)


def _check(spec: TaskSpec, labels, path):
    if spec.labels is None:
        return
    bad = sorted(set(labels) - set(spec.labels))
    if bad:
        raise XlingError(f"label(s) {', '.join(bad[:10])} outside the {spec.name} label set", file=path,
                         fix="allowed: " + " ".join(spec.labels))


def score_dir(pred: Path, gold: Path, tasks: str | list[str], split: str) -> dict:
    """{task: {"langs": {lang: score}, "avg": mean}} plus "understanding": mean over tasks."""
    if split not in ("dev", "test"):
        raise XlingError(f"split must be dev or test, not {split!r}")
    pred, gold = Path(pred), Path(gold)
    result: dict = {}
    jobs = []
    for spec in get_tasks(tasks):
        pdir = pred / spec.name
        files = sorted(pdir.glob(f"*.{spec.pred_ext}")) if pdir.is_dir() else []
        if not files:
            raise XlingError(f"no predictions for task {spec.name}", file=pdir,
                             fix=f"write {pdir}/LANG.{spec.pred_ext} for each language")
        for f in files:
            lang = f.name.split(".")[0]
            g = spec.path(gold, lang, split)
            if not g.is_file():
                raise XlingError(f"gold file missing for {spec.name}/{lang} ({split})", file=g,
                                 fix=f"expected the official layout: {spec.eval_file}")
            jobs.append((spec, lang, g, f))
    for spec, lang, g, f in jobs:  # all checks above pass before any scoring
        result.setdefault(spec.name, {"metric": spec.metric, "langs": {}})["langs"][lang] = score_file(
            spec, g, f, lang)
    for v in result.values():
        v["avg"] = sum(v["langs"].values()) / len(v["langs"])
    result = {"tasks": result, "split": split,
              "understanding": sum(v["avg"] for v in result.values()) / len(result)}
    return result
