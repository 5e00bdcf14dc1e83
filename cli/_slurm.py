"""``--executor local|slurm`` and the SLURM options, declared once for ``xling run``, ``pretrain`` and
``eval xglue``.

Mechanism (as ``--config`` in cli/_config.py): the click class :class:`ExecutorCommand` adds ``--executor``,
``--wait`` and one option per field of :class:`xling.experiment.slurm.SlurmOptions` (help, flags and lower bound
from the field's metadata), except a field that the command already has an option for: ``pretrain``'s and
``eval xglue``'s own ``--nodes`` and ``--gpus`` (GPUs per node) are the job's nodes and GPUs per node. A command
without a ``--dry-run`` of its own gets one that prints the job. The values leave ``ctx.params`` before the
command's function is called (they are how a command is run, not what it computes: never in ``OUT/config.yaml``)
and go to ``ctx.meta`` as an :class:`~xling.experiment.slurm.Executor`.

``--executor slurm`` on ``pretrain`` / ``eval xglue`` (:func:`submit`) runs no second sbatch generator: the command
with its resolved options (every value, paths absolute) becomes a one-stage experiment,
``OUT.slurm/experiment.yaml`` beside ``--out`` (outside it: the commands' own checks refuse unknown files in
their output directory), submitted as ``xling run`` submits one (``OUT.slurm/slurm/STAGE.sbatch``, logs in
``OUT.slurm/logs/``, the stage's marker in ``OUT.slurm/.xling-run/``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import io
import re
import typing
from pathlib import Path

import typer
from typer._click.core import Context, ParameterSource

from xling.cli._common import _report, console, guarded
from xling.cli._config import ConfigCommand
from xling.errors import XlingError
from xling.experiment.slurm import EXECUTOR_KEY, Executor, SlurmOptions, param_name

PANEL = "Executor (--executor slurm: SLURM)"
# the placement of one node's processes: a SLURM job's nodes get theirs from SLURM (slurm.node_flags)
PLACEMENT = ("nodes", "nnodes", "node_rank", "master_addr", "master_port", "master")


def _check_executor(value: str) -> str:
    if value not in ("local", "slurm"):
        raise typer.BadParameter(f"--executor {value!r}: use local (run here) or slurm (submit it as SLURM jobs)",
                                 param_hint="'--executor'")
    return value


def _flag(f: dataclasses.Field) -> str:
    return (f.metadata["flags"] or (f"--{f.name.replace('_', '-')}",))[0]


def _declare(fields: list[dataclasses.Field], dry_run: bool) -> list:
    """The click parameters of ``--executor``, ``--wait``, the ``fields`` and (``dry_run``) ``--dry-run``,
    declared the Typer way (Typer builds them)."""
    hints = typing.get_type_hints(SlurmOptions)
    decl = [("executor", str, typer.Option("local", "--executor", callback=_check_executor, rich_help_panel=PANEL,
                                           help="local (here) or slurm (submitted as SLURM jobs; "
                                                "docs/experiments.md).")),
            ("wait", bool, typer.Option(False, "--wait", rich_help_panel=PANEL, help="slurm: wait until the jobs "
                                        "have ended, then show their states (exit 2 when one failed)."))]
    for f in fields:
        m = f.metadata
        default = None if f.default_factory is not dataclasses.MISSING else f.default
        decl.append((param_name(f), hints[f.name], typer.Option(default, *(m["flags"] or (_flag(f),)), min=m["min"],
                                                                 help=m["help"], rich_help_panel=PANEL)))
    if dry_run:
        decl.append(("dry_run", bool, typer.Option(False, "--dry-run", rich_help_panel=PANEL, help="slurm: print "
                                                   "the job's sbatch file and command; submit nothing.")))

    def options(**kwargs):
        pass

    options.__signature__ = inspect.Signature([inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=o,
                                                                 annotation=t) for n, t, o in decl])
    options.__annotations__ = {n: t for n, t, _ in decl}
    helper = typer.Typer(add_completion=False)
    helper.command()(options)
    return typer.main.get_command(helper).params


class ExecutorCommand(ConfigCommand):
    """A command with ``--executor local|slurm`` and the SLURM options; ``slurm`` submits the command as a job."""
    runs_itself = False  # True: the command's function reads ctx.meta[EXECUTOR_KEY] (xling run)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        own = {p.name for p in self.params}
        fields = dataclasses.fields(SlurmOptions)
        self.mapped = {f.name: f.metadata["command_param"] for f in fields if f.metadata["command_param"] in own}
        for p in self.params:  # the command's own --nodes / --gpus say what they are to a job
            if p.name in self.mapped.values() and "--executor slurm" not in (p.help or ""):
                p.help = (p.help or "") + " With --executor slurm: the job's " + ("nodes." if p.name == "nodes"
                                                                                  else "GPUs per node.")
        self.added_dry_run = "dry_run" not in own
        added = _declare([f for f in fields if f.name not in self.mapped], self.added_dry_run)
        clash = own & {p.name for p in added}
        if clash:
            raise TypeError(f"{self.name}: its options {sorted(clash)} clash with the SLURM options")
        self.params.extend(added)
        self.slurm_params = [p.name for p in added]

    def executor(self, ctx: Context) -> Executor:
        """The executor options, taken out of ``ctx.params``; one given with ``--executor local`` is an error."""
        values = {n: ctx.params.pop(n) for n in self.slurm_params}
        name = values["executor"]
        if name == "local":
            for p in self.params:
                if p.name in self.slurm_params and p.name != "executor" and ctx.get_parameter_source(p.name) \
                        not in (None, ParameterSource.DEFAULT):
                    flag = max(p.opts, key=len)
                    raise XlingError(f"{flag} is an option of --executor slurm" + (
                        f" (`{ctx.command_path}` has no dry run of its own: --dry-run prints its SLURM job)"
                        if p.name == "dry_run" else ""), fix=f"add --executor slurm, or leave {flag} out")
        kw = {}
        for f in dataclasses.fields(SlurmOptions):
            if f.name in self.mapped:
                kw[f.name] = ctx.params.get(self.mapped[f.name]) or f.default
            else:
                v = values[param_name(f)]
                kw[f.name] = list(v or []) if f.default_factory is not dataclasses.MISSING else v
        dry = values.get("dry_run", ctx.params.get("dry_run")) or False
        return Executor(name, bool(values["wait"]), SlurmOptions(**kw), bool(dry))

    def invoke(self, ctx: Context):
        try:
            ex = self.executor(ctx)
        except XlingError as e:
            _report(e)
            raise typer.Exit(e.exit_code) from None
        ctx.meta[EXECUTOR_KEY] = ex
        if ex.name == "local" or self.runs_itself:
            return super().invoke(ctx)
        return guarded(submit)(ctx, ex)


class RunCommand(ExecutorCommand):
    """``xling run``: the experiment's own stages are the jobs (its function reads the executor)."""
    runs_itself = True


def job_dir(out: Path) -> Path:
    """Where a command submitted with ``--executor slurm`` keeps its job's files: ``OUT.slurm`` beside ``OUT``."""
    out = Path(out).absolute()
    return out.with_name(out.name + ".slurm")


HEADER = "# written by xling: the one-stage experiment of a command submitted with --executor slurm\n"


def submit(ctx: Context, ex: Executor) -> None:
    """The command of ``ctx`` (its resolved options) as one SLURM job, through the experiment machinery."""
    import yaml

    from xling.cli._config import command_name, resolved
    from xling.cli.run import render, submit_jobs
    from xling.experiment import plan as P
    from xling.experiment import slurm
    from xling.experiment.spec import Experiment, Stage

    words = command_name(ctx).split()
    nodes = ctx.params.get("nnodes") or ctx.params.get("nodes") or 1
    if words != ["pretrain"] and nodes > 1:
        raise XlingError(f"--nodes {nodes} with --executor slurm: `xling {' '.join(words)}` is submitted as a "
                         "one-node job", fix="use --gpus N (GPUs on one node), or start it on each node yourself "
                                             "with --node-rank and --master-addr")
    out = Path(ctx.params["out"]).absolute()
    options = {k: v for k, v in resolved(ctx).items() if k not in PLACEMENT}
    d, stage = job_dir(out), words[-1]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", out.name)
    file = d / "experiment.yaml"
    exp = Experiment(name, d, {stage: Stage(stage, words, options)}, file)
    steps = P.plan(exp, lambda st, opts: render(st, opts, file))
    states = P.states(exp, steps)
    if states[stage]["state"] == "done" and not out.exists():  # its output was removed since: run it again
        states[stage] = {**states[stage], "state": "ready"}
    console.print(f"[bold]{' '.join(words)} as a SLURM job[/] (its files: {d}): {steps[stage][0].display()}",
                  highlight=False, soft_wrap=True)
    if not ex.dry_run:
        slurm.need_sbatch()
    _check(ctx)
    if not ex.dry_run:
        text = HEADER + yaml.safe_dump({"name": name, "dir": str(d), "stages": {stage: {
            "command": " ".join(words), "options": _escaped(options)}}}, sort_keys=False, allow_unicode=True)
        old = file.read_text(encoding="utf-8") if file.is_file() else None
        if old is not None and not old.startswith(HEADER):
            raise XlingError("the job's experiment file exists and xling did not write it", file=file,
                             fix=f"move it away, or choose another --out (the job's files go to {d})")
        if old is not None and old != text and slurm.live_jobs(exp):
            raise XlingError("a job of this --out is still queued or running, with other options", file=file,
                             fix="wait for it to end (squeue) or scancel it, then submit again")
        d.mkdir(parents=True, exist_ok=True)
        file.write_text(text, encoding="utf-8")
    submit_jobs(exp, steps, states, ex.options, ex.dry_run, ex.wait, None)
    if ex.wait:
        for log in sorted((d / "logs").glob(f"{stage}*.log")):
            console.print(f"log: {log}", highlight=False, soft_wrap=True)


def _check(ctx: Context) -> None:
    """A command with a dry run of its own (``pretrain``) checks its options and data with it before its job is
    submitted: a bad option or path is an error here (exit 2), not in the job hours later. Its fairseq command is
    not shown; its notes are (e.g. that the GPUs asked for are not visible here)."""
    if "dry_run" not in ctx.params:
        return
    params = {**ctx.params, "dry_run": True}
    if (params.get("nodes") or 1) > 1 and not params.get("master_addr"):
        params["master_addr"] = "localhost"  # stands in for the job's first node (slurm.node_flags sets it there)
    with contextlib.redirect_stdout(io.StringIO()):
        ctx.invoke(ctx.command.callback, **params)


def _escaped(value):
    """Option values as literal text for the experiment file (OmegaConf would read ``${...}`` as a reference)."""
    if isinstance(value, str):
        return value.replace("${", "\\${")
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value
