"""benchmarks/objectives.py stays runnable: its --cpu small mode on the session's tatoeba data, here for mlm and rtd
(the span and whole-word configurations differ from mlm by one flag each), the same updates each, throughput and
retrieval top-1 reported for each."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_objectives_benchmark_cpu_mode(data_dir, tmp_path):
    out = tmp_path / "objectives.json"
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "objectives.py"), "--cpu", "--data", str(data_dir),
                        "--work", str(tmp_path / "work"), "--updates", "10", "--configs", "mlm,rtd", "--json", str(out)], cwd=REPO,
                       env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    report = json.loads(out.read_text())
    runs = report["runs"]
    assert list(runs) == ["mlm", "rtd"]
    assert report["budget"] == {"seconds": None, "updates": 10}
    for name, run in runs.items():
        assert run["updates"] == 10, name
        assert run["tokens_per_s"] > 0 and 0 <= run["top1"] <= 100, (name, run)
        assert set(run["pairs"]) == {"en-fr", "en-de"}
    assert runs["rtd"]["flags"] == ["--tasks", "rtd"]
    # rtd runs a generator and the encoder twice per batch: fewer tokens per second than mlm
    assert runs["rtd"]["tokens_per_s"] < runs["mlm"]["tokens_per_s"]
    assert "top-1" in r.stdout
