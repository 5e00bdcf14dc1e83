"""``xling run EXPERIMENT.yaml``: run an experiment's stages (:mod:`xling.experiment`) in order, what is not done.

A stage's options are checked against its command's own click parameters (as ``--config`` files are) and
rendered into that command's flags, so ``--dry-run`` prints exactly the commands that run.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from typer._click.core import Context
from typer.core import TyperArgument, TyperOption
from rich.markup import escape
from rich.table import Table

from xling.cli._common import console, err_console, guarded
from xling.errors import XlingError
from xling.experiment.slurm import EXECUTOR_KEY


def click_command(words: list[str], file: Path):
    """The click command of ``xling WORDS`` (``eval xglue``)."""
    from xling.cli.app import app

    cmd = typer.main.get_command(app)
    for i, w in enumerate(words):
        sub = cmd.commands.get(w) if hasattr(cmd, "commands") else None
        if sub is None:
            valid = sorted(cmd.commands) if hasattr(cmd, "commands") else []
            raise XlingError(f"unknown command `xling {' '.join(words[:i + 1])}`", file=file,
                             fix="use one of: " + ", ".join(valid) if valid else "check the command")
        cmd = sub
    if hasattr(cmd, "commands") and not any(p.expose_value for p in cmd.params):  # `xling align` runs itself
        raise XlingError(f"`xling {' '.join(words)}` needs a subcommand", file=file,
                         fix="use one of: " + ", ".join(sorted(cmd.commands)))
    return cmd


def _long(p: TyperOption, opts=None) -> str:
    opts = opts or p.opts
    return next((o for o in opts if o.startswith("--")), opts[0])


def render(stage, options: dict, file: Path) -> list[str]:
    """``options`` (option names: values) as the arguments of the stage's command, checked like a --config."""
    from xling.cli._config import defaults_from
    from xling.experiment.slurm import option_names

    how = sorted(option_names() & {str(k).replace("-", "_") for k in options})
    if how:
        raise XlingError(f"stage {stage.name!r}: {how[0]} is not a stage option: it says how the experiment runs",
                         file=file, fix=f"give --{how[0].replace('_', '-')} to `xling run`")
    cmd = click_command(stage.command, file)
    ctx = Context(cmd, info_name="xling " + " ".join(stage.command))
    try:
        values = defaults_from(cmd, ctx, file, options)
    except XlingError as e:
        raise XlingError(f"stage {stage.name!r}: {e.message}", file=e.file, line=e.line, fix=e.fix) from None
    args, rest = list(stage.command), []
    for p in cmd.params:
        if p.name not in values:
            continue
        v = values[p.name]
        if isinstance(p, TyperArgument):
            rest += [str(x) for x in (v if isinstance(v, list) else [v])]
        elif isinstance(p, TyperOption) and p.is_flag:
            on = p.get_runtime_param().coerce(v, param=p, ctx=ctx)
            if on:
                args.append(_long(p))
            elif p.secondary_opts:
                args.append(_long(p, p.secondary_opts))
        else:
            for x in (v if getattr(p, "multiple", False) else [v]):
                args += [_long(p), str(x)]
    return args + (["--", *rest] if rest else [])


def _load(experiment: Path, out_dir: Optional[Path]):
    from xling.experiment import plan as P
    from xling.experiment.spec import load

    exp = load(experiment, out_dir)
    steps = P.plan(exp, lambda st, opts: render(st, opts, exp.file))
    return exp, steps


STYLE = {"done": "green", "skipped": "green", "failed": "bold red", "blocked": "red", "changed": "yellow",
         "stale": "yellow", "ready": "cyan", "waiting": "dim"}


def status_table(exp, steps, states: dict) -> Table:
    t = Table(title=f"experiment {exp.name} ({exp.dir})")
    for col in ("stage", "command", "after", "state", "seconds", "note"):
        t.add_column(col)
    for name in exp.order():
        s, st = exp.stages[name], states[name]
        note = st.get("error") or st.get("because") or ""
        if st.get("state") in ("blocked",):
            note = f"needs {st['because']}, which failed"
        t.add_row(name, " ".join(s.command) + (f" ×{sum(1 for x in steps[name] if x.update)//2}" if s.checkpoints
                                                else ""),
                  ",".join(s.after) or "-", f"[{STYLE.get(st['state'], '')}]{st['state']}[/]",
                  f"{st['seconds']:.1f}" if st.get("seconds") is not None else "-", escape(note.splitlines()[0])
                  if note else "")
    return t


def _tracking(tensorboard: Optional[Path], wandb: Optional[str]):
    """The live tracking asked for (None: none), after checking that its libraries are installed."""
    if tensorboard is None and wandb is None:
        return None
    from xling.experiment import track, track_wandb

    if tensorboard is not None:
        track.check()
    if wandb is not None:
        track_wandb.check(wandb)
    return track.Tracking(None if tensorboard is None else tensorboard.absolute(), wandb)


def checkpoint_tables(exp) -> list[Table]:
    """The checkpoint x task x language table of each checkpoint stage that has one."""
    out = []
    for name, s in exp.stages.items():
        f = exp.dir / name / "checkpoints.json"
        if not s.checkpoints or not f.is_file():
            continue
        rep = json.loads(f.read_text(encoding="utf-8"))
        t = Table(title=f"{name}: checkpoints × task × language ({f}, zero_shot.png)")
        for col in ("update", "task", "lang", "dev", "test"):
            t.add_column(col, justify="right" if col in ("update", "dev", "test") else "left")
        for r in rep["rows"]:
            t.add_row(str(r["update"]), r["task"], r["lang"] + ("" if r["zero_shot"] else " (train)"),
                      *(f"{r[k]:.2f}" if r[k] is not None else "-" for k in ("dev", "test")))
        out.append(t)
    return out


@guarded
def run(
    ctx: typer.Context,
    experiment: Path = typer.Argument(..., help="Experiment file (YAML): named stages, each an xling command with "
                                      "its options and the stages it needs (docs/experiments.md)."),
    out_dir: Optional[Path] = typer.Option(None, "--dir", help="Experiment directory (default: the file's "
                                           "`dir`, else runs/NAME)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (each stage's state) and the commands "
                                 "that would run; run nothing."),
    status: bool = typer.Option(False, "--status", help="Show each stage's state and exit."),
    tensorboard: Optional[Path] = typer.Option(None, "--tensorboard", help="Live curves in this TensorBoard "
                                               "log directory (one folder per stage): pretraining losses per "
                                               "objective, lr, tokens/s, validation; each checkpoint's evaluation "
                                               "scores at its update. Needs the track extra (tensorboardX)."),
    wandb: Optional[str] = typer.Option(None, "--wandb", metavar="PROJECT", help="Live tracking in this Weights & "
                                        "Biases project, offline unless WANDB_MODE says otherwise (one run per "
                                        "stage in DIR/wandb/, grouped by experiment; upload: wandb sync): the same "
                                        "curves and scores. Needs the track extra (wandb)."),
    only: Optional[str] = typer.Option(None, "--only", hidden=True, help="Inside a SLURM job: run this stage."),
    part: Optional[str] = typer.Option(None, "--part", hidden=True, help="Inside a SLURM job: checkpoint k of a "
                                       "checkpoint stage, or final."),
):
    """Run an experiment's stages in order: what is not finished runs (each command also skips and resumes its
    own finished work); a failed stage stops the stages that need it (exit 2)."""
    from xling.experiment import plan as P
    from xling.experiment.local import run as run_local

    exp, steps = _load(experiment, out_dir)
    track = _tracking(tensorboard, wandb)
    if only is not None:
        from xling.experiment.local import Requeued, run_only
        from xling.experiment.slurm import REQUEUE_RC

        if only not in exp.stages:
            raise XlingError(f"no stage {only!r}", file=exp.file, fix="use one of " + ", ".join(exp.stages))
        try:
            rc = run_only(exp, steps, only, part, track)
        except Requeued:
            raise typer.Exit(REQUEUE_RC) from None
        if rc:
            raise typer.Exit(rc)
        return
    states = P.states(exp, steps)
    ex = ctx.meta[EXECUTOR_KEY]  # --executor and the SLURM options (cli/_slurm.py declares them)
    if ex.name == "slurm" and not status:
        return submit_jobs(exp, steps, states, ex.options, dry_run, ex.wait, track)
    if status or dry_run:
        console.print(status_table(exp, steps, states))
        if dry_run:
            for name in exp.order():
                todo = states[name]["state"] != "done"
                console.print(f"[bold]{name}[/] ({'runs' if todo else 'done, skipped'}):", highlight=False)
                for s in steps[name]:
                    console.print("  " + escape(s.display()), highlight=False, soft_wrap=True)
        else:
            for t in checkpoint_tables(exp):
                console.print(t)
        return

    def on_event(name, what, info):
        if what == "skip":
            err_console.print(f"[green]✓[/] {name}: done, skipped", highlight=False)
        elif what == "start":
            err_console.print(f"[bold]▶ {name}[/]: {info['steps']} step(s), log {info['log']}", highlight=False)
        elif what == "step":
            err_console.print(f"  {escape(info['step'].display())}", highlight=False, soft_wrap=True)
        elif what == "done":
            err_console.print(f"[green]✓[/] {name}: done in {info['seconds']:.1f} s", highlight=False)
        elif what == "failed":
            err_console.print(f"[bold red]✗ {name}[/]: failed (exit {info['rc']}): {escape(info['error'])}\n"
                              f"  log: {info['log']}", highlight=False, soft_wrap=True)
        elif what == "blocked":
            err_console.print(f"[red]✗ {name}[/]: not run: it needs {info['because']}, which failed",
                              highlight=False)

    outcome = run_local(exp, steps, on_event, track)
    after = P.states(exp, steps)
    console.print(status_table(exp, steps, {n: {**after[n], **o} for n, o in outcome.items()}))
    for t in checkpoint_tables(exp):
        console.print(t)
    broken = [n for n, o in outcome.items() if o["state"] in ("failed", "blocked")]
    if broken:
        failed = [n for n in broken if outcome[n]["state"] == "failed"]
        blocked = [n for n in broken if outcome[n]["state"] == "blocked"]
        raise XlingError(f"stage {', '.join(failed)} failed: {outcome[failed[0]]['error']}"
                         + (f"; not run: {', '.join(blocked)} (they need it)" if blocked else ""),
                         file=outcome[failed[0]]["log"],
                         fix="fix the stage's options in the experiment file and run again: finished stages are "
                             "skipped")


def submit_jobs(exp, steps, states, opts, dry_run: bool, wait: bool, track=None) -> None:
    """The jobs of the stages that are not done, submitted (``dry_run``: printed), then (``wait``) waited for."""
    import time

    from xling.experiment import plan as P
    from xling.experiment import slurm

    if not dry_run:
        slurm.need_sbatch()
    live = {} if dry_run else slurm.live_jobs(exp)
    job_list = slurm.jobs(exp, steps, states, opts, Path.cwd(), track, live)
    if dry_run:
        console.print(status_table(exp, steps, states))
        for j in job_list:
            f = exp.dir / "slurm" / f"{j.name}.sbatch"
            dep = f" --dependency=afterok:<{'> <'.join(j.after)}>" if j.after else ""
            console.print(f"[bold]sbatch{dep} {f}[/]", highlight=False, soft_wrap=True)
            console.print(escape(j.script), highlight=False, soft_wrap=True)
        if not job_list:
            console.print("every stage is done: nothing to submit", highlight=False)
        return
    if not job_list and not live:
        console.print(status_table(exp, steps, states))
        return
    ids = slurm.submit(exp, job_list, live=live)
    t = Table(title=f"experiment {exp.name}: submitted to SLURM" if job_list else
              f"experiment {exp.name}: its jobs are in the queue already")
    for col in ("stage", "job", "id", "after"):
        t.add_column(col)
    known = {**live, **ids}
    for j in job_list:
        t.add_row(j.stage, j.name + (f" (array of {j.array})" if j.array else ""), ids[j.name],
                  ",".join(known[a] for a in j.after) or "-")
    for name, jid in live.items():
        t.add_row(name.split(".")[0], name + " (queued before)", jid, "")
    console.print(t)
    if not wait:
        return
    import subprocess

    while True:
        queued = slurm.waiting_on(exp)
        if not queued:
            break
        if slurm.never_start(queued):  # held behind a failed stage
            subprocess.run(["scancel", *[jid for jid, _, _ in queued]], capture_output=True)
            break
        time.sleep(2)
    states = P.states(exp, steps)
    console.print(status_table(exp, steps, states))
    for t in checkpoint_tables(exp):
        console.print(t)
    failed = [n for n, st in states.items() if st["state"] == "failed"]
    if failed:
        raise XlingError(f"stage {', '.join(failed)} failed: {states[failed[0]].get('error')}",
                         file=states[failed[0]].get("log"), fix="fix it and run again: finished stages are skipped")
    left = [n for n, st in states.items() if st["state"] != "done"]
    if left:
        raise XlingError(f"stages not done after the jobs ended: {', '.join(left)}", file=exp.dir / "logs",
                         fix="see the stages' SLURM logs there")
