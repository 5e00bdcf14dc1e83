"""W&B tracking of an experiment (``xling run --wandb PROJECT``), offline unless asked otherwise: compute nodes rarely
reach the internet. Each tracked step runs with wandb's own environment variables (:func:`environment`):
``WANDB_MODE=offline`` unless the environment sets ``WANDB_MODE`` (``online`` syncs live), runs under
``EXPERIMENT_DIR/wandb/`` (``WANDB_DIR``; ``wandb sync DIR/wandb/offline-run-*`` uploads them later), one group per
experiment (``WANDB_RUN_GROUP``), one run per stage named ``EXPERIMENT/STAGE`` (job type: the stage). Pretraining
logs through fairseq's own ``--wandb-project`` (its steps: updates); a checkpoint evaluation stage logs each
checkpoint's scores at its update (:func:`log_checkpoints`).
"""
from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path
from typing import Optional

from xling.errors import XlingError


def check(project: str) -> None:
    """``project`` is a W&B project name and wandb is installed."""
    if not project.strip() or len(project) > 128 or any(c in project for c in "/\\#?%:"):
        raise XlingError(f"--wandb {project!r} is not a W&B project name",
                         fix="give a name of 1 to 128 characters without / \\ # ? % :")
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise XlingError("--wandb needs wandb", fix="pip install 'xling[track]' (or wandb)") from None


def environment(exp_name: str, exp_dir: Path, stage: str, base: Optional[dict] = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the W&B settings of a stage's run."""
    env = dict(os.environ if base is None else base)
    env.setdefault("WANDB_MODE", "offline")
    if env["WANDB_MODE"] != "online":
        env.setdefault("WANDB_ERROR_REPORTING", "false")  # offline: nothing may try to reach the internet
    env.update({"WANDB_DIR": str(Path(exp_dir).absolute()), "WANDB_RUN_GROUP": exp_name, "WANDB_JOB_TYPE": stage,
                "WANDB_NAME": f"{exp_name}/{stage}"})
    return env


def log_checkpoints(project: str, scalars: dict[int, dict[str, float]]) -> None:
    """Each checkpoint's scores (:func:`xling.experiment.curves.checkpoint_scalars`) at its update, as one run."""
    import wandb

    run = wandb.init(project=project)  # mode, directory, name and group: the environment xling run gives
    try:
        for u, scores in scalars.items():
            run.log(scores, step=u)
    finally:
        run.finish()


HEADER = struct.Struct("<4sHB")  # ":W&B", magic 0xBEE1, version 0
CHUNK = struct.Struct("<IHB")  # crc32c, length, type (1 full, 2 first, 3 middle, 4 last)
BLOCK = 32768


def records(path: Path):
    """The protobuf records (``wandb.proto.wandb_internal_pb2.Record``) of a run's ``.wandb`` file, a LevelDB log:
    32 KiB blocks of chunks, a record split over blocks as first/middle/last chunks; a block's tail too short for
    a chunk header is padding. Read by hand: wandb 0.31 reads these files only in its Go core (no Python reader).
    A record still being written at the end is left out."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    ident, magic, _ = HEADER.unpack_from(data)
    if ident != b":W&B" or magic != 0xBEE1:
        raise XlingError("not a W&B run file", file=path, fix="pass a run's run-ID.wandb file")
    i, parts = HEADER.size, []
    while i + CHUNK.size <= len(data):
        room = BLOCK - i % BLOCK
        if room < CHUNK.size:
            i += room
            continue
        _, n, kind = CHUNK.unpack_from(data, i)
        if kind == 0:  # zeros up to the block's end
            i += room
            continue
        if i + CHUNK.size + n > len(data):  # a chunk still being written
            break
        parts.append(data[i + CHUNK.size:i + CHUNK.size + n])
        i += CHUNK.size + n
        if kind in (1, 4):
            yield pb.Record.FromString(b"".join(parts))
            parts = []


def read_run(path: Path) -> dict:
    """A run file's ``{"project", "name", "group", "job_type", "history": {key: [(step, value), ...]},
    "ended": whether its exit record is written}``."""
    out: dict = {"history": {}, "ended": False}
    for r in records(path):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            out.update(project=r.run.project, name=r.run.display_name, group=r.run.run_group,
                       job_type=r.run.job_type)
        elif kind == "history":
            step = r.history.step.num
            for item in r.history.item:
                key = item.key or "/".join(item.nested_key)
                if not key.startswith("_"):
                    out["history"].setdefault(key, []).append((step, json.loads(item.value_json)))
        elif kind == "exit":
            out["ended"] = True
    return out


def runs(exp_dir: Path, wait: float = 120.0) -> list[dict]:
    """Every run under ``EXPERIMENT_DIR/wandb/`` (:func:`read_run`, with its ``file``), oldest first. wandb's core
    service writes a run's file on its own time: ``run.finish()`` (or the process's exit) returns before the file
    holds every record (seen: 325 of 400 rows under load). So a run without its exit record yet is read again,
    for up to ``wait`` seconds; after that it is returned as it is (``ended`` False)."""
    end = time.monotonic() + wait
    while True:
        out = [{**read_run(f), "file": f} for f in sorted(Path(exp_dir).glob("wandb/*run-*/run-*.wandb"))]
        if all(r["ended"] for r in out) or time.monotonic() >= end:
            return out
        time.sleep(0.2)
