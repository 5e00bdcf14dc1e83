"""Running a fairseq training command: one process per rank (CPU DDP with gloo starts each rank itself;
on GPUs fairseq's own launcher spawns them), following rank 0's JSON log for the progress and the loss
curve, and the run's life cycle shared by both architectures (skip when finished, resume, merge the
curves of earlier launches, write the model directory and ``OUT/pretrain.json``)."""
from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import threading
from pathlib import Path
from typing import Callable, Optional

from xling.errors import XlingError
from xling.io import read_json, sha256_text, write_json_atomic
from xling.pretrain.checkpoints import checkpoint_updates, failed_save, write_model_dir
from xling.pretrain.identity import check_identity, flag_values, record_launch, run_identity
from xling.pretrain.lock import RunLock, run_lock
from xling.pretrain.options import DataInfo, PretrainOptions

StatsCallback = Callable[[str, dict], None]


# torch.compile's kernel cache (TORCHINDUCTOR_CACHE_DIR, unless the user set one) in the run directory: by default it
# is /tmp on the node, which a cluster wipes or a requeue leaves behind, so each launch compiled again (CPU, tiny
# preset: 48 s to the first updates cold, 13 s from the cache)
COMPILE_CACHE = ".compile-cache"


def rank_commands(opts: PretrainOptions, cmd: list[str], port: int) -> list[list[str]]:
    """One command per process to start: CPU DDP starts each rank itself (gloo, no spawn)."""
    if opts.cpu_procs <= 1 or opts.gpus:
        return [cmd]
    n_extra = len(opts.extra)
    base, extra = (cmd[:-n_extra], cmd[-n_extra:]) if n_extra else (cmd, [])
    return [base + ["--distributed-backend", "gloo", "--distributed-rank", str(r), "--device-id", "0",
                    "--distributed-init-method", f"tcp://127.0.0.1:{port}", "--distributed-no-spawn"] + extra
            for r in range(opts.cpu_procs)]


LOG_RECORD = re.compile(r"\b(train_inner|train|valid)\b\W+(\{.*\})\s*$")


def parse_log_line(line: str) -> Optional[tuple[str, dict]]:
    """``(kind, stats)`` for a fairseq JSON log line (``train_inner``, ``train`` or ``valid``)."""
    m = LOG_RECORD.search(line)
    if not m:
        return None
    try:
        raw = json.loads(m.group(2))
    except json.JSONDecodeError:
        return None
    stats = {}
    for k, v in raw.items():
        if v is None:  # a meter with nothing logged in this interval (e.g. no TLM row in the batch)
            continue
        try:
            stats[k] = float(v)
        except (TypeError, ValueError):
            stats[k] = v
    return m.group(1), stats


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child_setup():
    """In each trainer process: its own process group (the launcher signals the group), and SIGTERM when the
    launcher dies, even by ``kill -9`` (Linux ``PR_SET_PDEATHSIG``): the trainer then saves and stops."""
    os.setsid()
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _libc_prctl():
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _libc_prctl()


def signal_groups(procs: list[subprocess.Popen], sig: int) -> None:
    """Send ``sig`` to the process group of each trainer still running (its rank processes and loader workers)."""
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, sig)


def exit_text(codes: list[int]) -> str:
    """The trainers' exit codes in words: ``exit code 1`` or, for a process killed by a signal (the kernel's
    out-of-memory killer, ``kill -9``), ``killed by SIGKILL``."""
    def one(c: int) -> str:
        if c < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-c).name}"
        return f"exit code {c}"

    return ", ".join(one(c) for c in codes)


def kill_processes(procs: list[subprocess.Popen]) -> None:
    """Stop the trainers' process groups at once (SIGKILL; their checkpoint writes are atomic) and reap them."""
    signal_groups(procs, signal.SIGKILL)
    for p in procs:
        p.wait()


# the launcher's signals that stop a run: a scheduler's SIGTERM (or SIGUSR1 ahead of a time limit), Ctrl-C, a
# closed terminal
LAUNCHER_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1)
GRACEFUL_LIMIT = 300.0  # seconds the trainers get to finish their update and save after a stop request


class GracefulStop:
    """The launcher's stop: the first signal asks the trainers (SIGTERM to each process group) to finish the
    update they are in, save ``checkpoint_last.pt`` and exit (:mod:`xling.xlmplug.stop`); a second signal, or
    :data:`GRACEFUL_LIMIT` seconds without an exit, kills them. A signal before any trainer started interrupts."""

    def __init__(self, procs: list[subprocess.Popen]):
        self.procs = procs
        self.signal: Optional[str] = None
        self.timer: Optional[threading.Timer] = None

    def handler(self, signum, frame):
        name = signal.Signals(signum).name
        if self.signal is not None or not self.procs:
            raise KeyboardInterrupt(f"received {name}" + (" again" if self.signal else ""))
        self.signal = name
        self.forward()
        # os.write: a handler must not re-enter sys.stderr's buffered writer
        os.write(2, f"\nxling: {name} received: the trainer finishes its update, saves checkpoint_last.pt and "
                    f"stops (a second Ctrl-C or signal stops it at once)\n".encode())
        self.timer = threading.Timer(GRACEFUL_LIMIT, kill_processes, (list(self.procs),))
        self.timer.daemon = True
        self.timer.start()

    def forward(self) -> None:
        """The stop request to the trainers: SIGTERM to their process groups."""
        signal_groups(self.procs, signal.SIGTERM)

    @contextlib.contextmanager
    def handling(self):
        """The launcher's stop signals go to :meth:`handler` inside (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        # a signal the caller ignores stays ignored: `nohup xling pretrain` must outlive its terminal's SIGHUP
        old = {sig: signal.signal(sig, self.handler) for sig in LAUNCHER_STOP_SIGNALS
               if signal.getsignal(sig) is not signal.SIG_IGN}
        try:
            yield self
        finally:
            for sig, h in old.items():
                signal.signal(sig, h)
            if self.timer is not None:
                self.timer.cancel()


# fairseq's trainer catches an out-of-memory error in a training step, logs this and skips the update; when every
# micro-batch is too large, it goes on skipping forever and trains nothing
OOM_LINE = "attempting to recover from OOM in forward/backward pass"
OOM_LIMIT = 5  # skipped micro-batches with no update logged in between: the micro-batch does not fit


class MicroBatchOOM(XlingError):
    """Training ran out of memory in its micro-batches; ``half``: the micro-batch size (sequences) to try next,
    0 when it was one sequence already."""

    def __init__(self, message: str, half: int, **kw):
        super().__init__(message, **kw)
        self.half = half


def oom_error(cmd: list[str], out: Path, skipped: int) -> MicroBatchOOM:
    """The error for a run whose micro-batches do not fit in memory (``skipped`` of them in a row), with the size
    to try instead. (An out-of-memory error fairseq does not catch, as in the optimizer's step, ends the trainer:
    a smaller micro-batch would not be the fix.)"""
    flags = flag_values(cmd)
    size = (f"{flags['--batch-size']} sequences" if "--batch-size" in flags
            else f"{flags.get('--max-tokens', '?')} tokens")
    micro = int(flags["--batch-size"]) if "--batch-size" in flags \
        else max(1, int(flags.get("--max-tokens", 1)) // int(flags.get("--tokens-per-sample", 1)))
    half = micro // 2
    return MicroBatchOOM(f"training ran out of memory on {skipped} micro-batches since the last logged update "
                         f"(micro-batches of up to {size}; fairseq skips each such update, and when none fits the "
                         f"run trains nothing)", half, file=out / "train.log",
                         fix=(f"use smaller micro-batches: --micro-batch-size {half} (sequences per micro-batch and "
                              f"device; an update keeps its --batch-size sequences in more micro-batches)" if half
                              else "one sequence per micro-batch does not fit: train on a device with more memory, "
                              "or a smaller model (--preset)")
                         + "; re-running resumes from checkpoint_last.pt if there is one")


# the line a trainer logs when a signal stopped it (``xling.xlmplug.stop.STOP_LINE``; that package imports fairseq)
STOP_LINE_RE = re.compile(r"xling: stopped on (.+?) after update (\d+): checkpoint_last\.pt saved")


def near_update(curve: list[dict]) -> str:
    """`` near update N`` for the last logged update (empty before one)."""
    return f" near update {int(curve[-1]['num_updates'])}" if curve else ""


def resume_hint(opts: PretrainOptions) -> str:
    """What a re-run does: resume from checkpoint_last.pt, or start over."""
    return ("; re-running resumes from checkpoint_last.pt" if (opts.checkpoint_dir / "checkpoint_last.pt").exists()
            else "; no checkpoint was saved yet, so a re-run starts over")


def curve_point(stats: dict) -> dict:
    """What the summary's curve keeps of a ``train_inner`` record."""
    return {k: v for k, v in stats.items() if k in ("num_updates", "loss", "lr", "wps", "bsz")
            or k.endswith(("_loss", "_acc"))}


def logged_records(log: Path) -> tuple[list[dict], list[dict]]:
    """``(curve, valid)`` of every launch in ``OUT/train.log`` so far, in the order they were logged (a launch
    that crashed wrote no ``pretrain.json``, but its log holds the updates its last checkpoint kept)."""
    curve, valid = [], []
    if not log.is_file():
        return curve, valid
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            rec = parse_log_line(line)
            if rec and rec[0] == "train_inner" and "num_updates" in rec[1]:
                curve.append(curve_point(rec[1]))
            elif rec and rec[0] == "valid" and "valid_num_updates" in rec[1]:
                valid.append(rec[1])
    return curve, valid


def lineage(records: list[dict], key: str, upto: int) -> list[dict]:
    """The records of updates ``<= upto`` that the resumed checkpoint descends from: for each update the last
    one logged (a launch that crashed after its last save logged updates that the next launch trained again)."""
    latest = {}
    for r in records:
        if r[key] <= upto:
            latest[r[key]] = r
    return [latest[k] for k in sorted(latest)]


def run_ranks(opts: PretrainOptions, cmd: list[str], on_stats: Optional[StatsCallback] = None,
              lock: Optional[RunLock] = None) -> tuple[list[dict], list[dict], dict]:
    """Run the fairseq command (one process per rank), log to ``OUT/train.log`` and follow its JSON log;
    return ``(curve, valid, last_train)``. A failed run raises :class:`XlingError` with the log's tail; an
    interrupted launcher (Ctrl-C, SIGTERM) stops its trainers first."""
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if opts.cpu_procs > 1:
        env.setdefault("OMP_NUM_THREADS", "1")  # ranks share the cores
    env["PYTHONUNBUFFERED"] = "1"
    if "--compile-layers" in cmd or "--compile-loss" in cmd:
        env.setdefault("TORCHINDUCTOR_CACHE_DIR", str(out / COMPILE_CACHE))
    commands = rank_commands(opts, cmd, free_port())
    curve, valid, last_train = [], [], {}
    procs, logs, skipped, stopped = [], [], 0, None
    stop = GracefulStop(procs)
    try:
        with stop.handling():
            for r, c in enumerate(commands):
                log = open(out / ("train.log" if r == 0 else f"train.rank{r}.log"), "a", encoding="utf-8")
                logs.append(log)
                # the trainer's stop handler: who started it, and (rank 0) the log its pipe feeds
                rank_env = {**env, "XLING_LAUNCHER_PID": str(os.getpid()),
                            **({"XLING_TRAIN_LOG": str(out / "train.log")} if r == 0 else {})}
                procs.append(subprocess.Popen(c, stdout=subprocess.PIPE if r == 0 else log,
                                              stderr=subprocess.STDOUT, text=True, env=rank_env,
                                              preexec_fn=_child_setup))
            if stop.signal is not None:  # asked while the later ranks started
                stop.forward()
            if lock is not None:
                lock.set_trainers([p.pid for p in procs])
            for line in procs[0].stdout:
                logs[0].write(line)
                logs[0].flush()  # so the log can be followed while training runs
                if OOM_LINE in line:
                    skipped += 1
                    if skipped >= OOM_LIMIT:
                        raise oom_error(cmd, out, skipped)  # stops the trainers (below)
                m = STOP_LINE_RE.search(line)
                if m:
                    stopped = (m.group(1), int(m.group(2)))
                rec = parse_log_line(line)
                if rec is None:
                    continue
                kind, stats = rec
                if kind == "train_inner":
                    curve.append(curve_point(stats))
                    skipped = 0
                elif kind == "valid":
                    valid.append(stats)
                else:
                    last_train = stats
                if on_stats:
                    on_stats(kind, stats)
            codes = [p.wait() for p in procs]
    except KeyboardInterrupt as e:
        kill_processes(procs)
        raise KeyboardInterrupt((f"{e}; " if str(e) else "") + "stopped the trainer" + near_update(curve)
                                + resume_hint(opts)) from None
    except BaseException:
        kill_processes(procs)
        raise
    finally:
        for log in logs:
            log.close()
    if stop.signal is not None or stopped is not None:
        cause = f"received {stop.signal}" if stop.signal else f"the trainer received {stopped[0]}"
        if stopped is not None and not any(codes):
            raise KeyboardInterrupt(f"{cause}; the trainer saved checkpoint_last.pt after update {stopped[1]} and "
                                    f"stopped; re-running resumes from update {stopped[1]}")
        if any(codes):
            raise KeyboardInterrupt(f"{cause}; the trainer stopped ({exit_text(codes)})"
                                    + near_update(curve) + resume_hint(opts))
        # else it had finished its updates: the run ends as usual
    if any(codes):
        tail = (out / "train.log").read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        full = failed_save(opts.checkpoint_dir, tail)  # a full disk: one error naming the checkpoint
        if full is not None:
            raise full
        raise XlingError(f"fairseq training failed ({exit_text(codes)}):\n    "
                         + "\n    ".join(tail), file=out / "train.log", fix="read the log above" + resume_hint(opts))
    return curve, valid, last_train


def train(opts: PretrainOptions, info: DataInfo, cmd: list[str], max_updates: int, fields: dict,
          prepare: Optional[Callable[[], dict]] = None, on_stats: Optional[StatsCallback] = None) -> dict:
    """Run (or resume, or skip when finished) the checked command ``cmd``; return the summary written to
    ``OUT/pretrain.json``: the run's common keys plus the front's ``fields`` (among them ``batch_size``, sequences
    per update over all ranks, part of the run's identity). ``prepare()`` runs before
    training (not when skipping) and returns more summary keys (e.g. what ``--init`` copied). The run
    directory is locked while it trains, and a checkpoint is resumed only under the identity it was
    started with (:mod:`xling.pretrain.identity`)."""
    out = Path(opts.out)
    with run_lock(out, opts.node_rank) as lock:
        try:
            return _train_locked(opts, info, cmd, max_updates, fields, prepare, on_stats, lock)
        except OSError as e:  # the disk filled while the trainer saved (writing the log may fail first)
            raise failed_save(opts.checkpoint_dir, error=e) from None


def _train_locked(opts, info, cmd, max_updates, fields, prepare, on_stats, lock) -> dict:
    out = Path(opts.out)
    summary_path = out / "pretrain.json"
    ident = run_identity(opts, info, cmd, fields["batch_size"])
    fp = sha256_text(json.dumps(ident, sort_keys=True, default=str))  # a finished run of this identity is skipped
    changed = check_identity(opts, ident, force=opts.force_resume)
    old = read_json(summary_path, "pretrain summary") if summary_path.exists() else None
    if old and old.get("fingerprint") == fp and (out / "model" / "model.pt").exists() \
            and old.get("num_updates", 0) >= max_updates:
        old["skipped"] = True
        return old
    last = opts.checkpoint_dir / "checkpoint_last.pt"
    # what earlier launches logged, read before this launch appends to the log (a resume needs it)
    earlier_curve, earlier_valid = logged_records(out / "train.log") if last.exists() else ([], [])
    run = record_launch(opts, ident, cmd, checkpoint_updates(last) if last.exists() else 0, max_updates, changed)
    if changed and on_stats is not None:  # --force-resume says what it forced (it said nothing)
        at = run["launches"][-1]["from_update"]
        on_stats("note", {"message": f"--force-resume: checkpoint_last.pt of update {at} goes on under changed "
                                     f"options: {'; '.join(changed)} (recorded in run.json)"})
    prepared = prepare() if prepare else {}
    curve, valid, last_train = run_ranks(opts, cmd, on_stats, lock)
    if not last.exists():
        raise XlingError("fairseq finished without writing checkpoint_last.pt", file=opts.checkpoint_dir)
    num_updates = checkpoint_updates(last)
    start = run["launches"][-1]["from_update"]
    if start > 0:  # resumed: the curve of the whole run, from the summary and the log of earlier launches
        curve = lineage((old or {}).get("curve", []) + earlier_curve, "num_updates", start) + curve
        valid = lineage([v for v in (old or {}).get("valid", []) if "valid_num_updates" in v] + earlier_valid,
                        "valid_num_updates", start) + valid
    model_dir = write_model_dir(opts, info)
    summary = {
        "kind": "xling-pretrain", **fields, "fingerprint": fp, "preset": opts.preset, "langs": info.langs,
        "pairs": info.pairs, "tlm_ratio": info.tlm_ratio, "alpha": opts.alpha, **prepared,
        "num_updates": num_updates, "command": shlex.join(cmd), "curve": curve, "valid": valid,
        "last_epoch": last_train, "model_dir": str(model_dir), "skipped": False,
        # each launch's command and first update: a run resumed with --force-resume under other options
        # says which options trained which updates
        "launches": run["launches"],
    }
    write_json_atomic(summary_path, summary)
    return summary
