"""``xling eval compare``: thin flag mapping onto :mod:`xling.significance`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from xling.cli._common import console, guarded
from xling.cli._ranges import in_range


@guarded
def compare(
    run_a: Path = typer.Argument(..., help="Baseline: an `eval xglue` or `eval retrieval` output directory."),
    run_b: Path = typer.Argument(..., help="System compared with it (same kind, same data)."),
    gold: Optional[Path] = typer.Option(None, "--gold", help="eval xglue runs: the XGLUE data they were "
                                        "evaluated on (their --data)."),
    split: str = typer.Option("test", help="eval xglue runs: dev or test."),
    layer_a: Optional[int] = typer.Option(None, callback=in_range("--layer-a", 0, fix="a layer the run reports, "
                                                                  "e.g. --layer-a 12"),
                                          help="eval retrieval: layer of A (default: its reported layer)."),
    layer_b: Optional[int] = typer.Option(None, callback=in_range("--layer-b", 0, fix="a layer the run reports, "
                                                                  "e.g. --layer-b 12"),
                                          help="eval retrieval: layer of B (default: its reported layer)."),
    samples: int = typer.Option(1000, callback=in_range("--samples", 1, fix="e.g. --samples 1000"),
                                help="Bootstrap samples."),
    seed: int = typer.Option(12345, help="Seed of the resampling (sacrebleu's default)."),
    alpha: float = typer.Option(0.05, callback=in_range("--alpha", 0, 1, open_low=True, open_high=True,
                                                        fix="a significance level such as --alpha 0.05"),
                                help="Significance level marked in the table (p < alpha)."),
    out: Path = typer.Option(Path("compare.json"), "--out", "-o", help="Write the comparison here (JSON)."),
    force: bool = typer.Option(False, "--force", help="Replace an --out file that xling did not write."),
):
    """Paired bootstrap of B against A per task and language: difference, 95% CI, p-value."""
    from xling.io import write_json_owned
    from xling.outputs import claim_file
    from xling.significance.compare import CompareConfig, compare as run_compare, rich_table

    claim_file(out, "--out", force=force)
    result = run_compare(CompareConfig(run_a=run_a, run_b=run_b, gold=gold, split=split, layer_a=layer_a,
                                       layer_b=layer_b, n_samples=samples, seed=seed, alpha=alpha))
    console.print(rich_table(result))
    for side in ("a", "b"):
        if result["only_in"][side]:
            console.print(f"only in {side.upper()} (not compared): "
                          + ", ".join(" ".join(k) for k in result["only_in"][side]), highlight=False)
    for r in result["rows"]:
        if r.get("test_signature"):
            console.print(f"{r['task']} {r['lang']}: sacrebleu {r['test_signature']}", highlight=False, markup=False)
    console.print(f"signature: {result['signature']}", soft_wrap=True, highlight=False, markup=False)
    write_json_owned(out, result)
    console.print(f"results: {out}")
