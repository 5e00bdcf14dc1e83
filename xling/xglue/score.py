"""Score XGLUE prediction files (``PRED/TASK/lang.prediction``, ``TASK`` upper case as in the release:
``POS``, ``MLQA``, ``PAWSX``) against the gold release the way the official scorer (XGLUE's
``evaluation/xglue_evaluate.py``) does:

- gold and prediction files are read line by line as it reads them: every line counts for the
  one-label-a-line tasks (a blank line is an empty label); PAWS-X gold skips its header and blank
  lines; the label is the last tab field (NER/POS: the last whitespace field) of a gold line and the
  whole stripped line of a prediction; NER/POS gold skips ``-DOCSTART-`` lines;
- NER/POS: a predicted sentence shorter than the gold one is padded with ``O`` (so missing tags cost
  recall, never POS precision); fewer or more sentences, or a longer sentence, is an error;
- MLQA: a JSON object ``{question id: answer text}``; every gold question counts, unanswered ones 0;
- WPR: one number a line, nDCG per query (see :mod:`xling.xglue.metrics.ndcg`);
- task score = the mean over the task's official languages (its ``langs``). The official scorer
  needs a prediction for each of them; with some missing we still score the rest but the average is
  marked ``official_avg: false`` with the missing languages listed. Prediction files of languages
  outside the official list are scored but never enter the average of a complete run.

Differences kept on purpose: scores are in 0-100 for every task (the official script prints accuracy,
seqeval and nDCG as fractions, MLQA F1 in 0-100); labels outside a task's label set, a WPR score that
is not a number, or a blank line that would shift every later tag are errors here, where the official
scorer silently counts them wrong.
"""
from __future__ import annotations

from pathlib import Path

from xling.errors import XlingError
from xling.xglue.metrics import METRICS
from xling.xglue.metrics.mlqa_f1 import MlqaF1
from xling.xglue.readers import (file_lines, generation_gold, read_conll, read_generation_pred, read_qa_predictions,
                                 read_squad, read_tag_predictions, read_tsv_gold)
from xling.xglue.tasks import TaskSpec, get_tasks


def score_file(spec: TaskSpec, gold_path: Path, pred_path: Path, lang: str, notes: dict | None = None) -> float:
    """One language's score (0-100). ``notes`` (optional) receives ``padded``: NER/POS words the
    prediction left out, scored as ``O`` as the official scorer does; ``hypotheses``: the generated
    texts read (generation tasks)."""
    metric = METRICS[spec.metric]
    if spec.family == "generate":
        gold = generation_gold(gold_path)
        hyps = read_generation_pred(pred_path, len(gold))
        if notes is not None:
            notes["hypotheses"] = hyps
        return metric().score(gold, hyps)
    if spec.family == "tag":
        gold = [t for _w, t in read_conll(gold_path)]
        pred = read_tag_predictions(pred_path)
        ng, npred = sum(map(len, gold)), sum(map(len, pred))
        longer = [i for i, (g, p) in enumerate(zip(gold, pred), 1) if len(p) > len(g)]
        if len(pred) != len(gold) or longer:
            where = f"; sentence {longer[0]} has more tags than words" if longer else ""
            raise XlingError(f"prediction has {npred} tag lines in {len(pred)} sentences, gold has {ng} words in "
                             f"{len(gold)} sentences{where}", file=pred_path,
                             fix="one tag a line, a blank line after each sentence, in the gold file's order")
        _check(spec, [t for s in pred for t in s], pred_path, tags=True)
        if notes is not None:
            notes["padded"] = ng - npred
        return metric().score(gold, [p + ["O"] * (len(g) - len(p)) for g, p in zip(gold, pred)])
    if spec.family == "qa":
        gold = [(q["id"], [a["text"] for a in q["answers"]] or [""]) for q in read_squad(gold_path)]
        return MlqaF1(lang).score(gold, read_qa_predictions(pred_path))
    gold_rows = read_tsv_gold(spec, gold_path)
    pred = [ln.strip() for ln in file_lines(pred_path)]
    if len(pred) != len(gold_rows):
        raise XlingError(f"prediction has {len(pred)} lines, gold has {len(gold_rows)}", file=pred_path,
                         fix="one prediction a line, in the order of the gold file's examples"
                             + (" (its header line excluded)" if spec.header else ""))
    if spec.family == "rank":
        for i, p in enumerate(pred, 1):
            try:
                float(p)
            except ValueError:
                raise XlingError(f"WPR prediction {p!r} is not a number", file=pred_path, line=i,
                                 fix="one relevance score a line (a label 0-4 or any real number)") from None
        return metric().score([(r[0], r[-1].strip()) for r in gold_rows], pred)
    _check(spec, pred, pred_path)
    return metric().score([r[-1].strip() for r in gold_rows], pred)


def _check(spec: TaskSpec, labels, path, tags: bool = False):
    if spec.labels is None:
        return
    bad = sorted(set(labels) - set(spec.labels))
    if bad:
        first = next(t for t in labels if t in set(bad))  # the one met first in the file: its line is named
        line = None
        for i, ln in enumerate(file_lines(path), 1):
            fields = ln.split()
            if (fields[-1] == first if tags else ln.strip() == first) if fields or not tags else False:
                line = i
                break
        shown = ", ".join(repr(b) if not b else b for b in [first] + [b for b in bad if b != first][:9])
        raise XlingError(f"label(s) {shown} outside the {spec.name} label set", file=path, line=line,
                         fix="allowed: " + " ".join(spec.labels))


def task_average(spec: TaskSpec, scores: dict) -> dict:
    """The task score over ``scores`` ({lang: value}) as the official scorer averages it: the mean over
    the task's official languages. With some of them missing there is no official average: the mean
    over the languages given, marked ``official_avg: false``, with ``missing`` listed."""
    missing = [lg for lg in spec.langs if lg not in scores]
    used = [lg for lg in spec.langs if lg in scores] if not missing else list(scores)
    return {"avg": sum(scores[lg] for lg in used) / len(used) if used else 0.0,
            "official_avg": not missing, "avg_langs": used, "missing": missing}


def score_dir(pred: Path, gold: Path, tasks: str | list[str], split: str) -> dict:
    """{task: {"langs": {lang: score}, "avg": mean}} plus "understanding" (mean over understanding tasks)
    and "generation" (mean over generation tasks; their entries also hold the per-language "off_target"
    rate and sacrebleu's signature); a kind without tasks gets None."""
    if split not in ("dev", "test"):
        raise XlingError(f"split must be dev or test, not {split!r}")
    pred, gold = Path(pred), Path(gold)
    result: dict = {}
    jobs = []
    for spec in get_tasks(tasks):
        pdir = pred / spec.pred_dir
        files = sorted(pdir.glob(f"*.{spec.pred_ext}")) if pdir.is_dir() else []
        if not files:
            other = pred / spec.name
            hint = f" ({other} found: the official scorer reads {spec.pred_dir}/, rename it)" if (
                other.is_dir() and not other.samefile(pred)) else ""
            raise XlingError(f"no predictions for task {spec.name}{hint}", file=pdir,
                             fix=f"write {pdir}/LANG.{spec.pred_ext} for each of the task's languages: "
                                 + " ".join(spec.langs))
        for f in files:
            lang = f.name.split(".")[0]
            g = spec.path(gold, lang, split)
            if not g.is_file():
                raise XlingError(f"gold file missing for {spec.name}/{lang} ({split})", file=g,
                                 fix=f"expected the official layout: {spec.eval_file}")
            jobs.append((spec, lang, g, f))
    for spec, lang, g, f in jobs:  # all checks above pass before any scoring
        entry = result.setdefault(spec.name, {"metric": spec.metric, "family": spec.family, "langs": {},
                                              "signature": METRICS[spec.metric]().signature()})
        notes: dict = {}
        entry["langs"][lang] = score_file(spec, g, f, lang, notes)
        if notes.get("padded"):
            entry.setdefault("padded", {})[lang] = notes["padded"]
        if spec.family == "generate":  # off-target rate of the texts just scored (fixed identifier languages)
            from xling.xglue import langid

            entry.setdefault("off_target", {})[lang] = langid.off_target_rate(notes["hypotheses"], lang)
            entry["signature"] = f"{METRICS[spec.metric]().signature()}|{langid.signature()}"
    specs = {spec.name: spec for spec, *_ in jobs}
    for name, v in result.items():
        v.update(task_average(specs[name], v["langs"]))
    return {"tasks": result, "split": split, **family_means({k: v["avg"] for k, v in result.items()},
                                                             {k: v["family"] for k, v in result.items()})}


def family_means(avgs: dict, families: dict) -> dict:
    """{"understanding": mean of the understanding tasks' scores, "generation": of the generation ones}."""
    und = [v for k, v in avgs.items() if families[k] != "generate"]
    gen = [v for k, v in avgs.items() if families[k] == "generate"]
    return {"understanding": sum(und) / len(und) if und else None,
            "generation": sum(gen) / len(gen) if gen else None}
