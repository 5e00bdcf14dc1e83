"""Data-parallel fine-tuning on torch's engine: ``torchrun`` (``python -m torch.distributed.run``) starts
one worker process per GPU (:mod:`xling.xglue.worker`), each joins the process group (NCCL on GPUs,
gloo on CPUs) and trains a ``DistributedDataParallel`` copy of the network on its share of every
global batch (:mod:`xling.xglue.batching`). Process 0 alone selects on the dev set, predicts and
writes; the others wait for the next epoch or seed.

``xling eval xglue --gpus N`` launches N processes on this machine (``--standalone`` rendezvous).
Several machines: run the same command on each with ``--nodes M --node-rank K --master-addr HOST``
(torchrun's static rendezvous); the output is written on node 0.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from xling.errors import XlingError

# dev selection and prediction run on process 0 while the others wait in a collective: allow them long
TIMEOUT = timedelta(hours=6)


def world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a data-parallel run."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return world()[0] == 0


def under_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "LOCAL_RANK" in os.environ


def init(device) -> None:
    """Join the process group torchrun set up in the environment (NCCL for GPUs, gloo for CPUs)."""
    import torch
    import torch.distributed as dist

    if dist.is_initialized() or not under_torchrun():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT,
                            device_id=device if device.type == "cuda" else None)


def finish() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    import torch.distributed as dist

    if world()[1] > 1:
        dist.barrier()


def broadcast(obj):
    """``obj`` of process 0, on every process."""
    import torch.distributed as dist

    if world()[1] == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap(module, device):
    """``module`` as a DDP replica (unchanged outside a data-parallel run). Unused parameters are
    allowed: fairseq encoders carry an LM head that fine-tuning with ``features_only`` never calls."""
    if world()[1] == 1:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None,
                                   find_unused_parameters=True)


def config_dict(cfg) -> dict:
    """An :class:`xling.xglue.run.EvalConfig` as JSON-able data (read back by :mod:`xling.xglue.worker`)."""
    import dataclasses

    d = dataclasses.asdict(cfg)
    for k in ("model", "data", "out"):
        d[k] = str(d[k])
    return d


def launch(cfg_dict: dict, nproc: int, nnodes: int = 1, node_rank: int = 0, master_addr: str | None = None,
           master_port: int = 29500) -> dict | None:
    """Run the evaluation ``cfg_dict`` (:func:`config_dict`) in ``nproc`` worker
    processes per node under torchrun; return process 0's result (None on nodes other than 0)."""
    with tempfile.TemporaryDirectory(prefix="xling-ddp-") as tmp:
        spec, result = Path(tmp) / "config.json", Path(tmp) / "result.json"
        spec.write_text(json.dumps(cfg_dict), encoding="utf-8")
        rdzv = ["--standalone"] if nnodes == 1 else [
            "--nnodes", str(nnodes), "--node-rank", str(node_rank), "--master-addr", str(master_addr),
            "--master-port", str(master_port)]
        cmd = [sys.executable, "-m", "torch.distributed.run", *rdzv, "--nproc-per-node", str(nproc),
               "-m", "xling.xglue.worker", str(spec), str(result)]
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        rc = subprocess.run(cmd, env=env).returncode
        if rc != 0 and result.with_suffix(".error").is_file():
            raise XlingError(**json.loads(result.with_suffix(".error").read_text(encoding="utf-8")))
        if rc != 0:
            raise XlingError(f"the data-parallel run failed (torchrun exit {rc}); its workers' messages are above",
                             fix="fix the cause shown above and re-run (finished tasks are skipped)")
        return json.loads(result.read_text(encoding="utf-8")) if result.is_file() else None
