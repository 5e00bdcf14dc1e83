"""Run the zero-shot XGLUE suite for a model directory and an XGLUE data directory; write the table.

    python benchmarks/xglue/run_suite.py --model MODEL_DIR --data ../shared/data/xglue-real \
        --tasks pos,mlqa --zero-shot de,es,fr --out bench-xglue [--max-train-examples N]

Prints the rich tables and the wall time per task, and a throughput ratio (fine-tuning examples per
second) against a reference run of the same task with a 1-epoch, 64-example budget in this process.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--tasks", default="pos,mlqa")
    ap.add_argument("--zero-shot", default="de,es,fr,it,nl")
    ap.add_argument("--out", type=Path, default=Path("bench-xglue"))
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-train-examples", type=int, default=None)
    ap.add_argument("--max-eval-examples", type=int, default=None)
    a = ap.parse_args()

    from rich.console import Console

    from xling.xglue.finetune import FinetuneConfig
    from xling.xglue.report import rich_table
    from xling.xglue.run import EvalConfig, evaluate
    from xling.xglue.tasks import get_tasks

    con = Console(width=200)
    for spec in get_tasks(a.tasks):
        langs = [lg for lg in a.zero_shot.split(",") if lg in spec.langs]
        ref = EvalConfig(model=a.model, data=a.data, tasks=spec.name, zero_shot=[], out=a.out / "ref" / spec.name,
                         max_train_examples=64, max_eval_examples=32, ft=FinetuneConfig(epochs=1, lr=a.lr))
        t0 = time.perf_counter()
        evaluate(ref)
        t_ref = (time.perf_counter() - t0) / 64
        cfg = EvalConfig(model=a.model, data=a.data, tasks=spec.name, zero_shot=langs, seeds=a.seeds,
                         out=a.out / spec.name, max_train_examples=a.max_train_examples,
                         max_eval_examples=a.max_eval_examples, ft=FinetuneConfig(epochs=a.epochs, lr=a.lr))
        t0 = time.perf_counter()
        res = evaluate(cfg)
        dt = time.perf_counter() - t0
        con.print(rich_table(res, "test"))
        con.print(f"{spec.name}: {dt:.1f}s wall; reference {t_ref * 1000:.1f} ms per example "
                  f"(1 epoch, 64 ex.); signature {res['signature']}", soft_wrap=True)


if __name__ == "__main__":
    main()
