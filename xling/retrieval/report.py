"""Retrieval results as a rich table and Markdown: one row per pair (and direction), one column per layer."""
from __future__ import annotations


def _rows(result: dict) -> list[tuple[str, list[float]]]:
    """(label, [value per layer]) rows: parallel tasks one row per direction plus the pair's average
    (single layer) or one row per pair (several layers: the average of both directions)."""
    layers = [str(x) for x in result["layers"]]
    rows = []
    for pair, e in result["pairs"].items():
        per = e["layers"]
        if result["task_kind"] == "mining":
            keys = ["precision", "recall", "f1"] if len(layers) == 1 else ["f1"]
            rows += [(f"{pair} {k}" if len(keys) > 1 else pair, [per[x][k] for x in layers]) for k in keys]
        elif len(layers) == 1:
            rows += [(d, [per[x][d] for x in layers]) for d in per[layers[0]] if d != "avg"]
        else:
            rows.append((pair, [per[x]["avg"] for x in layers]))
    rows.append(("average", [result["average"][x] for x in layers]))
    return rows


def _title(result: dict) -> str:
    c = result["config"]
    sim = "cosine" if c["similarity"] == "cosine" else f"ratio margin k={c['margin_k']}"
    prefix = f", prefix {c['prefix']!r}" if c["prefix"] else ""
    return f"{result['task']} retrieval, {result['metric']} ({c['pooling']} pooling, {sim}{prefix})"


def _layer_name(result: dict, layer: int) -> str:
    if layer == 0:
        return "emb"
    return f"L{layer}" + ("*" if layer == result.get("best_layer") and len(result["layers"]) > 1 else "")


def rich_table(result: dict):
    from rich.table import Table

    tab = Table(title=_title(result))
    tab.add_column("pair" if len(result["layers"]) > 1 or result["task_kind"] == "mining" else "direction")
    for x in result["layers"]:
        tab.add_column(_layer_name(result, x), justify="right")
    for label, vals in _rows(result):
        bold = label == "average"
        tab.add_row(f"[bold]{label}" if bold else label, *[(f"[bold]{v:.1f}" if bold else f"{v:.1f}") for v in vals])
    if len(result["layers"]) > 1:
        tab.caption = f"* best layer: {result['best_layer']} (layer 0: embeddings; both directions averaged)"
    return tab


def markdown(result: dict) -> str:
    names = [_layer_name(result, x) for x in result["layers"]]
    lines = [f"### {_title(result)}", "", "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {label} | " + " | ".join(f"{v:.1f}" for v in vals) + " |" for label, vals in _rows(result)]
    lines += ["", f"signature: `{result['signature']}`", ""]
    return "\n".join(lines)
