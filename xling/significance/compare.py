"""``xling eval compare RUN_A RUN_B``: is B better than A, per task and language, beyond chance?

Both runs must be of the same kind and built on the same data (eval xglue: per task the same data
digest and ``--max-eval-examples``, and the same split; eval retrieval: the same task and, for every compared pair, the
same file digests); anything else is refused. Units present in only one run are listed, not compared.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from xling import __version__
from xling.errors import XlingError
from xling.significance.bootstrap import AGGREGATES, paired_bootstrap
from xling.significance.runs import Run, load_run


@dataclass
class CompareConfig:
    run_a: Path
    run_b: Path
    gold: Optional[Path] = None
    split: str = "test"
    layer_a: Optional[int] = None
    layer_b: Optional[int] = None
    n_samples: int = 1000
    seed: int = 12345
    alpha: float = 0.05


def check_same_data(a: Run, b: Run) -> list:
    if a.kind != b.kind:
        raise XlingError(f"cannot compare an eval {a.kind} run with an eval {b.kind} run", file=b.path,
                         fix="compare two `eval xglue` or two `eval retrieval` output directories")
    if a.data != b.data:
        raise XlingError(f"the runs were not built on the same data ({a.data} vs {b.data})", file=b.path,
                         fix="compare runs of the same task on the same files (and the same --max-eval-examples)")
    common = [k for k in a.units if k in b.units]
    for k in common:
        if a.units[k].digest != b.units[k].digest:
            raise XlingError(f"{k[0]} {k[1]}: the runs read different files for it", file=b.path,
                             fix="compare runs evaluated on the same data files")
    if not common:
        raise XlingError("the runs have no task and language in common", file=b.path,
                         fix="compare runs of the same tasks and languages")
    return common


def compare(cfg: CompareConfig) -> dict:
    if cfg.n_samples < 10:
        raise XlingError("--samples must be at least 10")
    a = load_run(cfg.run_a, cfg.gold, cfg.split, cfg.layer_a)
    b = load_run(cfg.run_b, cfg.gold, cfg.split, cfg.layer_b)
    common = check_same_data(a, b)
    rows = []
    for key in common:
        ua, ub = a.units[key], b.units[key]
        if ua.aggregate == "bleu":
            from xling.significance.bleu import bleu_score, paired_test

            res = paired_bootstrap(ua.stats, ub.stats, bleu_score, cfg.n_samples, cfg.seed).as_dict()
            if len(ua.texts) == 1 and len(ub.texts) == 1:
                res["p_value"], res["test_signature"] = paired_test(ua.texts[0], ub.texts[0], ua.refs, cfg.n_samples)
                res["test"] = "sacrebleu paired bootstrap"
        else:
            res = paired_bootstrap(ua.stats, ub.stats, AGGREGATES[ua.aggregate], cfg.n_samples, cfg.seed).as_dict()
        res.setdefault("test", "paired bootstrap" + (" over examples and seeds"
                                                     if max(len(ua.stats), len(ub.stats)) > 1 else ""))
        res.update({"task": key[0], "lang": key[1], "metric": ua.metric,
                    "significant": res["p_value"] < cfg.alpha})
        rows.append(res)
    only = {"a": [list(k) for k in a.units if k not in b.units], "b": [list(k) for k in b.units if k not in a.units]}
    sig = (f"xling:{__version__}|compare:paired-bootstrap|n:{cfg.n_samples}|seed:{cfg.seed}|"
           f"ci:95%-percentile|p:shift-two-sided|kind:{a.kind}|{a.data}")
    return {"kind": "xling-compare", "run_a": str(a.path), "run_b": str(b.path), "signature_a": a.signature,
            "signature_b": b.signature, "signature": sig, "alpha": cfg.alpha, "rows": rows, "only_in": only}


def rich_table(result: dict):
    from rich.table import Table

    tab = Table(title=f"B - A, paired bootstrap ({result['rows'][0]['n_samples']} samples)")
    for c in ("task", "lang", "metric", "A", "B", "B - A", "95% CI", "p", "n", "seeds"):
        tab.add_column(c, justify="left" if c in ("task", "lang", "metric") else "right")
    for r in result["rows"]:
        mark = "[bold]" if r["significant"] else ""
        tab.add_row(r["task"], r["lang"], r["metric"], f"{r['score_a']:.2f}", f"{r['score_b']:.2f}",
                    f"{mark}{r['diff']:+.2f}", f"[{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]",
                    f"{mark}{r['p_value']:.4f}", str(r["n_examples"]), f"{r['seeds_a']}/{r['seeds_b']}")
    tab.caption = f"A: {result['run_a']}  B: {result['run_b']}  (bold: p < {result['alpha']})"
    return tab
