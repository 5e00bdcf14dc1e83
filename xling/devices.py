"""``--device auto|cpu|cuda[:N]``: the one place a command's device name becomes a ``torch.device``
(fine-tuning in :mod:`xling.xglue`, encoding in :mod:`xling.retrieval`)."""
from __future__ import annotations

import os

from xling.errors import XlingError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str, allow_index: bool = False):
    """The ``torch.device`` for ``--device NAME`` (auto: the GPU when one is visible). ``cuda:N`` only with
    ``allow_index``; a plain ``cuda`` is the GPU of this process's ``LOCAL_RANK`` (torchrun), else GPU 0."""
    import torch

    base, _, index = name.partition(":")
    if base not in DEVICES or (index and not (allow_index and base == "cuda" and index.isdigit())):
        known = ", ".join(DEVICES) + (", cuda:N" if allow_index else "")
        raise XlingError(f"--device {name!r} is not one of {known}",
                         fix="--device auto, cpu or cuda" + (" (or cuda:N)" if allow_index else ""))
    if base == "auto":
        base = "cuda" if torch.cuda.is_available() else "cpu"
    if base == "cuda":
        if not torch.cuda.is_available():
            raise XlingError(f"--device {name}: no CUDA GPU is visible to torch "
                             f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'})",
                             fix="run on a GPU machine with a CUDA build of torch, check CUDA_VISIBLE_DEVICES, "
                                 "or use --device cpu (or auto)")
        return torch.device("cuda", int(index) if index else int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")
