"""Stopping a training run on a signal with a checkpoint of the update it stopped after.

A scheduler ends a job with SIGTERM (Slurm at the time limit or on preemption, then SIGKILL some seconds later;
``--signal=USR1@120`` sends SIGUSR1 ahead of it), a person with Ctrl-C or ``kill``. fairseq 0.12 has no handler:
the trainer died and every update since the last save was lost (at the presets' ``--save-interval 2000``, up to
2000 updates: about a quarter of an hour of GPU time at base on one GPU). Here the first SIGTERM, SIGINT or SIGUSR1 only asks for a stop; the trainer finishes the
update it is in, saves ``checkpoint_last.pt`` (no validation: a scheduler's grace period is short) and exits 0.
A second signal changes nothing (SIGKILL still stops it at once; its checkpoint copies are atomic).

Every rank must stop after the same update, or data-parallel training hangs in its next all-reduce; a signal
reaches the ranks at different moments. So the request travels with the statistics fairseq already sums over
the ranks after every update: each task's ``train_step`` adds :data:`STOP_KEY` (1 once asked, else 0) to its
logging output, and ``reduce_metrics``, which sees the sum on every rank at the same update, marks the stop as
agreed. No extra communication or host sync. fairseq's ``validate_and_save`` is wrapped (:func:`install`) to save
and stop once it is agreed, before ``--max-update`` (at it, fairseq's own final validation and save run).
"""
from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import signal
from typing import Optional

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
STOP_KEY = "xling_stop"
# the line the trainer logs when it stopped (the launcher reads it from rank 0's output: launch.STOP_LINE_RE)
STOP_LINE = "xling: stopped on {signal} after update {update}: checkpoint_last.pt saved"


class StopState:
    """This process's view: the signal that asked for a stop (None: none yet), and whether all ranks know."""

    requested: Optional[str] = None
    agreed: bool = False


STATE = StopState()


# set by `xling pretrain` for its trainers: its pid, and (rank 0) the log its output pipe goes to
LAUNCHER_PID_ENV = "XLING_LAUNCHER_PID"
TRAIN_LOG_ENV = "XLING_TRAIN_LOG"


def request_stop(signum, frame=None) -> None:
    """Signal handler: remember the first stop request. When the launcher is gone (killed: the kernel's
    parent-death signal brought this), see to it that the stop can still happen (:func:`outlive_launcher`)."""
    if STATE.requested is None:
        STATE.requested = signal.Signals(signum).name
    if launcher_gone():
        outlive_launcher()


def launcher_gone() -> bool:
    """Whether the `xling pretrain` that started this trainer has died (False outside one). A dead launcher may
    still be a zombie, not yet reaped, so a signal-0 probe alone would find it alive."""
    pid = os.environ.get(LAUNCHER_PID_ENV, "")
    if not pid.isdigit() or os.getppid() == int(pid):  # our parent is the launcher, alive
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] in ("Z", "X")  # zombie or dying
    except FileNotFoundError:
        return True
    except OSError:  # no /proc: a signal-0 probe
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False


def outlive_launcher() -> None:
    """The launcher read this trainer's output through a pipe, now broken: logging's write errors are swallowed,
    so every line from here on, the stop line among them, would be lost. Rank 0's output goes to ``OUT/train.log``
    directly from here on, and the trainer's own processes (fairseq's spawned GPU ranks, which no parent-death
    signal reaches) get the stop request."""
    log = os.environ.pop(TRAIN_LOG_ENV, None)  # once
    if log:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    for child in multiprocessing.active_children():
        with contextlib.suppress(OSError):
            os.kill(child.pid, signal.SIGTERM)


class StopOnSignalMixin:
    """For a fairseq task (put before the fairseq task class among the bases): carries this rank's stop request
    in the logging output and reads the ranks' sum."""

    def train_step(self, *args, **kwargs):
        loss, sample_size, logging_output = super().train_step(*args, **kwargs)
        # always present: fairseq sums the keys of the first logging output on every rank, so they must match
        logging_output[STOP_KEY] = 0 if STATE.requested is None else 1
        return loss, sample_size, logging_output

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        if sum(int(log.get(STOP_KEY, 0)) for log in logging_outputs) > 0:
            STATE.agreed = True


def install() -> None:
    """In a trainer process: the stop handlers, and fairseq's ``validate_and_save`` that saves and stops once the
    stop is agreed (idempotent)."""
    import fairseq_cli.train as fairseq_train
    from fairseq import checkpoint_utils

    for sig in STOP_SIGNALS:
        signal.signal(sig, request_stop)
    original = fairseq_train.validate_and_save
    if getattr(original, "xling_stop", False):
        return

    def validate_and_save(cfg, trainer, task, epoch_itr, valid_subsets, end_of_epoch):
        updates = trainer.get_num_updates()
        if not STATE.agreed or updates >= (cfg.optimization.max_update or math.inf):
            return original(cfg, trainer, task, epoch_itr, valid_subsets, end_of_epoch)
        checkpoint_utils.save_checkpoint(cfg.checkpoint, trainer, epoch_itr, None)
        logger.warning(STOP_LINE.format(signal=STATE.requested or "another rank's stop request", update=updates))
        return [None], True

    validate_and_save.xling_stop = True
    fairseq_train.validate_and_save = validate_and_save
