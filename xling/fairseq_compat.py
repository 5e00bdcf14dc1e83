"""The one place that makes fairseq 0.12 work under current torch.

torch>=2.6 loads checkpoints with ``weights_only=True``; fairseq checkpoints pickle an
``argparse.Namespace`` (their legacy ``args``), so it must be an allowed global. Every code path
that imports fairseq or loads a checkpoint calls :func:`ensure_fairseq` first.
"""
from __future__ import annotations

import argparse
import logging
import os
import warnings

_DONE = False


def ensure_fairseq():
    """Import fairseq with torch's safe globals set up; return the fairseq module."""
    global _DONE
    import torch

    if not _DONE:
        ser = getattr(torch, "serialization", None)
        if ser is not None and hasattr(ser, "add_safe_globals"):
            ser.add_safe_globals([argparse.Namespace])
        os.environ.setdefault("HYDRA_FULL_ERROR", "1")
        warnings.filterwarnings("ignore", category=FutureWarning, module="fairseq")
        warnings.filterwarnings("ignore", category=UserWarning, module="fairseq")
        # fairseq logs a tensorboardX hint at import time for its speech tasks; silence it.
        logging.getLogger("fairseq.tasks.text_to_speech").setLevel(logging.ERROR)
        logging.getLogger("fairseq.tasks.speech_to_text").setLevel(logging.ERROR)
        _DONE = True
    import fairseq

    return fairseq
