"""Aggregate seeds into mean ± std per task × language and write JSON / Markdown / PNG / rich table.

Task score = mean over languages (official averaging); Understanding score = mean over the
understanding tasks, Generation score = mean over the generation tasks (QG, NTG: BLEU), whose entries
also hold the off-target rate per language (``splits[split]["off_target"]``, a row of its own).
"""
from __future__ import annotations

import statistics
from pathlib import Path

from xling.io import write_json_atomic, write_text_atomic
from xling.xglue.score import family_means, task_average


def _ms(vals):
    return {"mean": statistics.fmean(vals), "std": statistics.pstdev(vals) if len(vals) > 1 else 0.0,
            "runs": vals}


def aggregate(runs: dict, specs, langs, sig: str, identity: dict, hparams: dict) -> dict:
    """``runs``: each task's seed runs; ``identity``: the output directory's shared settings
    (:meth:`xling.xglue.run.EvalConfig.identity`); ``hparams``: each task's fine-tuning settings."""
    tasks = {}
    for spec in specs:
        rs = runs[spec.name]
        entry = {"metric": spec.metric, "family": spec.family, "splits": {},
                 "dev_history": {r["seed"]: r["dev_history"] for r in rs},
                 "train_seconds": {r["seed"]: r.get("train_seconds") for r in rs},
                 "device": rs[0].get("device"), "precision": rs[0].get("precision"),
                 "world_size": rs[0].get("world_size", 1),
                 # examples per forward/backward pass (0: whole batches), per seed: xling may have halved it
                 "micro_batch_size": {r["seed"]: r.get("micro_batch_size", 0) for r in rs}}
        for split in ("dev", "test"):
            per = {lg: _ms([r["scores"][split][lg] for r in rs]) for lg in langs if lg in rs[0]["scores"][split]}
            avgs = [task_average(spec, r["scores"][split]) for r in rs]  # official: over the task's langs
            # no language of the split scored (--train-split dev on its only language): no average
            entry["splits"][split] = {"langs": per, "avg": _ms([a["avg"] for a in avgs]) if per else None,
                                      "official_avg": avgs[0]["official_avg"], "missing": avgs[0]["missing"]}
            if spec.family == "generate":
                entry["splits"][split]["off_target"] = {
                    lg: (None if any(r["off_target"][split][lg] is None for r in rs)
                         else _ms([r["off_target"][split][lg] for r in rs])) for lg in per}
        if spec.family == "generate":
            entry["signature"] = rs[0].get("metric_signature")
        tasks[spec.name] = entry
    fam = {split: family_means({k: t["splits"][split]["avg"]["mean"] for k, t in tasks.items()
                                if t["splits"][split]["avg"]},
                               {k: t["family"] for k, t in tasks.items()}) for split in ("dev", "test")}
    return {"signature": sig, "train_lang": identity["train_lang"], "langs": langs, "seeds": identity["seeds"],
            "hparams": hparams, "tasks": tasks,
            "understanding": {sp: fam[sp]["understanding"] for sp in fam},
            "generation": {sp: fam[sp]["generation"] for sp in fam}}


def _off_target_cells(t: dict, split: str, langs) -> list[str] | None:
    off = t["splits"][split].get("off_target")
    if off is None:
        return None
    return [_fmt(off.get(lg)) for lg in langs]


def _caption(result: dict, split: str) -> str:
    parts = [f"{k.title()} score ({split}): {result[k][split]:.1f}" for k in ("understanding", "generation")
             if (result.get(k) or {}).get(split) is not None]
    partial = [n for n, t in result["tasks"].items() if t["splits"][split].get("official_avg") is False]
    if partial:  # the official average is over all of a task's languages
        parts.append(f"avg of {', '.join(partial)} over the languages run, not all official ones")
    return " · ".join(parts)


def _fmt(ms):
    if ms is None:  # a language the task does not have, or no language identifier for it
        return "-"
    return f"{ms['mean']:.1f} ± {ms['std']:.1f}" if ms["std"] else f"{ms['mean']:.1f}"


def markdown(result: dict, split: str = "test") -> str:
    langs = result["langs"]
    lines = [f"| task | {' | '.join(langs)} | avg |", "|" + "---|" * (len(langs) + 2)]
    for name, t in result["tasks"].items():
        s = t["splits"][split]
        lines.append(f"| {name} | " + " | ".join(_fmt(s["langs"].get(lg)) for lg in langs) + f" | {_fmt(s['avg'])} |")
        off = _off_target_cells(t, split, langs)
        if off is not None:
            lines.append(f"| {name} off-target % | " + " | ".join(off) + " | |")
    lines.append(f"\n{_caption(result, split)}\n")
    lines.append(f"signature: `{result['signature']}`\n")
    lines += [f"{name} signature: `{t['signature']}`\n" for name, t in result["tasks"].items() if t.get("signature")]
    return "\n".join(lines)


def rich_table(result: dict, split: str = "test"):
    from rich.table import Table

    langs = result["langs"]
    tab = Table(title=f"XGLUE zero-shot from {result['train_lang']} ({split})")
    for col in ["task", *langs, "avg"]:
        tab.add_column(col, justify="left" if col == "task" else "right")
    for name, t in result["tasks"].items():
        s = t["splits"][split]
        tab.add_row(name, *[_fmt(s["langs"].get(lg)) for lg in langs], _fmt(s["avg"]))
        off = _off_target_cells(t, split, langs)
        if off is not None:
            tab.add_row(f"{name} off-target %", *off, "")
    tab.caption = _caption(result, split)
    return tab


def signature_lines(result: dict) -> list[str]:
    """The run's signature, then each task's metric signature (generation: sacrebleu's and the language
    identifier's), each prefixed with xling's version."""
    from xling import __version__

    return [f"signature: {result['signature']}"] + [
        f"{name} signature: xling:{__version__}|{t['signature']}" for name, t in result["tasks"].items()
        if t.get("signature")]


def score_table(res: dict):
    """The rich table of :func:`xling.xglue.score.score_dir`'s result (``*``: not the official average)."""
    from rich.table import Table

    tab = Table(title=f"XGLUE scores ({res['split']})")
    for c in ("task", "metric", "languages", "avg"):
        tab.add_column(c)
    for name, t in res["tasks"].items():
        tab.add_row(name, t["metric"], " ".join(f"{k}={v:.2f}" for k, v in t["langs"].items()),
                    f"{t['avg']:.2f}" + ("" if t.get("official_avg", True) else "*"))
        if "off_target" in t:
            tab.add_row("", "off-target %", " ".join(f"{k}={'-' if v is None else f'{v:.1f}'}"
                                                     for k, v in t["off_target"].items()), "")
    tab.caption = " · ".join(f"{k.title()}: {res[k]:.2f}" for k in ("understanding", "generation")
                             if res.get(k) is not None)
    return tab


def score_notes(res: dict) -> list[str]:
    """Lines printed under the score table: partial averages, words scored as ``O``, metric signatures."""
    from xling import __version__

    lines = []
    for name, t in res["tasks"].items():
        if not t.get("official_avg", True):
            lines.append(f"* {name}: no prediction for {' '.join(t['missing'])}; the official average is over "
                         f"all of the task's languages, this one over {' '.join(t['avg_langs'])}")
        if t.get("padded"):
            lines.append(f"{name}: words without a predicted tag scored as O, as the official scorer does: "
                         + " ".join(f"{k}={v}" for k, v in t["padded"].items()))
    lines += [f"{name} signature: xling:{__version__}|{t['signature']}" for name, t in res["tasks"].items()
              if t.get("signature")]
    return lines


def bar_charts(result: dict, out: Path, split: str = "test") -> list[str]:
    try:
        import logging

        import matplotlib

        logging.getLogger("matplotlib").setLevel(logging.WARNING)  # fairseq sets the root logger to DEBUG
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    for name, t in result["tasks"].items():
        s = t["splits"][split]["langs"]
        fig, ax = plt.subplots(figsize=(max(4, len(s) * 0.6), 3))
        ax.bar(list(s), [v["mean"] for v in s.values()], yerr=[v["std"] for v in s.values()])
        ax.set_title(f"{name} ({t['metric']}, {split})")
        fig.tight_layout()
        fig.savefig(out / f"{name}.png")
        plt.close(fig)
        written.append(f"{name}.png")
    return written


def write_reports(result: dict, out: Path) -> None:
    result["charts"] = bar_charts(result, out)
    write_json_atomic(out / "results.json", result)
    write_text_atomic(out / "results.md", markdown(result, "dev") + "\n" + markdown(result, "test"))
