"""The benchmark scripts stay runnable: every one parses its options, and the two of issue 18 (GPU pretraining
speed, host operators per update) run end to end in their CPU size and report sane numbers. The speed targets
themselves are measured by the scripts on GPUs, never asserted here."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import shared_path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "benchmarks").rglob("*.py"))


def bench(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    return r


@pytest.mark.parametrize("script", SCRIPTS, ids=[str(p.relative_to(REPO / "benchmarks")) for p in SCRIPTS])
def test_benchmark_parses_its_options(script):
    assert "usage:" in bench(script, "--help", timeout=120).stdout


def test_cpu_pretrain_prints_what_each_side_ran_with():
    """benchmarks/pretrain.py (a few updates, one repeat): words/s of both sides and their ratio, and the options
    each trainer logged: the same model (arch, attention kernel, LM-head padding, precision) and batch on both
    sides, only the task and criterion marked as differing."""
    shared_path("tatoeba")
    out = bench(REPO / "benchmarks" / "pretrain.py", "--updates", "30", "--repeats", "1").stdout
    rows = {line.split()[1 if line.lstrip().startswith("*") else 0]: line.strip()
            for line in out.splitlines() if "|" in line and not line.startswith("options")}
    for key in ("task", "criterion"):
        assert rows[key].startswith("*"), out
    assert "masked_lm" in rows["task"] and "xling_xlm" in rows["task"], out
    for key in ("arch", "attention_impl", "lm_head_pad", "compile_layers", "amp_bf16", "fp16", "bf16", "optimizer",
                "num_workers", "batch_size"):
        assert not rows[key].startswith("*"), out
    assert "xling_xlm_tiny" in rows["arch"] and "sdpa" in rows["attention_impl"], out
    ratio = float(out.split("ratio ours/fairseq:")[1].split()[0])
    assert ratio > 0, out


def test_gpu_pretrain_runs_on_cpu(tmp_path):
    """``--cpu --tiny``: the same data and batch through fairseq's masked_lm and through xling, alternately;
    both train the same tiny model on the same data, so their last losses agree (bits, a few updates)."""
    shared_path("tatoeba")
    out = tmp_path / "g.json"
    bench(REPO / "benchmarks" / "gpu_pretrain.py", "--cpu", "--tiny", "--data", tmp_path / "data", "--json", out)
    r = json.loads(out.read_text())
    assert r["device"] == "cpu" and r["flops_per_token"] > 0
    runs = {x["name"]: x for x in r["runs"]}
    assert set(runs) == {"fairseq", "xling"}
    assert all(x["tokens_per_s"] > 0 for x in runs.values())
    assert runs["fairseq"]["ratio_vs_fairseq"] == 1.0
    assert runs["xling"]["ratio_vs_fairseq"] == pytest.approx(runs["xling"]["tokens_per_s"]
                                                              / runs["fairseq"]["tokens_per_s"])
    assert abs(runs["xling"]["last_loss"] - runs["fairseq"]["last_loss"]) < 0.5, runs


def test_host_ops_counts_an_update(tmp_path):
    """The exact aten operator count of one bf16 update (XLM-R base structure at width 32): xling's one-group
    fused AdamW and multi-tensor clipping stay well below fairseq's per-tensor Python Adam (3,505 operators
    against 1,662 when written; 2,932 with per-tensor AdamW groups), and its fp32 masters below that."""
    shared_path("tatoeba")
    out = tmp_path / "h.json"
    bench(REPO / "benchmarks" / "host_ops.py", "--json", out)
    runs = {x["name"]: x for x in json.loads(out.read_text())["runs"]}
    fairseq, xling = runs["fairseq masked_lm + adam"], runs["xling"]
    masters = runs["xling --memory-efficient-bf16"]
    assert fairseq["ops"] > 1000
    assert xling["ratio_vs_fairseq"] < 0.6 and masters["ops"] < xling["ops"], runs
