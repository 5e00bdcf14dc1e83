"""Run an experiment's plan on this machine: stage after stage, each step one process whose output goes to
``DIR/logs/STAGE.log``; a stage that is done is skipped without starting anything, a failed one stops the stages
that need it (the others go on). :func:`run_only` runs one stage (or one part of a checkpoint stage) inside a
SLURM job (:mod:`xling.experiment.slurm`).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from xling.experiment import plan as P
from xling.experiment.spec import Experiment
from xling.experiment.track import Tracking

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


def run_step(step: P.Step, log: Path, argv: list[str] | None = None, env: dict | None = None) -> int:
    """One step (in ``env``, default this process's environment), its output appended to ``log``; Ctrl-C or
    SIGTERM here stops it the same way (it saves and says so) and is raised again once it has ended."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"$ {step.display()}\n")
        fh.flush()
        proc = subprocess.Popen(argv or step.argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env)
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


def _argv(exp: Experiment, step: P.Step, track: Optional[Tracking]) -> list[str]:
    return step.argv if track is None else track.step_args(step.argv, exp.stages[step.stage].command, step.stage)


def _env(exp: Experiment, step: P.Step, track: Optional[Tracking]) -> Optional[dict]:
    return None if track is None else track.step_env(step.argv, exp.stages[step.stage].command, exp.name, exp.dir,
                                                     step.stage)


def run(exp: Experiment, steps: dict[str, list[P.Step]], on_event: Optional[Event] = None,
        track: Optional[Tracking] = None) -> dict[str, dict]:
    """Run what is not done, in order. Returns each stage's outcome: ``{"state": done|skipped|failed|blocked,
    "seconds", "error", "because"}``. ``track``: live tracking (``xling run --tensorboard/--wandb``)."""
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
            rc = run_step(step, log, _argv(exp, step, track), _env(exp, step, track))
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


class Requeued(Exception):
    """The job was asked to stop (SIGUSR1: a time limit or preemption ahead); its script requeues it once the
    step has ended (``xling run --only`` exits :data:`xling.experiment.slurm.REQUEUE_RC`)."""


def run_only(exp: Experiment, steps: dict[str, list[P.Step]], name: str, part: str | None = None,
             track: Optional[Tracking] = None) -> int:
    """One stage inside a SLURM job (its dependencies are SLURM's): all its steps, or ``part`` k (checkpoint k's
    steps) or ``final`` (the table and the stage's marker) of a checkpoint stage. On SIGUSR1 the running step is
    left to stop (pretraining saves checkpoint_last.pt) and :class:`Requeued` is raised (the job script requeues
    the job). Only node 0 writes markers."""
    from xling.experiment.slurm import node_flags

    todo = steps[name]
    if part is not None:
        ups = sorted({s.update for s in todo if s.update is not None})
        todo = [s for s in todo if s.update is None] if part == "final" else \
            [s for s in todo if s.update == ups[int(part)]]
    stop = {"asked": False}

    def on_usr1(signum, frame):
        stop["asked"] = True  # the step got the signal too (SLURM signals every process of the job step)

    signal.signal(signal.SIGUSR1, on_usr1)
    log = exp.dir / "logs" / (f"{name}.part{part}.log" if part not in (None, "final") else f"{name}.log")
    rank0 = os.environ.get("SLURM_NODEID", "0") == "0"
    t0 = time.perf_counter()
    rc = 0
    for step in todo:
        argv = _argv(exp, step, track)
        extra = node_flags(exp.stages[name].command, dict(os.environ))
        if extra:
            cut = argv.index("--") if "--" in argv else len(argv)
            argv = argv[:cut] + extra + argv[cut:]
        rc = run_step(step, log, argv, _env(exp, step, track))
        if stop["asked"]:
            if rank0:
                print(f"xling: SIGUSR1: stage {name} stopped (exit {rc}); the job script requeues the job",
                      file=sys.stderr, flush=True)
            raise Requeued(name)
        if rc:
            break
    if rc:
        if rank0:
            P.failed(exp, name, steps[name], rc, error_of(log, rc), log)
        return rc
    if rank0 and (part is None or part == "final"):
        P.finished(exp, name, steps[name], time.perf_counter() - t0)
    return 0
