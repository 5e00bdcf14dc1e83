"""``python benchmarks/profile_train.py FAIRSEQ-TRAIN-ARGS``: ``python -m xling.xlmplug.train`` with a torch
profiler window over a few updates (issue 18: where does an update's time go on a GPU?).

The window is set by ``XLING_PROFILE=FIRST:LAST:OUT`` (updates FIRST..LAST-1, 1-based, of fairseq's
``Trainer.train_step``; OUT a folder). Without it this is ``xling.xlmplug.train`` unchanged. At the window's
end it writes ``OUT/summary.json`` (wall time of the window, GPU busy time as the union of device-kernel and
copy intervals (record_function spans left out), host-sync calls and the time spent in them) and ``OUT/ops.txt`` (the top operators by device
time and by host time); with ``XLING_PROFILE_TRACE=1`` also a gzipped Chrome trace ``OUT/trace.json.gz``.

Benchmark code: it wraps fairseq's trainer method from outside; the product never does this.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
import time
from pathlib import Path

SYNC_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy")


def busy_union(intervals: list[tuple[float, float]]) -> float:
    """Total length of the union of ``(start, end)`` intervals."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def summarize(prof, wall_s: float, updates: int) -> dict:
    from torch.autograd import DeviceType

    device, syncs = [], {}
    events = prof.events()
    spans = {e.name for e in events if getattr(e, "is_user_annotation", False)}  # record_function names
    for e in events:
        if e.device_type == DeviceType.CUDA:
            if not (getattr(e, "is_user_annotation", False) or e.name in spans):  # kernels, copies, memsets
                device.append((e.time_range.start, e.time_range.end))
        elif any(e.name.startswith(s) for s in SYNC_CALLS):
            n, us = syncs.get(e.name, (0, 0.0))
            syncs[e.name] = (n + 1, us + e.time_range.elapsed_us())
    busy = busy_union(device) / 1e6
    return {"updates": updates, "wall_s": wall_s, "per_update_ms": 1e3 * wall_s / updates,
            "gpu_busy_s": busy, "gpu_busy_share": busy / wall_s if wall_s else None,
            "device_events": len(device) // max(updates, 1),
            "host_syncs": {k: {"calls_per_update": n / updates, "ms_per_update": us / 1e3 / updates}
                           for k, (n, us) in sorted(syncs.items())}}


def install(first: int, last: int, out: Path, trace: bool) -> None:
    import torch
    from fairseq.trainer import Trainer

    state = {"n": 0, "prof": None, "t0": 0.0}
    step = Trainer.train_step

    def sync():
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def train_step(self, samples, raise_oom=False):
        state["n"] += 1
        if state["n"] == first:
            sync()
            acts = [torch.profiler.ProfilerActivity.CPU]
            if torch.cuda.is_available():
                acts.append(torch.profiler.ProfilerActivity.CUDA)
            state["prof"] = torch.profiler.profile(activities=acts, record_shapes=False)
            state["prof"].__enter__()
            state["t0"] = time.perf_counter()
        result = step(self, samples, raise_oom)
        if state["n"] == last - 1 and state["prof"] is not None:
            sync()
            wall = time.perf_counter() - state["t0"]
            prof, state["prof"] = state["prof"], None
            prof.__exit__(None, None, None)
            out.mkdir(parents=True, exist_ok=True)
            summary = summarize(prof, wall, last - first)
            (out / "summary.json").write_text(json.dumps(summary, indent=2))
            avg = prof.key_averages()
            sort_dev = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
            (out / "ops.txt").write_text(
                f"{json.dumps(summary)}\n\nby device time:\n{avg.table(sort_by=sort_dev, row_limit=45)}\n\n"
                f"by host time:\n{avg.table(sort_by='self_cpu_time_total', row_limit=30)}\n")
            if trace:
                raw = out / "trace.json"
                prof.export_chrome_trace(str(raw))
                with open(raw, "rb") as f, gzip.open(out / "trace.json.gz", "wb") as g:
                    shutil.copyfileobj(f, g)
                raw.unlink()
        return result

    Trainer.train_step = train_step


def main() -> None:
    spec = os.environ.get("XLING_PROFILE")
    if spec:
        first, last, out = spec.split(":", 2)
        install(int(first), int(last), Path(out), os.environ.get("XLING_PROFILE_TRACE") == "1")
    from xling.xlmplug.train import main as train_main

    train_main(sys.argv[1:])


if __name__ == "__main__":
    main()
