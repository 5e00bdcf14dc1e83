"""An experiment's plan: for each stage the commands that make it (``Step``), and each stage's state.

Every step is one process's argument vector: an xling command (``xling eval xglue ...``), the export of a
pretraining checkpoint into a model directory (:mod:`xling.experiment.models`) or the checkpoint table
(:mod:`xling.experiment.curves`). Local and SLURM executors run the same steps.

A finished stage leaves ``DIR/.xling-run/STAGE.json`` (its steps, seconds, time); it is *done* while its steps are
unchanged and it finished after every stage it needs. A failed one leaves its exit code and error there.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from xling.errors import XlingError
from xling.experiment.spec import Experiment, Stage

STATE_DIR = ".xling-run"
Render = Callable[[Stage, dict], list[str]]  # (stage, options) -> xling arguments (checked against the command)


@dataclass
class Step:
    stage: str
    argv: list[str]  # the full process arguments (sys.executable -m ...)
    update: Optional[int] = None  # a checkpoint evaluation's update

    def display(self) -> str:
        import shlex

        if self.argv[1:3] == ["-m", "xling.cli.main"]:
            return shlex.join(["xling", *self.argv[3:]])
        return shlex.join(["python", *self.argv[1:]])


def xling_argv(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "xling.cli.main", *args]


def checkpoint_updates(exp: Experiment, stage: Stage) -> list[int]:
    """The updates a checkpoint evaluation stage evaluates."""
    ck = stage.checkpoints
    if ck.updates:
        return list(ck.updates)
    total = exp.stages[ck.of].options.get("max_updates")
    if not isinstance(total, int):
        raise XlingError(f"stage {stage.name!r} evaluates every {ck.every} updates of {ck.of!r}, whose options do "
                         "not set max_updates", file=exp.file,
                         fix=f"set max_updates in the options of {ck.of!r}, or list the updates (updates: [...])")
    if ck.every > total:
        raise XlingError(f"stage {stage.name!r} evaluates every {ck.every} updates of {ck.of!r}, which stops at "
                         f"max_updates {total}: no checkpoint to evaluate", file=exp.file,
                         fix=f"evaluate every N <= {total} updates, or list the updates")
    return list(range(ck.every, total + 1, ck.every))


def pretrain_options(exp: Experiment, stage: Stage) -> dict:
    """A pretraining stage's options, with what its checkpoint evaluations need: a save every gcd of their updates
    (``--save-interval``) and every interval checkpoint kept (fairseq ``--keep-interval-updates -1``)."""
    wanted = sorted({u for s in exp.stages.values() if s.checkpoints and s.checkpoints.of == stage.name
                     for u in checkpoint_updates(exp, s)})
    opts = dict(stage.options)
    if not wanted:
        return opts
    every = math.gcd(*wanted)
    given = opts.get("save_interval")
    if given is not None and (not isinstance(given, int) or given <= 0 or any(u % given for u in wanted)):
        raise XlingError(f"stage {stage.name!r}: save_interval {given} does not save updates {wanted}", file=exp.file,
                         fix=f"leave save_interval out (xling then saves every {every}) or use a divisor of {every}")
    opts.setdefault("save_interval", every)
    extra = opts.get("extra") or []
    opts["extra"] = [*([extra] if isinstance(extra, str) else extra), "--keep-interval-updates", "-1"]
    return opts


def stage_out(exp: Experiment, stage: Stage, options: dict) -> Path:
    return Path(options.get("out") or exp.dir / stage.name).absolute()


def plan(exp: Experiment, render: Render) -> dict[str, list[Step]]:
    """Each stage's steps, in the order stages run."""
    out = {}
    for name in exp.order():
        st = exp.stages[name]
        opts = pretrain_options(exp, st) if st.command == ["pretrain"] else dict(st.options)
        if st.checkpoints is None:
            opts.setdefault("out", str(exp.dir / name))
            out[name] = [Step(name, xling_argv(render(st, opts)))]
            continue
        src = exp.stages[st.checkpoints.of]
        src_out = stage_out(exp, src, src.options)
        steps, root = [], exp.dir / name
        for u in checkpoint_updates(exp, st):
            model = root / "models" / f"u{u}"
            steps.append(Step(name, [sys.executable, "-m", "xling.experiment.models", str(src_out), str(u),
                                     str(model)], u))
            steps.append(Step(name, xling_argv(render(st, {**opts, "model": str(model),
                                                            "out": str(root / f"u{u}")})), u))
        steps.append(Step(name, [sys.executable, "-m", "xling.experiment.curves", str(root),
                                 *[str(u) for u in checkpoint_updates(exp, st)]]))
        out[name] = steps
    return out


def marker(exp: Experiment, name: str) -> Path:
    return exp.dir / STATE_DIR / f"{name}.json"


def read_marker(exp: Experiment, name: str) -> Optional[dict]:
    try:
        return json.loads(marker(exp, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_marker(exp: Experiment, name: str, rec: dict) -> None:
    p = marker(exp, name)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(json.dumps(rec, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, p)


def states(exp: Experiment, steps: dict[str, list[Step]]) -> dict[str, dict]:
    """Each stage's state: done, changed (its steps differ from the finished run's), failed (exit code and error),
    stale (a stage it needs finished after it), waiting (on a stage not done) or ready, with the marker's record."""
    out = {}
    for name in exp.order():
        rec = read_marker(exp, name) or {}
        deps = exp.stages[name].after
        if rec.get("ok") is False:
            state = "failed"
        elif any(out[d]["state"] != "done" for d in deps):
            state = "waiting" if not rec else "stale"
        elif not rec:
            state = "ready"
        elif rec.get("steps") != [s.argv[1:] for s in steps[name]]:
            state = "changed"
        elif any((read_marker(exp, d) or {}).get("finished", 0) > rec.get("finished", 0) for d in deps):
            state = "stale"
        else:
            state = "done"
        out[name] = {"state": state, **rec}
    return out


def finished(exp: Experiment, name: str, steps: list[Step], seconds: float) -> None:
    write_marker(exp, name, {"ok": True, "steps": [s.argv[1:] for s in steps], "seconds": round(seconds, 3),
                             "finished": time.time()})


def failed(exp: Experiment, name: str, steps: list[Step], rc: int, error: str, log: Path) -> None:
    write_marker(exp, name, {"ok": False, "steps": [s.argv[1:] for s in steps], "rc": rc, "error": error,
                             "log": str(log), "finished": time.time()})
