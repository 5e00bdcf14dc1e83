"""`xling prep-data` at growing corpus sizes vs the anchor pipeline (SentencePiece encoding, then
`fairseq-preprocess --workers 2`), both on the same English text and vocabulary.

The corpus is built from the shared tatoeba English sides: each line one or two random sentences
(about 5% exact repeats), to ``--base-mb`` MB (default 32) times each of ``--scales`` (default 1 4 16).
Each command runs in its own process; wall time, lines/s and peak RSS (the largest process, and the
whole process tree sampled every 0.1 s) are printed as a table and saved as JSON.
Targets (issue 15): xling's peak RSS at the largest scale within 1.2x of the smallest (and <= 600 MB),
wall time <= 0.5x the anchor's at every size.

    python benchmarks/prep_data_scale.py [--scales 1 4 16] [--base-mb 32] [--anchor-scales 1 4] [--workers 2]
    python benchmarks/prep_data_scale.py --cpu      # small mode: 1 MB base, scales 1 4 (a minute)

Last run (2 cores, quiet machine, load 1-2; `--scales 1 4 16`, anchor at every scale):

    scale  MB   lines     xling s  lines/s  RSS max/tree MB  anchor s  anchor RSS max/tree MB  time ratio
    1      32   490,000     5.9    83,367     104 / 230        47.5      580 / 582             0.12
    4      128  1,960,000  17.8   110,041     117 / 245       174.8      587 / 615             0.10
    16     513  7,850,000  68.1   115,258     120 / 240       682.5      881 / 875             0.10

    tree RSS 16x / 1x: 1.04; largest process 1.16.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "tatoeba"
LANGS = "ar bg de el es fr hi it ja nl pl pt ro ru sw th tr ur vi zh".split()
ANCHOR = """
import sys, sentencepiece as spm
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as f, open(sys.argv[3], "w", encoding="utf-8") as out:
    while True:
        lines = [ln.rstrip("\\n") for ln in f.readlines(1 << 24)]
        if not lines:
            break
        out.writelines(" ".join(p) + "\\n" for p in sp.encode(lines, out_type=str, num_threads=2))
"""
PREPROCESS = ("import sys, argparse, torch; torch.serialization.add_safe_globals([argparse.Namespace]); "
              "from fairseq_cli.preprocess import cli_main; cli_main()")


def _tree_rss(pid: int) -> int:
    """Resident memory (bytes) of ``pid`` and its descendants."""
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += kids.get(p, [])
        try:
            total += int(open(f"/proc/{p}/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError):
            pass
    return total


def run(cmd: list[str], env=None) -> dict:
    """Wall time, peak RSS of the largest process and sampled peak RSS of the tree of one command."""
    err = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
    peak, done = [0], threading.Event()

    def poll():
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(p.pid))
            time.sleep(0.1)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    _, status, usage = os.wait4(p.pid, 0)  # the rusage of this command alone
    wall = time.perf_counter() - t0
    done.set()
    th.join()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        err.seek(0)
        sys.exit(f"failed: {' '.join(cmd)}\n{err.read().decode()[-2000:]}")
    return {"wall_s": wall, "max_process_rss_mb": usage.ru_maxrss / 1024, "tree_rss_mb": peak[0] / 2**20}


def build_corpus(path: Path, mb: float, sentences: list[str], seed: int) -> int:
    rng = np.random.default_rng(seed)
    target, size, n = int(mb * 2**20), 0, 0
    with open(path, "w", encoding="utf-8") as f:
        while size < target:
            a = rng.integers(0, len(sentences), size=10_000)
            b = rng.integers(0, len(sentences), size=10_000)
            two = rng.random(10_000) < 0.97
            lines = [sentences[i] + (" " + sentences[j] if t else "") for i, j, t in zip(a, b, two)]
            text = "".join(ln + "\n" for ln in lines)
            f.write(text)
            size += len(text.encode("utf-8"))
            n += len(lines)
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--anchor-scales", type=int, nargs="*", default=None,
                    help="scales at which to run the anchor too (default: all)")
    ap.add_argument("--base-mb", type=float, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--vocab-size", type=int, default=4000)
    ap.add_argument("--cpu", action="store_true", help="small mode: 1 MB base, scales 1 4")
    ap.add_argument("--data", type=Path, default=SHARED)
    ap.add_argument("--json", type=Path, default=Path("prep_data_scale.json"))
    a = ap.parse_args()
    if a.cpu:
        a.base_mb, a.scales = 1, [1, 4]
    anchor_scales = a.scales if a.anchor_scales is None else a.anchor_scales
    if not a.data.exists():
        sys.exit(f"shared data not found: {a.data}")
    tmp = Path(tempfile.mkdtemp(prefix="prep_scale."))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    sents = sorted({ln.strip() for lg in LANGS for ln in (a.data / f"tatoeba.{lg}-en.en").read_text(
        encoding="utf-8").splitlines() if ln.strip()})
    (tmp / "en.txt").write_text("\n".join(sents) + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "xling.cli.main", "prep-vocab", "-i", f"en={tmp / 'en.txt'}",
                    "--vocab-size", str(a.vocab_size), "--out", str(tmp / "vocab")], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    rows = []
    for s in a.scales:
        corpus = tmp / f"en.{s}x.txt"
        n = build_corpus(corpus, a.base_mb * s, sents, seed=s)
        mb = corpus.stat().st_size / 2**20
        x = run([sys.executable, "-m", "xling.cli.main", "prep-data", "--vocab", str(tmp / "vocab"),
                 "--mono", f"en={corpus}", "--workers", str(a.workers), "--out", str(tmp / f"data{s}")], env)
        row = {"scale": s, "mb": round(mb, 1), "lines": n, "xling": x, "load_before": os.getloadavg()[0]}
        shutil.rmtree(tmp / f"data{s}")
        if s in anchor_scales:
            enc = run([sys.executable, "-c", ANCHOR, str(tmp / "vocab" / "spm.model"), str(corpus),
                       str(tmp / "pieces.txt")], env)
            pre = run([sys.executable, "-c", PREPROCESS, "--only-source", "--srcdict", str(tmp / "vocab" / "dict.txt"),
                       "--trainpref", str(tmp / "pieces.txt"), "--destdir", str(tmp / "fs"), "--dataset-impl", "mmap",
                       "--workers", "2"], env)
            row["anchor"] = {"wall_s": enc["wall_s"] + pre["wall_s"], "encode_s": enc["wall_s"],
                             "preprocess_s": pre["wall_s"],
                             "max_process_rss_mb": max(enc["max_process_rss_mb"], pre["max_process_rss_mb"]),
                             "tree_rss_mb": max(enc["tree_rss_mb"], pre["tree_rss_mb"])}
            shutil.rmtree(tmp / "fs", ignore_errors=True)
            (tmp / "pieces.txt").unlink()
        corpus.unlink()
        rows.append(row)
        print(json.dumps(row), flush=True)
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"prep-data scale (workers {a.workers}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})")
    for c in ("scale", "MB", "lines", "xling s", "xling lines/s", "xling RSS max/tree MB", "anchor s",
              "anchor lines/s", "anchor RSS max/tree MB", "time ratio"):
        t.add_column(c, justify="right")
    for r in rows:
        x, an = r["xling"], r.get("anchor")
        t.add_row(str(r["scale"]), f"{r['mb']:.0f}", str(r["lines"]), f"{x['wall_s']:.1f}",
                  f"{r['lines'] / x['wall_s']:.0f}", f"{x['max_process_rss_mb']:.0f} / {x['tree_rss_mb']:.0f}",
                  *((f"{an['wall_s']:.1f}", f"{r['lines'] / an['wall_s']:.0f}",
                     f"{an['max_process_rss_mb']:.0f} / {an['tree_rss_mb']:.0f}",
                     f"{x['wall_s'] / an['wall_s']:.2f}") if an else ("-",) * 4))
    Console(width=200).print(t)
    first, last = rows[0]["xling"], rows[-1]["xling"]
    print(f"xling tree RSS at {rows[-1]['scale']}x / {rows[0]['scale']}x: "
          f"{last['tree_rss_mb'] / first['tree_rss_mb']:.2f} (target <= 1.2, and <= 600 MB)")
    a.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "rows": rows}, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
