"""Do the Unicoder tasks help? MLM+TLM vs MLM+TLM+clwr+clpc+clmlm+cs-mlm+xlco, measured by cross-lingual retrieval.

Same tiny model (``--preset tiny``), same number of updates, same batch size, same seed, same data
(tatoeba pairs X-en prepared with ``xling prep-data --align``, both sides also as monolingual text).
Each update of the Unicoder run holds a sub-batch of ``--batch-size`` examples for every task (7 in
all), the baseline's one batch of ``--batch-size`` MLM/TLM rows: equal updates, not equal compute;
``--matched-baseline`` adds MLM+TLM with a 7x batch (as many examples per update as the Unicoder run).

Retrieval (``xling eval retrieval``): the held-out valid split of every pair (never trained on); each
sentence is embedded as the mean of the encoder's last-layer states over all its real tokens,
``<s>`` and ``</s>`` included (XTREME's pooling; padding excluded), and its nearest neighbour by cosine
among the other language's sentences of that pair must be its translation (top-1 accuracy, X->en and
en->X, averaged over pairs). With ``--pos``, also zero-shot POS: ``xling eval
xglue --tasks pos`` fine-tunes each model on English and tags the benchmark's other languages (seqeval
precision, test sets cut to ``--pos-max-eval`` sentences). Prints a rich table, writes JSON.

    python benchmarks/unicoder.py [--work DIR] [--langs de,fr,es,ru] [--updates 600] [--matched-baseline] [--pos]
        [--json OUT.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TATOEBA = ROOT.parent / "shared" / "data" / "tatoeba"
XGLUE = ROOT.parent / "shared" / "data" / "xglue-real"
UNICODER = "mlm,tlm,clwr,clpc,clmlm,cs-mlm,xlco"


def xling(*args) -> None:
    from typer.testing import CliRunner

    from xling.cli.main import app

    r = CliRunner().invoke(app, [str(a) for a in args])
    if r.exit_code != 0:
        sys.exit(f"xling {' '.join(map(str, args[:2]))} failed:\n{r.output}")


def prepare(work: Path, langs: list[str], vocab_size: int, valid_size: int, align: bool = True) -> Path:
    """Vocabulary and data over tatoeba's ``langs``-en pairs, both sides also monolingual (word-aligned pairs
    with ``align``, for code-switched MLM); kept in ``work`` for the next run."""
    if (work / "data" / "manifest.json").exists():
        return work / "data"
    inputs, paras = [], []
    for lg in langs:
        inputs += ["-i", f"{lg}={TATOEBA / f'tatoeba.{lg}-en.{lg}'}"]
        paras += ["--para", f"{lg}-en={TATOEBA / f'tatoeba.{lg}-en.{lg}'},{TATOEBA / f'tatoeba.{lg}-en.en'}"]
    inputs += ["-i", f"en={TATOEBA / f'tatoeba.{langs[0]}-en.en'}"]
    xling("prep-vocab", "--out", work / "vocab", "--vocab-size", vocab_size, *inputs)
    xling("prep-data", "--vocab", work / "vocab", "--out", work / "data", "--mono-from-para",
          *(["--align"] if align else []), "--valid-size", valid_size, *paras)
    return work / "data"


def retrieval(model_dir: Path, data: Path, pairs: list[str]) -> dict:
    """Top-1 retrieval on the held-out valid pairs through `xling eval retrieval` (last layer, mean pooling
    over all real tokens as XTREME pools, cosine); results also in MODEL_DIR/../retrieval/."""
    import logging

    logging.basicConfig(level=logging.WARNING, force=True)  # the in-process CLI runs left handlers on closed streams
    out = model_dir.parent / "retrieval"
    bitexts = []
    for pair in pairs:
        src, tgt = pair.split("-")
        bitexts += ["--bitext", f"{data / 'para' / f'valid.{pair}.{src}.txt'},{data / 'para' / f'valid.{pair}.{tgt}.txt'}"]
    xling("eval", "retrieval", "--model", model_dir, *bitexts, "--langs", ",".join(pairs), "--out", out)
    res = json.loads((out / "results.json").read_text())
    last = str(res["report_layer"])
    per_pair = {p: {**{k: v for k, v in e["layers"][last].items() if k != "avg"}, "n": e["n_src"]}
                for p, e in res["pairs"].items()}
    return {"top1": res["average"][last], "pairs": per_pair, "retrieval_dir": str(out)}


def clwr_from_translation(out: Path, data: Path) -> dict:
    """clwr's held-out loss (bits per hidden token) with each X's own translation Y and with another
    row's Y: how much of the word recovery really comes from the other language."""
    import math

    import torch

    import xling.xlmplug  # noqa: F401
    from fairseq import checkpoint_utils

    ck = out / "checkpoints" / "checkpoint_last.pt"
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(ck)], arg_overrides={"data": str(data)})
    model = models[0].eval()
    crit = task.build_criterion(cfg.criterion).eval()
    crit.load_state_dict(torch.load(ck, map_location="cpu", weights_only=True)["criterion"])
    task.load_dataset("valid")
    totals = {"own_translation": [0.0, 0], "other_sentence": [0.0, 0]}
    itr = task.get_batch_iterator(task.dataset("valid"), max_sentences=32, seed=1).next_epoch_itr(shuffle=False)
    with torch.no_grad():
        for batch in itr:
            sub = batch["clwr"]
            rolled = {**sub, "y": {k: v.roll(1, dims=0) for k, v in sub["y"].items()}}
            for name, b in (("own_translation", sub), ("other_sentence", rolled)):
                loss, n, _ = crit.heads["clwr"].loss(model, b)
                totals[name][0] += float(loss)
                totals[name][1] += n
    return {k: round(v[0] / max(v[1], 1) / math.log(2), 3) for k, v in totals.items()}


def zero_shot_pos(model_dir: Path, out: Path, langs: list[str], max_eval: int) -> dict:
    """Test seqeval precision per language and the average of the zero-shot languages."""
    xling("eval", "xglue", "--model", model_dir, "--data", XGLUE, "--tasks", "pos", "--zero-shot", ",".join(langs),
          "--max-eval-examples", max_eval, "--out", out)
    test = json.loads((out / "results.json").read_text())["tasks"]["pos"]["splits"]["test"]["langs"]
    per_lang = {lg: round(v["mean"], 2) for lg, v in test.items()}
    zero = [per_lang[lg] for lg in langs if lg in per_lang]
    return {"per_lang": per_lang, "zero_shot_avg": round(sum(zero) / max(len(zero), 1), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None, help="working directory (default: a temporary one)")
    ap.add_argument("--langs", default="de,fr,es,ru", help="tatoeba languages paired with English")
    ap.add_argument("--updates", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--vocab-size", type=int, default=4000)
    ap.add_argument("--valid-size", type=int, default=200, help="prep-data --valid-size (held-out pairs per "
                    "language, the retrieval set; prep-data may keep fewer)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--matched-baseline", action="store_true",
                    help="also MLM+TLM with a batch as large as all the Unicoder run's sub-batches together")
    ap.add_argument("--pos", action="store_true", help="also zero-shot POS with `xling eval xglue` (needs xglue-real)")
    ap.add_argument("--pos-max-eval", type=int, default=200, help="POS test sentences per language")
    ap.add_argument("--json", type=Path, default=None, help="write the results here (default: WORK/unicoder.json)")
    args = ap.parse_args()
    if not TATOEBA.is_dir():
        sys.exit(f"no tatoeba text at {TATOEBA}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    work = args.work or Path(tempfile.mkdtemp(prefix="xling_unicoder_"))
    work.mkdir(parents=True, exist_ok=True)
    langs = [x for x in args.langs.split(",") if x]
    data = prepare(work, langs, args.vocab_size, args.valid_size)
    pairs = [f"{lg}-en" for lg in langs]
    common = ["--preset", "tiny", "--max-updates", args.updates, "--seed", args.seed,
              "--log-interval", 50, "--", "--validate-interval", 1000, "--save-interval", 1000]
    n_tasks = len(UNICODER.split(","))
    runs = {"mlm+tlm": ("mlm,tlm", args.batch_size), "mlm+tlm+unicoder": (UNICODER, args.batch_size)}
    if args.matched_baseline:  # as many examples per update as the Unicoder run (one sub-batch per task)
        runs[f"mlm+tlm x{n_tasks} batch"] = ("mlm,tlm", args.batch_size * n_tasks)
    results = {}
    for name, (tasks, batch) in runs.items():
        out = work / name.replace(" ", "_")
        # one micro-batch per update, as many examples as the batch (the tiny preset would split 112 into 7 x 16)
        xling("pretrain", "--data", data, "--out", out, "--tasks", tasks, "--batch-size", batch,
              "--micro-batch-size", batch, *common)
        summary = json.loads((out / "pretrain.json").read_text())
        results[name] = {"tasks": tasks, "batch_size": batch, "updates": summary["num_updates"],
                         "train_seconds": (summary.get("last_epoch") or {}).get("train_wall"),
                         "last_losses": summary["curve"][-1] if summary["curve"] else {},
                         "out": str(out), **retrieval(out / "model", data, pairs)}

    from rich.console import Console
    from rich.table import Table

    base, uni = results["mlm+tlm"], results["mlm+tlm+unicoder"]
    held_out = base["pairs"][pairs[0]]["n"]
    table = Table(title=f"tatoeba retrieval, top-1 % (held-out {held_out} pairs per language, "
                        f"mean-pooled tiny encoder, {args.updates} updates)")
    table.add_column("direction")
    for name in results:
        table.add_column(name, justify="right")
    table.add_column("unicoder - mlm+tlm", justify="right")
    others = [r for n, r in results.items() if n not in ("mlm+tlm", "mlm+tlm+unicoder")]
    for pair in pairs:
        for direction in [k for k in base["pairs"][pair] if k != "n"]:
            x, y = base["pairs"][pair][direction], uni["pairs"][pair][direction]
            table.add_row(direction, f"{x:.1f}", f"{y:.1f}", *[f"{r['pairs'][pair][direction]:.1f}" for r in others],
                          f"{y - x:+.1f}")
    table.add_row("[bold]average", f"[bold]{base['top1']:.1f}", f"[bold]{uni['top1']:.1f}",
                  *[f"[bold]{r['top1']:.1f}" for r in others], f"[bold]{uni['top1'] - base['top1']:+.1f}")
    table.add_row("train seconds (fairseq train_wall)", *[f"{r['train_seconds'] or 0:.0f}" for r in results.values()],
                  "")
    if args.pos:
        for name, r in results.items():
            r["pos"] = zero_shot_pos(Path(r["out"]) / "model", Path(r["out"] + "-pos"), langs, args.pos_max_eval)
        x, y = base["pos"]["zero_shot_avg"], uni["pos"]["zero_shot_avg"]
        table.add_row(f"POS zero-shot {','.join(langs)} (seqeval P)", f"{x:.1f}", f"{y:.1f}",
                      *[f"{r['pos']['zero_shot_avg']:.1f}" for r in others], f"{y - x:+.1f}")
    Console().print(table)
    clwr = clwr_from_translation(Path(uni["out"]), data)
    uni["clwr_valid_bits"] = clwr
    print(f"clwr held-out loss, bits per hidden token: with the own translation {clwr['own_translation']:.3f}, "
          f"with another sentence {clwr['other_sentence']:.3f}")
    report = {"kind": "xling-benchmark-unicoder", "langs": langs, "updates": args.updates,
              "batch_size": args.batch_size, "valid_size": args.valid_size, "seed": args.seed,
              "runs": results, "difference_top1": uni["top1"] - base["top1"],
              "difference_pos": (uni["pos"]["zero_shot_avg"] - base["pos"]["zero_shot_avg"]) if args.pos else None}
    dest = args.json or work / "unicoder.json"
    from xling.io import write_json_atomic

    write_json_atomic(dest, report)
    print(f"results: {dest}")


if __name__ == "__main__":
    main()
