"""Where and in which precision the XGLUE fine-tuning runs: ``--device auto|cpu|cuda`` and ``--bf16`` /
``--fp16``, resolved once and used by :func:`xling.xglue.finetune.train` and
:meth:`xling.xglue.runner.Runner.batches` for every task family.

Mixed precision is torch's autocast (weights stay fp32, matmuls run in bf16/fp16); fp16 adds torch's
``GradScaler`` (dynamic loss scaling), bf16 needs none (fp32's exponent range). fp16 autocast on a CPU
is refused: torch's CPU kernels have no fast fp16 path and there is no loss scaling for it; bf16 is
the CPU's mixed precision. In a data-parallel run each process uses the GPU of its ``LOCAL_RANK``.
"""
from __future__ import annotations

import contextlib
import os

from xling.devices import DEVICES, resolve_device  # noqa: F401  (re-exported)
from xling.errors import XlingError

PRECISIONS = ("fp32", "bf16", "fp16")


def check_precision(precision: str, device) -> None:
    """Refuse a precision the device cannot run (before anything is loaded or written)."""
    import torch

    if precision not in PRECISIONS:
        raise XlingError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise XlingError("--fp16 needs a CUDA GPU: torch has no fp16 autocast with loss scaling on the CPU",
                         fix="use --bf16 for mixed precision on the CPU, or run --fp16 with --device cuda")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise XlingError(f"--bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support",
                         fix="use --fp16 on this GPU (pre-Ampere), or fp32 (neither flag)")


def autocast(precision: str, device):
    """The autocast context of ``precision`` on ``device`` (a no-op context for fp32)."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(precision: str, device):
    """torch's dynamic loss scaler for fp16 (disabled, a pass-through, otherwise)."""
    import torch

    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def to_device(batch, device):
    """``batch`` with every tensor (in nested dicts / lists / tuples) moved to ``device``; pinned host
    tensors are copied asynchronously."""
    import torch

    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=batch.is_pinned()) if batch.device != device else batch
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def default_workers(device) -> int:
    """DataLoader worker processes: none on the CPU (they would compete with the compute for the same
    cores; batches are formed from pre-tokenized items), a few on a GPU so that the next batches are
    padded and pinned while the GPU computes."""
    if device.type != "cuda":
        return 0
    per_proc = (os.cpu_count() or 2) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    return max(1, min(4, per_proc - 1))
