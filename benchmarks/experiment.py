"""The pipeline's own overhead: `xling run EXPERIMENT` against the same commands run one after another by hand.

Three runs of one experiment, each in a new directory:
  direct  every step of the plan (what `xling run --dry-run` prints) as its own process, timed here;
  run     `xling run EXPERIMENT --dir ...` (one process; it starts the same steps), timed here, with the seconds
          each stage's steps took (the run's markers);
  no-op   the same `xling run` again: every stage done, nothing starts.
Printed: overhead = (run wall - its stages' seconds) / stages' seconds (target < 5 %), the ratio run / direct (the
two differ also by the run-to-run noise of the stages themselves), and the no-op's seconds.

    python benchmarks/experiment.py --cpu                    # the tiny example experiment (2-core CPU: ~5 min)
    python benchmarks/experiment.py --experiment EXP.yaml [--no-direct] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "tiny-experiment.yaml"


def direct(exp_file: Path, d: Path) -> float:
    """Every step of the plan, in order, each its own process (no runner): the seconds they took."""
    import xling.cli.main  # noqa: F401  (registers the commands the plan checks its stages against)
    from xling.cli.run import _load

    _, steps = _load(exp_file, d)
    total = 0.0
    log = d / "direct.log"
    d.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as fh:
        for stage in steps.values():
            for s in stage:
                t0 = time.perf_counter()
                r = subprocess.run(s.argv, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO)
                total += time.perf_counter() - t0
                if r.returncode:
                    sys.exit(f"step failed ({r.returncode}): {s.display()}; see {log}")
    return total


def xling_run(exp_file: Path, d: Path) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "xling.cli.main", "run", str(exp_file), "--dir", str(d)], cwd=REPO,
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"xling run failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="Small mode: the tiny example experiment on ../shared/data.")
    ap.add_argument("--experiment", type=Path, default=None, help="Experiment file (default with --cpu: "
                    "examples/tiny-experiment.yaml).")
    ap.add_argument("--no-direct", action="store_true", help="Skip the reference run of the commands by hand.")
    ap.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    ap.add_argument("--keep", type=Path, default=None, help="Run in this directory and keep it (default: a "
                    "temporary one).")
    a = ap.parse_args()
    exp = a.experiment or (EXAMPLE if a.cpu else None)
    if exp is None:
        ap.error("give --cpu or --experiment")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("XLING_SHARED_DATA", str(REPO.parent / "shared" / "data"))
    root = a.keep or Path(tempfile.mkdtemp(prefix="xling-bench-exp-"))
    try:
        t_direct = None if a.no_direct else direct(exp.absolute(), root / "direct")
        t_run = xling_run(exp.absolute(), root / "run")
        stages = {p.stem: json.loads(p.read_text())["seconds"] for p in (root / "run" / ".xling-run").glob("*.json")}
        t_stages = sum(stages.values())
        t_noop = xling_run(exp.absolute(), root / "run")
    finally:
        if a.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    rep = {"experiment": str(exp), "run_seconds": round(t_run, 2), "stage_seconds": round(t_stages, 2),
           "stages": stages, "overhead": round((t_run - t_stages) / t_stages, 4),
           "direct_seconds": None if t_direct is None else round(t_direct, 2),
           "ratio_vs_direct": None if t_direct is None else round(t_run / t_direct, 4),
           "noop_seconds": round(t_noop, 2)}
    print(f"xling run: {t_run:.1f} s wall, its stages {t_stages:.1f} s: overhead {100 * rep['overhead']:.2f} % "
          "(target < 5 %)")
    if t_direct is not None:
        print(f"the same steps by hand: {t_direct:.1f} s; xling run / by hand = {rep['ratio_vs_direct']:.3f}")
    print(f"re-run with every stage done: {t_noop:.2f} s")
    if a.json:
        a.json.write_text(json.dumps(rep, indent=1) + "\n")


if __name__ == "__main__":
    main()
