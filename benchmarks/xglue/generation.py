"""Zero-shot XGLUE generation (QG, NTG) from English, against the copy-first-8-words floor (issue 8).

Builds a shared vocabulary and monolingual data from tatoeba (every language of the generation test
sets that tatoeba has, plus English) and the English training text of QG/NTG, pretrains a
denoising encoder-decoder (`xling pretrain --arch seq2seq --tasks xdae`), or takes a given model
directory, fine-tunes on English QG and NTG (`xling eval xglue --tasks qg,ntg`, checkpoint chosen on
the English dev set), and prints the test BLEU and off-target rate per language next to the floor
(BLEU of the first 8 words of each source, lowercased 13a sacrebleu as the official scorer).

    OMP_NUM_THREADS=1 python benchmarks/xglue/generation.py [--work DIR] [--model DIR]
        [--preset tiny] [--updates 1500] [--epochs 8] [-- extra fairseq args for pretraining]

Runs through the CLI, as a user would. Measured with the defaults (tiny preset, 1500 updates, 8 epochs,
OMP_NUM_THREADS=1) on a 2-core machine shared with other jobs (load ~5): 48 minutes, of which
pretraining 31, QG 9, NTG 7; an idle core should need well under half of that.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def xling(*args):
    print("$ xling " + " ".join(map(str, args)), flush=True)
    subprocess.run([sys.executable, "-m", "xling.cli.main", *map(str, args)], check=True)


def first_words_floor(spec, data: Path, lang: str, n: int = 8) -> float:
    from xling.xglue.metrics.bleu import Bleu
    from xling.xglue.readers import read_generation

    src, tgt = read_generation(spec, data, lang, "test")
    return Bleu().score(tgt, [" ".join(s.split()[:n]) for s in src])


def build_data(work: Path, langs: list[str], xglue: Path, vocab_size: int) -> Path:
    """Vocabulary + monolingual data: tatoeba sides (English from every pair) and the English
    training sources/targets of QG and NTG (no dev/test text of any language)."""
    tat = SHARED / "tatoeba"
    text = work / "text"
    text.mkdir(parents=True, exist_ok=True)
    en = []
    inputs = []
    for lg in langs:
        if lg == "en":
            continue
        f = tat / f"tatoeba.{lg}-en.{lg}"
        if f.is_file():
            inputs += [f"{lg}={f}"]
            en += (tat / f"tatoeba.{lg}-en.en").read_text(encoding="utf-8").splitlines()
    for task, name in (("QG", "qg"), ("NTG", "ntg")):
        for side in ("src", "tgt"):
            en += (xglue / task / f"xglue.{name}.en.{side}.train").read_text(encoding="utf-8").splitlines()
    (text / "en.txt").write_text("\n".join(en) + "\n", encoding="utf-8")
    inputs.append(f"en={text / 'en.txt'}")
    vargs, dargs = [], []
    for i in inputs:
        vargs += ["--input", i]
        dargs += ["--mono", i]
    xling("prep-vocab", *vargs, "--vocab-size", vocab_size, "--alpha", 0.5, "--out", work / "vocab")
    xling("prep-data", "--vocab", work / "vocab", *dargs, "--valid-size", 100, "--out", work / "data")
    return work / "data"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("runs/xglue_generation"))
    ap.add_argument("--xglue", type=Path, default=SHARED / "xglue-real")
    ap.add_argument("--model", type=Path, default=None, help="a seq2seq model directory (skips pretraining)")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--updates", type=int, default=1500)
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--max-eval-examples", type=int, default=None)
    a, extra = ap.parse_known_args()
    extra = [x for x in extra if x != "--"]
    from xling.xglue.tasks import TASKS

    w = a.work
    qg, ntg = TASKS["qg"], TASKS["ntg"]
    langs = {"qg": qg.found_langs(a.xglue, "test"), "ntg": ntg.found_langs(a.xglue, "test")}
    model = a.model
    if model is None:
        data = build_data(w, sorted(set(langs["qg"]) | set(langs["ntg"])), a.xglue, a.vocab_size)
        xling("pretrain", "--arch", "seq2seq", "--tasks", "xdae", "--data", data, "--out", w / "dae",
              "--preset", a.preset, "--max-updates", a.updates, "--log-interval", 50, "--alpha", 0.5,
              "--word-shuffle", 3, "--word-dropout", 0.1, *(["--", *extra] if extra else []))
        model = w / "dae" / "model"
    caps = ["--max-eval-examples", a.max_eval_examples] if a.max_eval_examples else []
    results = {}
    for name in ("qg", "ntg"):
        from xling.modeling import seq2seq_langs

        known = seq2seq_langs(model)
        zs = [lg for lg in langs[name] if lg != "en" and lg in known]
        if len(zs) < len(langs[name]) - 1:  # a language the model has no token for: left out, said so
            print(f"note: {name}: the model has no language token for "
                  f"{','.join(lg for lg in langs[name] if lg not in known)}; left out")
        out = w / f"eval-{name}"
        xling("eval", "xglue", "--model", model, "--data", a.xglue, "--tasks", name, "--zero-shot", ",".join(zs),
              "--out", out, "--epochs", a.epochs, "--lr", a.lr, "--beam", a.beam, *caps)
        results[name] = json.loads((out / "results.json").read_text(encoding="utf-8"))
    from rich.console import Console
    from rich.table import Table

    tab = Table(title=f"zero-shot XGLUE generation from English (test), model {model}")
    for col in ("task", "lang", "BLEU", "off-target %", "floor: first 8 src words", "BLEU - floor"):
        tab.add_column(col, justify="left" if col in ("task", "lang") else "right")
    summary = {}
    for name, r in results.items():
        t = r["tasks"][name]["splits"]["test"]
        for lg, v in t["langs"].items():
            floor = first_words_floor(TASKS[name], a.xglue, lg)
            off = t["off_target"].get(lg)
            tab.add_row(name, lg, f"{v['mean']:.2f}", "-" if off is None else f"{off['mean']:.1f}", f"{floor:.2f}",
                        f"{v['mean'] - floor:+.2f}")
            summary.setdefault(name, {})[lg] = {"bleu": v["mean"], "off_target": None if off is None else off["mean"],
                                                "floor": floor}
        tab.add_row(name, "avg", f"{t['avg']['mean']:.2f}", "", "", "")
    Console(width=140).print(tab)
    (w / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"summary: {w / 'summary.json'}")


if __name__ == "__main__":
    main()
