"""Which pretraining objective buys the most at equal compute? mlm, mlm + span masking, mlm + whole-word masking
and replaced-token detection (rtd), each without and with translation pairs (tlm; for rtd: trtd), measured by
cross-lingual retrieval.

Same tiny model (``--preset tiny``), same data (tatoeba pairs X-en, both sides also as monolingual text), same
batch, same seed, same learning-rate schedule, and the same budget for every run: ``--seconds S`` of fairseq's
cumulative training time (its ``--stop-time-hours``; the default, equal compute) or ``--updates N`` (equal
updates: equal tokens for the single-batch objectives; rtd+trtd, like every multi-objective run, trains one
sub-batch per objective). Throughput: the median tokens/s of fairseq's log records (rtd runs a generator and the
encoder twice per batch, so fewer tokens fit in the same seconds). Downstream score: top-1 retrieval of the
held-out tatoeba pairs with ``xling eval retrieval``, as ``benchmarks/unicoder.py`` measures it (mean-pooled last
layer, cosine, X->en and en->X averaged over pairs). Prints a rich table and writes JSON.

Encoder-decoders (configs ``xdae`` and ``prophetnet``, not in ``--cpu``): the same text and budget, xDAE's noise,
bart's decoder against ProphetNet's (``--ngram 2``); scored by QG and NTG BLEU (test, ``xling eval xglue``
fine-tuned on ``--gen-train`` English examples, zero-shot on the model's languages that XGLUE has).

    python benchmarks/objectives.py [--work DIR] [--langs de,fr,es,ru] [--seconds 120 | --updates N]
        [--configs mlm,mlm+span,mlm+whole-word,rtd] [--tlm both|off|on] [--json OUT.json]
    python benchmarks/objectives.py --cpu     # small mode (2 languages, 15 updates, no TLM): keeps it from rotting
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TATOEBA = HERE.parent.parent / "shared" / "data" / "tatoeba"
sys.path.insert(0, str(HERE))
from unicoder import prepare, retrieval, xling  # noqa: E402  (the same data and retrieval measure)

SPAN = ["--mask-span", "geometric:p=0.2,max=10"]
# name: (flags without translation pairs, flags with them)
CONFIGS = {
    "mlm": (["--tasks", "mlm"], ["--tasks", "mlm,tlm"]),
    "mlm+span": (["--tasks", "mlm", *SPAN], ["--tasks", "mlm,tlm", *SPAN]),
    "mlm+whole-word": (["--tasks", "mlm", "--mask-whole-words"], ["--tasks", "mlm,tlm", "--mask-whole-words"]),
    "rtd": (["--tasks", "rtd"], ["--tasks", "rtd,trtd"]),
}
# encoder-decoders, trained on the same text by xDAE's noise: bart's decoder, or ProphetNet's (future bigrams)
SEQ2SEQ = {
    "xdae": ["--arch", "seq2seq", "--tasks", "xdae"],
    "prophetnet": ["--arch", "seq2seq", "--tasks", "xdae", "--decoder", "prophetnet", "--ngram", "2"],
}
XGLUE = HERE.parent.parent / "shared" / "data" / "xglue-real"


def generation(model_dir: Path, out: Path, langs: list[str], max_train: int, max_eval: int) -> dict:
    """QG and NTG BLEU (test, averaged over the languages run) after fine-tuning on English with `xling eval
    xglue` (the generation tasks' zero-shot languages that the model has a token for)."""
    scores = {}
    for task, folder in (("qg", "QG"), ("ntg", "NTG")):
        have = {p.name.split(".")[2] for p in (XGLUE / folder).glob(f"xglue.{task}.*.src.test")}
        zero = [lg for lg in langs if lg in have and lg != "en"]
        xling("eval", "xglue", "--model", model_dir, "--data", XGLUE, "--tasks", task, "--zero-shot", ",".join(zero),
              "--out", out / task, "--max-train-examples", max_train, "--max-eval-examples", max_eval, "--epochs", 2,
              "--lr", "1e-3", "--beam", 3, "--max-target-len", 24)
        test = json.loads((out / task / "results.json").read_text())["tasks"][task]["splits"]["test"]
        scores[task] = {"avg": round(test["avg"]["mean"], 2),
                        "langs": {lg: round(v["mean"], 2) for lg, v in test["langs"].items()}}
    return scores


def budget_flags(seconds: float | None, updates: int | None, schedule: int) -> list[str]:
    """The run's length: ``updates``, or as many updates as ``seconds`` of training allow (the learning-rate
    schedule is ``schedule`` updates long either way, the same for every run)."""
    if updates:
        return ["--max-updates", updates, "--total-updates", max(schedule, updates)]
    return ["--max-updates", 10 ** 6, "--total-updates", schedule, "--", "--stop-time-hours", seconds / 3600]


def run_one(name: str, flags: list[str], data: Path, out: Path, common: list, budget: list) -> dict:
    extra = budget[budget.index("--"):] if "--" in budget else []
    head = budget[:budget.index("--")] if "--" in budget else budget
    xling("pretrain", "--data", data, "--out", out, *flags, *common, *head, "--",
          "--validate-interval", 10 ** 6, "--save-interval", 10 ** 6, *extra[1:])
    s = json.loads((out / "pretrain.json").read_text())
    curve = s["curve"]
    speeds = [c["wps"] for c in curve if c.get("wps")]
    return {"flags": flags, "updates": s["num_updates"], "train_seconds": (s.get("last_epoch") or {}).get("train_wall"),
            "tokens_per_s": round(statistics.median(speeds)) if speeds else None,
            "first_loss": curve[0]["loss"] if curve else None, "last_loss": curve[-1]["loss"] if curve else None,
            "out": str(out)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None, help="working directory (default: a temporary one)")
    ap.add_argument("--data", type=Path, default=None, help="an `xling prep-data --mono-from-para` directory to use "
                    "instead of preparing tatoeba --langs (its pairs are the retrieval sets)")
    ap.add_argument("--langs", default="de,fr,es,ru", help="tatoeba languages paired with English")
    ap.add_argument("--seconds", type=float, default=120.0, help="training seconds per run (equal compute)")
    ap.add_argument("--updates", type=int, default=None, help="updates per run instead of --seconds (equal updates)")
    ap.add_argument("--schedule", type=int, default=2000, help="learning-rate schedule length in updates")
    ap.add_argument("--configs", default=",".join([*CONFIGS, *SEQ2SEQ]),
                    help=f"comma-separated, of {', '.join([*CONFIGS, *SEQ2SEQ])} (the last two: encoder-decoders, "
                         "scored by QG/NTG BLEU)")
    ap.add_argument("--gen-train", type=int, default=300, help="QG/NTG fine-tuning examples (English)")
    ap.add_argument("--gen-eval", type=int, default=50, help="QG/NTG test examples per language")
    ap.add_argument("--tlm", choices=("both", "off", "on"), default="both",
                    help="runs without translation pairs, with them (tlm; trtd for rtd), or both")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--vocab-size", type=int, default=4000)
    ap.add_argument("--valid-size", type=int, default=200, help="held-out pairs per language (the retrieval set)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cpu", action="store_true", help="small mode: de,fr, 15 updates, no TLM, vocabulary 1200")
    ap.add_argument("--json", type=Path, default=None, help="write the results here (default: WORK/objectives.json)")
    args = ap.parse_args()
    if args.cpu:
        args.langs, args.tlm, args.vocab_size, args.valid_size = "de,fr", "off", 1200, 100
        args.updates = args.updates or 15
        if "--configs" not in sys.argv:
            args.configs = ",".join(CONFIGS)
    if not TATOEBA.is_dir():
        sys.exit(f"no tatoeba text at {TATOEBA}")
    configs = [c for c in args.configs.split(",") if c]
    unknown = [c for c in configs if c not in CONFIGS and c not in SEQ2SEQ]
    if unknown:
        ap.error(f"unknown config(s) {', '.join(unknown)}; known: {', '.join([*CONFIGS, *SEQ2SEQ])}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    work = args.work or Path(tempfile.mkdtemp(prefix="xling_objectives_"))
    work.mkdir(parents=True, exist_ok=True)
    if args.data:
        data = args.data
        pairs = list(json.loads((data / "manifest.json").read_text()).get("pairs", []))
        langs = sorted({lg for p in pairs for lg in p.split("-")})
    else:
        langs = [x for x in args.langs.split(",") if x]
        data = prepare(work, langs, args.vocab_size, args.valid_size, align=False)
        pairs = [f"{lg}-en" for lg in langs]
    common = ["--preset", "tiny", "--seed", args.seed, "--batch-size", args.batch_size,
              "--micro-batch-size", args.batch_size, "--log-interval", 5 if args.updates and args.updates < 50 else 25]
    budget = budget_flags(args.seconds, args.updates, args.schedule)
    variants = {"off": [False], "on": [True], "both": [False, True]}[args.tlm]
    results = {}
    for name in [c for c in configs if c in SEQ2SEQ]:
        out = work / name
        r = run_one(name, SEQ2SEQ[name], data, out, common, budget)
        results[name] = {**r, "generation": generation(out / "model", work / f"{name}-gen", langs, args.gen_train,
                                                      args.gen_eval)}
    for name in [c for c in configs if c in CONFIGS]:
        for pairs_too in variants:
            label = name + (" +pairs" if pairs_too else "")
            out = work / label.replace(" +", "_").replace("+", "_")
            r = run_one(label, CONFIGS[name][pairs_too], data, out, common, budget)
            results[label] = {**r, **retrieval(out / "model", data, pairs)}

    from rich.console import Console
    from rich.table import Table

    what = f"{args.updates} updates" if args.updates else f"{args.seconds:g} s of training"
    table = Table(title=f"objectives at equal budget ({what} each, tiny encoder, batch {args.batch_size}, "
                        f"tatoeba {','.join(pairs)})")
    for col in ("objective", "tasks", "updates", "train s", "tokens/s", "first loss", "last loss",
                "retrieval top-1 %", "QG / NTG BLEU"):
        table.add_column(col, justify="left" if col in ("objective", "tasks") else "right")
    for label, r in results.items():
        tasks = r["flags"][r["flags"].index("--tasks") + 1]
        gen = r.get("generation")
        table.add_row(label, tasks, str(r["updates"]), f"{r['train_seconds'] or 0:.0f}",
                      f"{r['tokens_per_s'] or 0:,}", f"{r['first_loss']:.2f}", f"{r['last_loss']:.2f}",
                      f"{r['top1']:.1f}" if "top1" in r else "-",
                      f"{gen['qg']['avg']:.2f} / {gen['ntg']['avg']:.2f}" if gen else "-")
    Console().print(table)
    report = {"kind": "xling-benchmark-objectives", "langs": langs, "budget": {"seconds": None if args.updates
                                                                               else args.seconds,
                                                                               "updates": args.updates},
              "batch_size": args.batch_size, "schedule": args.schedule, "seed": args.seed,
              "valid_size": args.valid_size, "runs": results}
    dest = args.json or work / "objectives.json"
    from xling.io import write_json_atomic

    write_json_atomic(dest, report)
    print(f"results: {dest}")


if __name__ == "__main__":
    main()
