"""benchmarks/objectives.py stays runnable: its --cpu small mode on the session's tatoeba data, here for rtd alone
(every encoder configuration takes the same path with other flags; the encoder-decoders are not in --cpu): it
trains, reports throughput and retrieval top-1, and writes its JSON. Speeds are the script's output, never
asserted here."""
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
                        "--work", str(tmp_path / "work"), "--updates", "10", "--configs", "rtd", "--json", str(out)],
                       cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    report = json.loads(out.read_text())
    runs = report["runs"]
    assert list(runs) == ["rtd"]
    assert report["budget"] == {"seconds": None, "updates": 10}
    for name, run in runs.items():
        assert run["updates"] == 10, name
        assert run["tokens_per_s"] > 0 and 0 <= run["top1"] <= 100, (name, run)
        assert set(run["pairs"]) == {"en-fr", "en-de"}
    assert runs["rtd"]["flags"] == ["--tasks", "rtd"]
    assert runs["rtd"]["last_loss"] < runs["rtd"]["first_loss"]
    assert "top-1" in r.stdout
