"""Live curves of an experiment: ``xling run --tensorboard DIR`` and ``--wandb PROJECT`` (:mod:`track_wandb`).
Pretraining stages log through fairseq's own writers (``--tensorboard-logdir DIR/STAGE``, ``--wandb-project``: each
objective's loss, lr, tokens/s, validation, under train_inner/, train/, valid/), checkpoint evaluation stages write
each checkpoint's scores (``TASK/LANG/test``, ``TASK/zero_shot``) at its update. Needs the ``track`` extra
(tensorboardX, wandb). The flags are added when a step runs, not to the plan: turning tracking on or off re-runs
nothing.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from xling.errors import XlingError


def check() -> None:
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise XlingError("--tensorboard needs tensorboardX", fix="pip install 'xling[track]' (or tensorboardX)") \
            from None


@dataclass(frozen=True)
class Tracking:
    """What ``xling run`` tracks: a TensorBoard log directory (one folder per stage), a W&B project."""
    tensorboard: Optional[Path] = None
    wandb: Optional[str] = None

    @staticmethod
    def kind(argv: list[str], stage_command: list[str]) -> Optional[str]:
        """``"pretrain"`` (a pretraining step), ``"table"`` (a checkpoint stage's table) or None (not tracked)."""
        if stage_command == ["pretrain"] and argv[1:3] == ["-m", "xling.cli.main"]:
            return "pretrain"
        return "table" if argv[1:3] == ["-m", "xling.experiment.curves"] else None

    def step_args(self, argv: list[str], stage_command: list[str], stage: str) -> list[str]:
        """``argv`` with the tracking flags of its kind of step: pretraining -> fairseq's --tensorboard-logdir and
        --wandb-project, the checkpoint table -> --tensorboard and --wandb."""
        kind = self.kind(argv, stage_command)
        extra = []
        if kind == "pretrain":
            if self.tensorboard is not None:
                extra += ["--tensorboard-logdir", str(Path(self.tensorboard) / stage)]
            if self.wandb is not None:
                extra += ["--wandb-project", self.wandb]
            return argv + ([] if "--" in argv or not extra else ["--"]) + extra
        if kind == "table":
            if self.tensorboard is not None:
                extra += ["--tensorboard", str(Path(self.tensorboard) / stage)]
            if self.wandb is not None:
                extra += ["--wandb", self.wandb]
        return argv + extra

    def step_env(self, argv: list[str], stage_command: list[str], exp_name: str, exp_dir: Path,
                 stage: str) -> Optional[dict[str, str]]:
        """The environment of a step that logs to W&B (:func:`track_wandb.environment`), else None (inherited)."""
        if self.wandb is None or self.kind(argv, stage_command) is None:
            return None
        from xling.experiment.track_wandb import environment

        return environment(exp_name, exp_dir, stage)

    def run_flags(self) -> list[str]:
        """The flags that track the same way in ``xling run --only`` (a SLURM job's command)."""
        out = [] if self.tensorboard is None else ["--tensorboard", str(Path(self.tensorboard).absolute())]
        return out + ([] if self.wandb is None else ["--wandb", self.wandb])


def log_checkpoints(logdir: Path, scalars: dict[int, dict[str, float]]) -> None:
    """Each checkpoint's scores at its update (:func:`xling.experiment.curves.checkpoint_scalars`)."""
    from tensorboardX import SummaryWriter

    w = SummaryWriter(str(logdir))
    try:
        for u, scores in scalars.items():
            for tag, value in scores.items():
                w.add_scalar(tag, value, u)
    finally:
        w.close()


def read_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` of every event file under ``logdir`` (TFRecord framing: length, crc,
    record, crc), read with tensorboardX's protobuf classes."""
    from tensorboardX.proto.event_pb2 import Event

    out: dict[str, list] = {}
    for f in sorted(Path(logdir).rglob("events.out.tfevents.*")):
        data = f.read_bytes()
        i = 0
        while i + 12 <= len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            ev = Event.FromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            prefix = f.parent.relative_to(logdir).as_posix()
            for v in ev.summary.value:
                tag = v.tag if prefix == "." else f"{prefix}/{v.tag}"
                out.setdefault(tag, []).append((ev.step, v.simple_value))
    return out
