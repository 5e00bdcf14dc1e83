"""Run an experiment on SLURM with plain sbatch files (``xling run --executor slurm``; ``--dry-run`` prints them).

One job per stage that is not done, submitted in order, each held until the jobs of the stages it needs ended
well (``--dependency=afterok:...``); a job runs ``xling run EXPERIMENT --dir DIR --only STAGE`` on its node, so a
stage does exactly what it does locally and leaves the same marker. A checkpoint evaluation fans out as a job
array (task k: checkpoint k, ``--part k``) followed by a job that writes the table (``--part final``). A
pretraining stage with ``nodes`` > 1 runs one task per node: each launches its node's processes (one per GPU,
or ``cpu_procs``) with ``--nodes``, ``--node-rank`` from ``SLURM_NODEID`` and ``--master-addr`` the job's first node.

Time limits and preemption: jobs get ``--signal=USR1@SECONDS`` and ``--requeue``; xling's pretraining stops on
SIGUSR1 after its update with checkpoint_last.pt saved, the stage's ``xling run --only`` exits
:data:`REQUEUE_RC`, and the job script, once ``srun`` has returned (the step's processes are gone), asks SLURM to
requeue the job (``scontrol requeue``), whose next start resumes. (Requeueing from inside the step raced: the
job could start again while the old step was still being torn down.) Output: ``DIR/logs/STAGE.slurm-%j.log``
(array tasks ``%A_%a``), appended over requeues.
"""
from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from xling.errors import XlingError
from xling.experiment import plan as P
from xling.experiment.spec import Experiment
from xling.experiment.track import Tracking

REQUEUE_RC = 75  # `xling run --only`: stopped on SIGUSR1, requeue the job (EX_TEMPFAIL)


def _opt(default, help: str, flags: tuple[str, ...] = (), command_param: Optional[str] = None, low=None,
         factory=None):
    """A field of :class:`SlurmOptions` with the CLI's declaration of it (cli/_slurm.py builds the options of
    ``xling run``, ``pretrain`` and ``eval xglue`` from these): its help, its flags (default ``--FIELD-NAME``), the
    command's own option that stands for it where the command has one (``--nodes``, ``--gpus``) and its lower
    bound."""
    meta = {"help": help, "flags": flags, "command_param": command_param, "min": low}
    return field(default_factory=factory, metadata=meta) if factory else field(default=default, metadata=meta)


@dataclass
class SlurmOptions:
    """The SLURM options of ``--executor slurm``, one flag vocabulary for every command that has it."""
    partition: Optional[str] = _opt(None, "slurm: partition (-p).")
    account: Optional[str] = _opt(None, "slurm: account (-A).")
    qos: Optional[str] = _opt(None, "slurm: quality of service.")
    time: Optional[str] = _opt(None, "slurm: time limit of each job (e.g. 1-00:00:00).")
    nodes: int = _opt(1, "slurm: nodes of the pretraining job (one task per node launches its GPUs' processes).",
                      command_param="nodes", low=1)
    gpus_per_node: int = _opt(0, "slurm: GPUs per node of the pretraining job (other stages: their own gpus "
                              "option, else at most 1).", flags=("--gpus-per-node", "--gpus"), command_param="gpus",
                              low=0)
    cpus_per_task: Optional[int] = _opt(None, "slurm: CPUs per task (default: the command's --cpu-procs when it "
                                        "is over 1).", low=1)
    mem: Optional[str] = _opt(None, "slurm: memory per node (e.g. 64G).")
    constraint: Optional[str] = _opt(None, "slurm: node features (-C).")
    extra: list[str] = _opt(None, "slurm: one more #SBATCH line's option, e.g. --sbatch=--exclusive (repeat).",
                            flags=("--sbatch",), factory=list)
    signal_seconds: int = _opt(120, "slurm: SIGUSR1 this many seconds before a time limit (pretraining saves, the "
                               "job is requeued and resumes).", low=1)


def param_name(f) -> str:
    """A :class:`SlurmOptions` field's CLI parameter name (also its ``--config`` key): its first flag's, else the
    field's own."""
    flags = f.metadata["flags"]
    return flags[0].lstrip("-").replace("-", "_") if flags else f.name


def option_names() -> set[str]:
    """The parameter names of ``--executor`` and the SLURM options (how a command runs: not a stage option)."""
    import dataclasses

    return {"executor", "wait", *(param_name(f) for f in dataclasses.fields(SlurmOptions))}


EXECUTOR_KEY = "xling.executor"  # click's ctx.meta key of a command's Executor (cli/_slurm.py puts it there)


@dataclass
class Executor:
    """Where a command runs: here (``local``) or as SLURM jobs (``slurm``, with ``options``); ``wait``: until the
    jobs have ended; ``dry_run``: print the sbatch files, submit nothing."""
    name: str = "local"
    wait: bool = False
    options: SlurmOptions = field(default_factory=SlurmOptions)
    dry_run: bool = False


@dataclass
class Job:
    stage: str
    name: str  # file stem: STAGE, STAGE.array, STAGE.final
    script: str
    after: list[str]  # names of the jobs it waits for
    array: Optional[int] = None  # number of array tasks


def _comment(exp: Experiment) -> str:
    """Marks an experiment's jobs (by its directory) so a second ``xling run`` finds those still queued."""
    return "xling:" + str(exp.dir).replace(" ", "_")


# states of a job that has ended for good; every other state (PENDING, RUNNING, COMPLETING, REQUEUED while a
# requeued job's old instance is torn down, REQUEUE_HOLD, SUSPENDED, ...) is a job still to wait for
ENDED = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE",
         "OUT_OF_MEMORY", "SPECIAL_EXIT", "REVOKED"}


def squeue(fmt: str, env: Optional[dict] = None, tries: int = 6, pause: float = 5.0) -> list[str]:
    """squeue's lines (``-h -o FMT``) for the jobs that have not ended. squeue's default states leave out a job
    being requeued (REQUEUED, for up to KillWait seconds), which would read as "gone", so every state is asked
    for (``-t all``) and the ended ones (:data:`ENDED`) dropped. A busy or restarting slurmctld makes squeue fail
    now and then ("Socket timed out", "Unable to contact slurm controller"): read as an empty queue, that would
    submit an experiment's queued jobs again, or end ``--wait`` early; so a failure is retried (``tries`` times,
    ``pause`` seconds apart) before it is an error. An empty list: no squeue here."""
    err = ""
    for k in range(tries):
        try:
            r = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%T|" + fmt], capture_output=True, text=True,
                               env=env)
        except FileNotFoundError:
            return []
        if r.returncode == 0:
            return [ln.split("|", 1)[1] for ln in r.stdout.splitlines()
                    if "|" in ln and ln.split("|", 1)[0].strip() not in ENDED]
        err = (r.stderr or r.stdout).strip()
        if k + 1 < tries:
            time.sleep(pause)
    raise XlingError(f"squeue failed {tries} times: {err}", fix="check that slurmctld is up (`scontrol ping`) and "
                     "run again: finished stages are skipped, queued jobs are not submitted twice")


def _ours(exp: Experiment, fmt: str, env: Optional[dict] = None) -> list[list[str]]:
    """The ``|``-separated fields of ``fmt`` of this experiment's jobs that have not ended (its jobs carry
    :func:`_comment`)."""
    n = fmt.count("|") + 1
    out = []
    for line in squeue(fmt + "|%k", env):
        parts = line.strip().split("|", n)
        if len(parts) == n + 1 and parts[n] == _comment(exp):
            out.append(parts[:n])
    return out


def live_jobs(exp: Experiment, env: Optional[dict] = None) -> dict[str, str]:
    """``{job name (STAGE, STAGE.array, STAGE.final): id}`` of this experiment's jobs still queued or running."""
    prefix = f"xling-{exp.name}-"
    return {name[len(prefix):]: jid for jid, name in _ours(exp, "%F|%j", env) if name.startswith(prefix)}


def waiting_on(exp: Experiment, env: Optional[dict] = None) -> list[tuple[str, str, str]]:
    """``[(job id, state, reason)]`` of this experiment's jobs still queued or running (array tasks one by one)."""
    return [(jid, state, reason) for jid, state, reason in _ours(exp, "%i|%T|%r", env)]


def never_start(queued: list[tuple[str, str, str]]) -> bool:
    """Whether none of the jobs of :func:`waiting_on` will ever start: all pending on a dependency, one of them on a
    failed job. SLURM marks only the jobs right behind a failed one ``DependencyNeverSatisfied``; the jobs behind
    those wait with reason ``Dependency`` for ever."""
    reasons = [r for _, st, r in queued if st == "PENDING" and r in ("Dependency", "DependencyNeverSatisfied")]
    return bool(queued) and len(reasons) == len(queued) and "DependencyNeverSatisfied" in reasons


def _header(exp: Experiment, o: SlurmOptions, job: str, log: str, nodes: int = 1, tasks_per_node: int = 1,
            gpus: int = 0, cpus: Optional[int] = None) -> list[str]:
    lines = ["#!/bin/bash", f"#SBATCH --job-name=xling-{exp.name}-{job}", f"#SBATCH --output={log}",
             f"#SBATCH --comment={_comment(exp)}",
             "#SBATCH --open-mode=append", "#SBATCH --requeue", f"#SBATCH --signal=USR1@{o.signal_seconds}",
             f"#SBATCH --nodes={nodes}", f"#SBATCH --ntasks-per-node={tasks_per_node}"]
    for flag, v in (("partition", o.partition), ("account", o.account), ("qos", o.qos), ("time", o.time),
                    ("cpus-per-task", o.cpus_per_task or cpus), ("mem", o.mem), ("constraint", o.constraint)):
        if v is not None:
            lines.append(f"#SBATCH --{flag}={v}")
    if gpus:
        lines.append(f"#SBATCH --gpus-per-node={gpus}")
    lines += [f"#SBATCH {x}" if not x.startswith("#SBATCH") else x for x in o.extra]
    return lines


def _srun(cmd: str) -> list[str]:
    """The job script's last lines: the stage's command under srun, and the requeue it asks for."""
    return [f"srun {cmd}", "rc=$?",
            f'if [ "$rc" -eq {REQUEUE_RC} ]; then echo "xling: requeueing job $SLURM_JOB_ID"; '
            'scontrol requeue "$SLURM_JOB_ID"; fi', 'exit "$rc"']


def jobs(exp: Experiment, steps: dict[str, list[P.Step]], states: dict[str, dict], o: SlurmOptions,
         cwd: Path, track: Optional[Tracking] = None, live: Optional[dict[str, str]] = None) -> list[Job]:
    """The jobs of every stage that is not done and has no job in the queue yet (``live``: the queued ones, whose
    names the new jobs may wait for), in submission order."""
    out: list[Job] = []
    live = live or {}
    last: dict[str, str] = {}  # stage -> the job whose success means the stage is done
    py = shlex.quote(sys.executable)
    base = f"{py} -m xling.cli.main run {shlex.quote(str(exp.file.absolute()))} --dir {shlex.quote(str(exp.dir))}"
    if track is not None:
        base += "".join(f" {shlex.quote(a)}" for a in track.run_flags())
    logs = exp.dir / "logs"
    for name in exp.order():
        if states[name]["state"] == "done":
            continue
        queued = f"{name}.final" if exp.stages[name].checkpoints is not None else name
        if queued in live:  # submitted by an earlier `xling run` and not ended: not again
            last[name] = queued
            continue
        st = exp.stages[name]
        deps = [last[d] for d in st.after if d in last]
        body = [f"cd {shlex.quote(str(cwd))}", "export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}"]
        if st.checkpoints is not None:
            n = sum(1 for s in steps[name] if s.update is not None) // 2
            arr = _header(exp, o, f"{name}.array", str(logs / f"{name}.slurm-%A_%a.log"))
            arr.insert(2, f"#SBATCH --array=0-{n - 1}")
            out.append(Job(name, f"{name}.array", "\n".join(
                arr + body + _srun(f"{base} --only {name} --part $SLURM_ARRAY_TASK_ID")) + "\n", deps, n))
            fin = _header(exp, o, f"{name}.final", str(logs / f"{name}.slurm-%j.log"))
            out.append(Job(name, f"{name}.final", "\n".join(fin + body + _srun(f"{base} --only {name} --part final"))
                           + "\n", [f"{name}.array"]))
            last[name] = f"{name}.final"
            continue
        nodes = o.nodes if st.command == ["pretrain"] else 1
        own = st.options.get("gpus")  # a stage's own --gpus (GPUs per node, e.g. an `eval xglue` on 4 GPUs)
        gpus = o.gpus_per_node if st.command == ["pretrain"] else own if isinstance(own, int) and own > 0 else \
            min(o.gpus_per_node, 1)
        procs = st.options.get("cpu_procs") if not gpus else None
        head = _header(exp, o, name, str(logs / f"{name}.slurm-%j.log"), nodes=nodes, gpus=gpus,
                       cpus=procs if isinstance(procs, int) and procs > 1 else None)
        out.append(Job(name, name, "\n".join(head + body + _srun(f"{base} --only {name}")) + "\n", deps))
        last[name] = name
    return out


def need_sbatch() -> None:
    """SLURM's commands are here (before anything is written or submitted)."""
    if shutil.which("sbatch") is None:
        raise XlingError("--executor slurm: sbatch not found (this machine has no SLURM commands)",
                         fix="run on a SLURM login node, or use --executor local")


def submit(exp: Experiment, job_list: list[Job], env: Optional[dict] = None,
           live: Optional[dict[str, str]] = None) -> dict[str, str]:
    """sbatch each job (:func:`need_sbatch` first) (its file under ``DIR/slurm/``), held on the jobs it waits for (new or ``live``);
    ``{job name: job id}`` of the new ones."""
    ids: dict[str, str] = dict(live or {})
    new: dict[str, str] = {}
    d = exp.dir / "slurm"
    d.mkdir(parents=True, exist_ok=True)
    (exp.dir / "logs").mkdir(parents=True, exist_ok=True)
    for j in job_list:
        f = d / f"{j.name}.sbatch"
        f.write_text(j.script, encoding="utf-8")
        cmd = ["sbatch", "--parsable"]
        if j.after:
            cmd.append("--dependency=afterok:" + ":".join(ids[a] for a in j.after))
        cmd.append(str(f))
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode:
            raise XlingError(f"sbatch refused the job of stage {j.stage}: {r.stderr.strip() or r.stdout.strip()}",
                             file=f, fix="check the partition/account/qos/time options" +
                             (f"; jobs already submitted: {', '.join(ids.values())}" if ids else ""))
        ids[j.name] = new[j.name] = r.stdout.strip().split(";")[0]
    return new


def node_flags(stage_command: list[str], env: dict) -> list[str]:
    """A multi-node pretraining task's ``--nodes``, ``--node-rank``, ``--master-addr`` and ``--master-port`` from
    SLURM's variables."""
    nodes = int(env.get("SLURM_JOB_NUM_NODES") or env.get("SLURM_NNODES") or 1)
    if stage_command != ["pretrain"] or nodes <= 1:
        return []
    first = subprocess.run(["scontrol", "show", "hostnames", env["SLURM_JOB_NODELIST"]], capture_output=True,
                           text=True, check=True).stdout.split()[0]
    port = 20000 + int(env.get("SLURM_JOB_ID", "0")) % 20000
    return ["--nodes", str(nodes), "--node-rank", env.get("SLURM_NODEID", "0"), "--master-addr", first,
            "--master-port", str(port)]
