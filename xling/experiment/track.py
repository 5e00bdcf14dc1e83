"""Live curves of an experiment (``xling run --tensorboard DIR``): pretraining stages log through fairseq's own
TensorBoard writer (``--tensorboard-logdir DIR/STAGE``: each objective's loss, lr, tokens/s, validation, under
train_inner/, train/, valid/), checkpoint evaluation stages write each checkpoint's scores (``TASK/LANG/test``,
``TASK/zero_shot``) at its update. Needs the ``track`` extra (tensorboardX). The flags are added when a step runs,
not to the plan: turning tracking on or off re-runs nothing.
"""
from __future__ import annotations

import struct
from pathlib import Path

from xling.errors import XlingError


def check() -> None:
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise XlingError("--tensorboard needs tensorboardX", fix="pip install 'xling[track]' (or tensorboardX)") \
            from None


def step_args(argv: list[str], stage_command: list[str], tb: Path, stage: str) -> list[str]:
    """``argv`` with the tracking flags of its kind of step: pretraining -> fairseq's --tensorboard-logdir,
    the checkpoint table -> --tensorboard."""
    d = str(Path(tb) / stage)
    if stage_command == ["pretrain"] and argv[1:3] == ["-m", "xling.cli.main"]:
        return argv + ([] if "--" in argv else ["--"]) + ["--tensorboard-logdir", d]
    if argv[1:3] == ["-m", "xling.experiment.curves"]:
        return argv + ["--tensorboard", d]
    return argv


def log_checkpoints(logdir: Path, report: dict) -> None:
    """Each checkpoint's scores at its update."""
    from tensorboardX import SummaryWriter

    w = SummaryWriter(str(logdir))
    try:
        for r in report["rows"]:
            for split in ("dev", "test"):
                if r[split] is not None:
                    w.add_scalar(f"{r['task']}/{r['lang']}/{split}", r[split], r["update"])
        for task, curve in report["zero_shot"].items():
            for u, score in curve.items():
                w.add_scalar(f"{task}/zero_shot", score, int(u))
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
