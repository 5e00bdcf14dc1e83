"""Words/s of xling's MLM task (``xling_xlm``) vs fairseq's built-in ``masked_lm`` task.

Same binarized data (one language of a ``xling prep-data`` directory, linked into the flat layout
``masked_lm`` reads), same tiny model (``xling_xlm_tiny``), same blocks (complete sentences, 64
tokens), batch size, optimizer and number of updates; both run by fairseq's trainer, alternately,
in this one process. Prints the words/s of each (mean of fairseq's per-epoch ``train_wps``, first epoch left out),
the ratio ours / fairseq's (target >= 0.95), and the options each side ran with as the trainer itself logged them
(task, criterion, model, attention kernel, compile, LM-head padding, precision, optimizer, loader workers, batch):
both sides build the same ``xling_xlm_tiny`` model, so an option of the model is the same on both, and one that
differs is marked.

    python benchmarks/pretrain.py [--data DATA] [--lang en] [--updates 400] [--repeats 3]

Without --data it prepares en/fr/de tatoeba text from ../shared/data with `xling prep-vocab` and
`xling prep-data` into a temporary directory. CPU only here; GPU figures need a GPU machine.
"""
from __future__ import annotations

import argparse
import atexit
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from xling.pretrain import parse_log_line

# fairseq makes its --save-dir even with --no-save: a temporary one, not ./checkpoints where it runs
NO_SAVE_DIR = tempfile.mkdtemp(prefix="xling-bench-")
atexit.register(shutil.rmtree, NO_SAVE_DIR, True)

ROOT = Path(__file__).resolve().parents[1]


def prepare(tmp: Path) -> Path:
    t = ROOT.parent / "shared" / "data" / "tatoeba"
    if not t.is_dir():
        sys.exit(f"no --data and no tatoeba text at {t}")
    xl = [sys.executable, "-m", "xling.cli.main"]
    subprocess.run(xl + ["prep-vocab", "--out", str(tmp / "vocab"), "--vocab-size", "1200",
                         "-i", f"en={t / 'tatoeba.fr-en.en'}", "-i", f"fr={t / 'tatoeba.fr-en.fr'}",
                         "-i", f"de={t / 'tatoeba.de-en.de'}"], check=True, capture_output=True)
    subprocess.run(xl + ["prep-data", "--vocab", str(tmp / "vocab"), "--out", str(tmp / "data"),
                         "--mono-from-para", "--valid-size", "100",
                         "--para", f"en-fr={t / 'tatoeba.fr-en.en'},{t / 'tatoeba.fr-en.fr'}",
                         "--para", f"en-de={t / 'tatoeba.de-en.en'},{t / 'tatoeba.de-en.de'}"],
                   check=True, capture_output=True)
    return tmp / "data"


def flat_layout(data: Path, lang: str, dest: Path) -> Path:
    """``masked_lm`` reads DIR/{split}.bin/.idx and DIR/dict.txt: link the same files there."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "dict.txt").symlink_to(data / "dict.txt")
    for split in ("train", "valid"):
        for ext in ("bin", "idx"):
            (dest / f"{split}.{ext}").symlink_to(data / "mono" / f"{split}.{lang}.{ext}")
    return dest


COMMON = ["--arch", "xling_xlm_tiny", "--sample-break-mode", "complete", "--tokens-per-sample", "64",
          "--optimizer", "adam", "--lr", "1e-3", "--lr-scheduler", "polynomial_decay", "--warmup-updates", "20",
          "--batch-size", "16", "--cpu", "--num-workers", "0", "--no-save", "--save-dir", NO_SAVE_DIR,
          "--disable-validation", "--log-format", "json", "--log-interval", "50", "--seed", "1"]


# options read back from the configuration fairseq's trainer logs at start (its `{'_name': ...}` line): what ran
OPTIONS = ("task", "criterion", "arch", "attention_impl", "compile_layers", "compile_loss", "lm_head_pad",
           "amp_bf16", "fp16", "bf16", "optimizer", "num_workers", "batch_size")


def ran_with(log: str) -> dict:
    """The :data:`OPTIONS` of one trainer's run, from the configuration it logged (missing: not an option of
    that trainer's components, e.g. ``compile_loss`` of fairseq's own criterion)."""
    cfg = next((line for line in log.splitlines() if "'common': {" in line), "")
    found = {}
    for key in OPTIONS:
        if key in ("task", "criterion", "optimizer"):
            m = re.search(rf"'{key}': \{{'_name': '([^']*)'", cfg)
        else:
            m = re.search(rf"\b{key}(?:=|': )'?([^,')}}]*)", cfg)
        if m:
            found[key] = m.group(1)
    return found


def run(args: list[str], updates: int) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "xling.xlmplug.train", *args, *COMMON, "--max-update", str(updates),
           "--total-num-update", str(updates)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    if r.returncode:
        sys.exit(r.stdout[-3000:] + r.stderr[-3000:])
    epochs = [rec[1]["train_wps"] for rec in map(parse_log_line, (r.stdout + r.stderr).splitlines())
              if rec and rec[0] == "train" and "train_wps" in rec[1]]
    return statistics.mean(epochs[1:] or epochs), ran_with(r.stdout + r.stderr)  # the first epoch includes start-up


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path)
    ap.add_argument("--lang", default="en")
    ap.add_argument("--updates", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = a.data.resolve() if a.data else prepare(tmp)
        flat = flat_layout(data, a.lang, tmp / "flat")
        ours_args = [str(data), "--task", "xling_xlm", "--langs", a.lang, "--criterion", "xling_mlm_tlm"]
        ref_args = [str(flat), "--task", "masked_lm", "--criterion", "masked_lm"]
        ours, ref = [], []
        for _ in range(a.repeats):  # alternate so machine load hits both alike
            wps, ref_opts = run(ref_args, a.updates)
            ref.append(wps)
            wps, ours_opts = run(ours_args, a.updates)
            ours.append(wps)
    o, r = statistics.median(ours), statistics.median(ref)
    print("options  (fairseq | xling; * where they differ):")
    for key in OPTIONS:
        f, x = ref_opts.get(key, "-"), ours_opts.get(key, "-")
        print(f"  {'*' if f != x else ' '} {key:15s} {f:>16s} | {x}")
    print(f"fairseq masked_lm : {r:10.0f} words/s  (runs: {', '.join(f'{x:.0f}' for x in ref)})")
    print(f"xling  xling_xlm  : {o:10.0f} words/s  (runs: {', '.join(f'{x:.0f}' for x in ours)})")
    print(f"ratio ours/fairseq: {o / r:.3f}  (target >= 0.95)")
    print("GPU (base preset, bf16, H100): not measured here, no GPU on this machine")


if __name__ == "__main__":
    main()
