"""Run an experiment's plan on this machine: stage after stage, each step one process whose output goes to
``DIR/logs/STAGE.log``; a stage that is done is skipped without starting anything, a failed one stops the stages
that need it (the others go on).
"""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional

from xling.experiment import plan as P
from xling.experiment.spec import Experiment

Event = Callable[[str, str, dict], None]  # (stage, what: skip/start/step/done/failed/blocked, details)


def error_of(log: Path, rc: int) -> str:
    """The error a failed step printed (its ``error:`` message, else its last line)."""
    try:
        lines = [ln.rstrip() for ln in Path(log).read_text(encoding="utf-8", errors="replace").splitlines()
                 if ln.strip()]
    except OSError:
        lines = []
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("error:"):
            return "\n".join(lines[i:i + 3])
    return lines[-1] if lines else f"exit code {rc}"


def run_step(step: P.Step, log: Path) -> int:
    """One step, its output appended to ``log``; Ctrl-C or SIGTERM here stops it the same way (it saves and
    says so) and is raised again once it has ended."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"$ {step.display()}\n")
        fh.flush()
        proc = subprocess.Popen(step.argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise


def run(exp: Experiment, steps: dict[str, list[P.Step]], on_event: Optional[Event] = None) -> dict[str, dict]:
    """Run what is not done, in order. Returns each stage's outcome: ``{"state": done|skipped|failed|blocked,
    "seconds", "error", "because"}``."""
    on_event = on_event or (lambda *a: None)
    before = P.states(exp, steps)
    outcome: dict[str, dict] = {}
    for name in exp.order():
        bad = [d for d in exp.stages[name].after if outcome[d]["state"] in ("failed", "blocked")]
        if bad:
            root = next(d for d in bad)
            why = outcome[root].get("because") or root
            outcome[name] = {"state": "blocked", "because": why}
            on_event(name, "blocked", outcome[name])
            continue
        rerun_deps = any(outcome[d]["state"] == "done" for d in exp.stages[name].after)
        if before[name]["state"] == "done" and not rerun_deps:
            outcome[name] = {"state": "skipped", "seconds": 0.0}
            on_event(name, "skip", before[name])
            continue
        log = exp.dir / "logs" / f"{name}.log"
        on_event(name, "start", {"log": str(log), "steps": len(steps[name])})
        t0 = time.perf_counter()
        rc = 0
        for i, step in enumerate(steps[name]):
            on_event(name, "step", {"index": i, "step": step})
            rc = run_step(step, log)
            if rc:
                break
        seconds = time.perf_counter() - t0
        if rc:
            err = error_of(log, rc)
            P.failed(exp, name, steps[name], rc, err, log)
            outcome[name] = {"state": "failed", "seconds": seconds, "rc": rc, "error": err, "log": str(log),
                             "because": name}
            on_event(name, "failed", outcome[name])
            continue
        P.finished(exp, name, steps[name], seconds)
        outcome[name] = {"state": "done", "seconds": seconds, "log": str(log)}
        on_event(name, "done", outcome[name])
    return outcome
