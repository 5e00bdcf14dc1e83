"""Operators dispatched per training update: xling's MLM against fairseq's ``masked_lm`` (issue 18), on CPU.

On a GPU every eager operator costs host time to dispatch and (most of them) a kernel launch; at XLM-R base size
an update spends tens of milliseconds of host work, which the GPU waits for when the host falls behind. The
count of operators is the same on any device for the same eager code, so it can be measured here, exactly, without
a GPU. Both runs use fairseq's trainer (``python -m xling.xlmplug.train``), the same data (tatoeba en, a
1200-piece vocabulary), 16-token blocks and batch 2, and a model with XLM-R base's structure (12 layers, its
parameter tensors) at width 32: operator counts depend on the structure, not the width. A
:class:`~torch.utils._python_dispatch.TorchDispatchMode` counts every aten operator, backward included, of one
update (``--update``, after the first ones), views and allocations listed apart (no kernel).

Caveats: torch's AdamW takes its ``foreach`` path on CPU and its ``fused`` path on CUDA (fewer operators), and
``--compile-*`` code runs compiled kernels that this count does not see: compare eager paths.

    python benchmarks/host_ops.py                         # fairseq adam vs xling_adamw, bf16 and fp32-master variants
    python benchmarks/host_ops.py --precision fp32 --variant "fairseq-attn=--attention-impl fairseq"

Measured (2026-11-27, bf16, operators per update without views): fairseq ``masked_lm`` + ``adam`` 3,505; xling
3,531 while ``xling_adamw`` made a torch parameter group per tensor (an AdamW call per tensor), 1,731 with one
group, 1,662 (0.47x fairseq) once these unpadded blocks ran attention without a mask; with
``--memory-efficient-bf16`` (``xling_adamw``'s fp32 masters instead of fairseq's ``FP16Optimizer`` copying each
tensor: 402 ``copy_`` and 201 ``zero_`` fewer) 2,932, 1,132, then 1,063 (0.30x).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_pretrain import variant  # noqa: E402  (--variant NAME=ARGS, as there)
from pretrain import NO_SAVE_DIR, flat_layout, prepare  # noqa: E402  (the CPU MLM benchmark's data)

NARROW = ["--encoder-layers", "12", "--encoder-embed-dim", "32", "--encoder-ffn-embed-dim", "64",
          "--encoder-attention-heads", "2"]
# left out of the count: views, metadata and allocations (no kernel), and .item() reads (on CPU torch's foreach
# AdamW reads every step count, two per tensor; its fused CUDA path reads none)
NO_KERNEL = {"view", "_unsafe_view", "as_strided", "transpose", "t", "permute", "unsqueeze", "squeeze", "expand",
             "slice", "select", "alias", "detach", "reshape", "_reshape_alias", "split", "unbind", "chunk",
             "split_with_sizes", "lift_fresh", "empty", "empty_like", "empty_strided", "new_empty",
             "new_empty_strided", "unflatten", "flatten", "diagonal", "view_as", "narrow", "_local_scalar_dense"}
MARK = "HOST_OPS "


def child(update: int, argv: list[str]) -> None:
    """Training with the counter around ``Trainer.train_step`` number ``update``; prints ``MARK`` + JSON."""
    from fairseq.trainer import Trainer
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = collections.Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops[func.overloadpacket.__name__] += 1
            return func(*args, **(kwargs or {}))

    step, seen = Trainer.train_step, {"n": 0}

    def train_step(self, samples, raise_oom=False):
        seen["n"] += 1
        if seen["n"] != update:
            return step(self, samples, raise_oom)
        with Count() as c:
            out = step(self, samples, raise_oom)
        kernels = {k: v for k, v in c.ops.items() if k not in NO_KERNEL}
        print(MARK + json.dumps({"all": sum(c.ops.values()), "ops": sum(kernels.values()),
                                 "top": collections.Counter(kernels).most_common(6)}), flush=True)
        return out

    Trainer.train_step = train_step
    from xling.xlmplug.train import main as train_main

    train_main(argv)


def count(args: list[str], update: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    r = subprocess.run([sys.executable, __file__, "--child", str(update), *args], capture_output=True, text=True,
                       env=env)
    got = [json.loads(ln[len(MARK):]) for ln in r.stdout.splitlines() if ln.startswith(MARK)]
    if r.returncode or not got:
        sys.exit(f"run failed (exit {r.returncode}): {' '.join(args)}\n{r.stdout[-1500:]}{r.stderr[-3000:]}")
    return got[0]


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        return child(int(sys.argv[2]), sys.argv[3:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="a prep-data directory with language en (made here when absent)")
    ap.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    ap.add_argument("--update", type=int, default=5, help="the update counted")
    ap.add_argument("--variant", type=variant, action="append", default=[],
                    help="NAME=ARGS: an xling run with extra fairseq-train arguments (repeatable)")
    ap.add_argument("--json", type=Path, default=Path("host_ops.json"))
    a = ap.parse_args()
    common = ["--sample-break-mode", "none", "--tokens-per-sample", "16", "--batch-size", "2", "--lr", "6e-4",
              "--lr-scheduler", "polynomial_decay", "--warmup-updates", "10", "--clip-norm", "1.0",
              "--weight-decay", "0.01", "--max-update", str(a.update + 1), "--total-num-update", "100", "--no-save",
              "--save-dir", NO_SAVE_DIR,
              "--disable-validation", "--log-format", "json", "--log-interval", "1", "--seed", "1",
              "--num-workers", "0", "--cpu", *(["--bf16"] if a.precision == "bf16" else [])]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = a.data.resolve() if a.data else prepare(tmp)
        flat = flat_layout(data, "en", tmp / "flat")
        xling = [str(data), "--task", "xling_xlm", "--langs", "en", "--criterion", "xling_mlm_tlm",
                 "--arch", "xling_xlm_base", *NARROW, "--optimizer", "xling_adamw"]
        plan = [("fairseq masked_lm + adam", [str(flat), "--task", "masked_lm", "--criterion", "masked_lm",
                                              "--arch", "roberta_base", *NARROW, "--optimizer", "adam"]),
                ("xling", xling)]
        if a.precision == "bf16":
            plan.append(("xling --memory-efficient-bf16", [*xling, "--memory-efficient-bf16"]))
        plan += [(name, [*xling, *extra]) for name, extra in a.variant]
        rows = []
        for name, args in plan:
            print(f"{name} ...", flush=True)
            rows.append({"name": name, **count(args + common, a.update)})
    ref = rows[0]["ops"]
    for r in rows:
        r["ratio_vs_fairseq"] = r["ops"] / ref
    report(rows, a.precision)
    a.json.write_text(json.dumps({"precision": a.precision, "update": a.update, "runs": rows}, indent=2))
    print(f"saved {a.json}")


def report(rows: list[dict], precision: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"aten operators per update (XLM-R base structure, width 32, {precision}, CPU)")
    for col in ("run", "ops (no views)", "all ops", "vs fairseq", "most frequent"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["name"], f"{r['ops']:,}", f"{r['all']:,}", f"{r['ratio_vs_fairseq']:.2f}",
                  ", ".join(f"{k} {v}" for k, v in r["top"]))
    Console(width=200).print(t)


if __name__ == "__main__":
    main()
