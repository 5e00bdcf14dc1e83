"""The source x target transfer matrix as Markdown, a rich table and a heatmap PNG, with its summary line.

Languages carry their group in the headers (``de (Germanic, Latn)``); rows and columns come already
ordered by family, genus and script (:mod:`xling.xglue.transfer`); a diagonal cell (a source's own test
set) is marked, ``-`` is a cell that was not scored.
"""
from __future__ import annotations

from pathlib import Path

from xling.io import atomic_path, write_json_atomic, write_text_atomic


def _label(result: dict, lg: str) -> str:
    m = result["languages"][lg]
    return f"{lg} ({m['genus']}, {m['script']})"


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def summary_line(result: dict, level: str | None = None) -> str:
    s = result["summaries"][level] if level else result["summary"]
    lvl = s["level"]
    parts = [f"in-{lvl} transfer {_fmt(s['in_mean'])} ({len(s['in_cells'])} cells)",
             f"cross-{lvl} {_fmt(s['cross_mean'])} ({len(s['cross_cells'])} cells)"]
    if s["gap"] is not None:
        parts.append(f"gap {s['gap']:+.1f} [95% CI {s['ci_low']:+.1f}, {s['ci_high']:+.1f}] "
                     f"(bootstrap over test sentences, {s['n_samples']} samples)")
    else:
        parts.append(f"no gap: no in-{lvl} or no cross-{lvl} cell")
    return f"{result['task']} {result['metric']} ({result['split']}), off-diagonal means: " + "; ".join(parts)


def markdown(result: dict) -> str:
    cols = result["targets"]
    lines = [f"| source \\ target | {' | '.join(_label(result, t) for t in cols)} |", "|" + "---|" * (len(cols) + 1)]
    for s in result["sources"]:
        cells = [(f"**{_fmt(result['scores'][s][t])}**" if s == t else _fmt(result["scores"][s][t])) for t in cols]
        split = "" if result["train_split"][s] == "train" else f", {result['train_split'][s]}-trained"
        lines.append(f"| {_label(result, s)}{split} | " + " | ".join(cells) + " |")
    lines += ["", summary_line(result), ""]
    lines += [f"- {summary_line(result, lvl)}" for lvl in result["summaries"] if lvl != result["group"]]
    lines += ["", "bold: the source's own test set (in-language).", "",
              "runs: " + ", ".join(f"`{r['dir']}`" for r in result["runs"].values()), "",
              f"language metadata: {result['metadata_sources']}", ""]
    return "\n".join(lines)


def rich_table(result: dict):
    from rich.table import Table

    tab = Table(title=f"transfer: {result['task']} {result['metric']} (test), source x target")
    tab.add_column("source \\ target")
    for t in result["targets"]:
        tab.add_column(_label(result, t), justify="right")
    for s in result["sources"]:
        tab.add_row(_label(result, s), *[(f"[bold]{_fmt(result['scores'][s][t])}[/]" if s == t
                                          else _fmt(result["scores"][s][t])) for t in result["targets"]])
    tab.caption = summary_line(result)
    return tab


def _boundaries(result: dict, langs: list[str]) -> list[float]:
    """Positions between neighbours of different genus (group lines on the heatmap)."""
    g = [result["languages"][lg]["genus"] for lg in langs]
    return [i + 0.5 for i in range(len(g) - 1) if g[i] != g[i + 1]]


def heatmap(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows, cols = result["sources"], result["targets"]
    m = np.array([[np.nan if result["scores"][s][t] is None else result["scores"][s][t] for t in cols] for s in rows])
    fig, ax = plt.subplots(figsize=(2.5 + 0.75 * len(cols), max(3.2, 2.0 + 0.55 * len(rows))))
    im = ax.imshow(m, cmap="viridis", aspect="auto")
    for i, s in enumerate(rows):
        for j, t in enumerate(cols):
            if not np.isnan(m[i, j]):
                ax.text(j, i, f"{m[i, j]:.1f}", ha="center", va="center", fontsize=8,
                        color="white" if m[i, j] < np.nanmean(m) else "black",
                        fontweight="bold" if s == t else "normal")
    ax.set_xticks(range(len(cols)), [_label(result, t) for t in cols], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [_label(result, s) for s in rows], fontsize=8)
    for x in _boundaries(result, cols):
        ax.axvline(x, color="white", linewidth=1.5)
    for y in _boundaries(result, rows):
        ax.axhline(y, color="white", linewidth=1.5)
    ax.set_xlabel("target (test)")
    ax.set_ylabel("source")
    ax.set_title(f"{result['task']} {result['metric']}: source x target", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def write(result: dict, out: Path) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    heatmap(result, out / "transfer.png")
    write_text_atomic(out / "transfer.md", markdown(result))
    write_json_atomic(out / "transfer.json", result)
