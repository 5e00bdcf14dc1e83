"""Aggregate seeds into mean ± std per task × language and write JSON / Markdown / PNG / rich table.

Task score = mean over languages (official averaging); Understanding score = mean over tasks. A
generation family would add its own metric columns (BLEU, off-target rate) under the same keys.
"""
from __future__ import annotations

import statistics
from pathlib import Path

from xling.io import write_json_atomic, write_text_atomic


def _ms(vals):
    return {"mean": statistics.fmean(vals), "std": statistics.pstdev(vals) if len(vals) > 1 else 0.0,
            "runs": vals}


def aggregate(runs: dict, specs, langs, sig: str, cfg) -> dict:
    tasks = {}
    for spec in specs:
        rs = runs[spec.name]
        entry = {"metric": spec.metric, "family": spec.family, "splits": {},
                 "dev_history": {r["seed"]: r["dev_history"] for r in rs}}
        for split in ("dev", "test"):
            per = {lg: _ms([r["scores"][split][lg] for r in rs]) for lg in langs}
            avg = _ms([statistics.fmean(r["scores"][split][lg] for lg in langs) for r in rs])
            entry["splits"][split] = {"langs": per, "avg": avg}
        tasks[spec.name] = entry
    und = {split: statistics.fmean(t["splits"][split]["avg"]["mean"] for t in tasks.values())
           for split in ("dev", "test")}
    return {"signature": sig, "train_lang": cfg.train_lang, "langs": langs, "seeds": cfg.seeds,
            "hparams": cfg.ft.as_dict(), "tasks": tasks, "understanding": und}


def _fmt(ms):
    return f"{ms['mean']:.1f} ± {ms['std']:.1f}" if ms["std"] else f"{ms['mean']:.1f}"


def markdown(result: dict, split: str = "test") -> str:
    langs = result["langs"]
    lines = [f"| task | {' | '.join(langs)} | avg |", "|" + "---|" * (len(langs) + 2)]
    for name, t in result["tasks"].items():
        s = t["splits"][split]
        lines.append(f"| {name} | " + " | ".join(_fmt(s["langs"][lg]) for lg in langs) + f" | {_fmt(s['avg'])} |")
    lines.append(f"\nUnderstanding score ({split}): {result['understanding'][split]:.1f}\n")
    lines.append(f"signature: `{result['signature']}`\n")
    return "\n".join(lines)


def rich_table(result: dict, split: str = "test"):
    from rich.table import Table

    langs = result["langs"]
    tab = Table(title=f"XGLUE zero-shot from {result['train_lang']} ({split})")
    for col in ["task", *langs, "avg"]:
        tab.add_column(col, justify="left" if col == "task" else "right")
    for name, t in result["tasks"].items():
        s = t["splits"][split]
        tab.add_row(name, *[_fmt(s["langs"][lg]) for lg in langs], _fmt(s["avg"]))
    tab.caption = f"Understanding score: {result['understanding'][split]:.1f}"
    return tab


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
