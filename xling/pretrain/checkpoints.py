"""Reading fairseq checkpoints (embedding rows, architecture, model options, updates made) and writing the
run's model directory ``OUT/model/{model.pt,dict.txt,sentencepiece.bpe.model}``."""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from xling.errors import XlingError
from xling.io import atomic_dir
from xling.outputs import FULL_DISK
from xling.pretrain.options import PretrainOptions


def load_state(path: Path) -> dict:
    """A fairseq checkpoint's state, read with torch's safe loader. Its tensors are memory-mapped (a zip-format
    file, what torch and fairseq write): a launch asks a checkpoint_last.pt of some GB (base: ~3 GB with the
    optimizer state) for its update count and embedding rows several times, and reading only those costs
    milliseconds, not seconds and the whole file in memory; the model directory reads only the model's tensors.
    The files it maps are replaced by a rename, never rewritten in place. A legacy (pre-zip) file is read whole."""
    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    import pickle

    path = Path(path)
    if not path.is_file():
        raise XlingError("checkpoint file does not exist" if not path.exists() else "checkpoint path is not a file",
                         file=path, fix="check the path")
    try:
        try:
            state = _torch_load(path)
        except OSError as e:  # torch reads a cut zip archive as EINVAL; permissions stay OS errors
            if e.errno in (errno.EACCES, errno.EPERM, errno.ENOENT, errno.EISDIR, errno.EIO):
                raise
            raise ValueError(str(e)) from None
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, KeyError, AttributeError,
            UnicodeDecodeError, IndexError) as e:
        raise XlingError(f"cannot read the checkpoint: it is truncated or corrupt ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:200] if str(e) else 'no detail'})", file=path,
                         fix=CORRUPT_FIX.get(path.name, "restore the file from a backup or re-create it with "
                                                        "the command that wrote it")) from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise XlingError("not a fairseq checkpoint (no 'model' weights in it)", file=path,
                         fix="pass a model.pt / checkpoint written by fairseq or xling")
    return state


def _torch_load(path: Path):
    """``torch.load`` with the safe loader, tensors memory-mapped; a legacy (pre-zip) file, which cannot be mapped,
    read whole."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as e:
        if "mmap can only be used" not in str(e):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


# what to do about a damaged file, by name
CORRUPT_FIX = {
    "checkpoint_last.pt": "move it away and copy the newest checkpoint_EPOCH_UPDATES.pt or checkpoint_best.pt that "
                          "`xling inspect` reads in its place (the names of one save are hard links to one file, "
                          "damaged together), then re-run: without it the run starts over",
    "checkpoint_best.pt": "move it away and re-run: OUT/model is then written from checkpoint_last.pt",
    "model.pt": "restore the model directory (re-run `xling pretrain` / `xling import` that wrote it)",
}


def model_options(state: dict):
    """The model part of a checkpoint's config: ``cfg.model`` (a dict), else the legacy ``args`` Namespace."""
    cfg = state.get("cfg") or {}
    model_cfg = cfg.get("model") if isinstance(cfg, dict) else None
    return state.get("args") if model_cfg is None else model_cfg


def model_option(model_cfg, key: str):
    """One option of a checkpoint config section such as :func:`model_options` (dict or Namespace; None when
    absent)."""
    if isinstance(model_cfg, dict):
        return model_cfg.get(key)
    return getattr(model_cfg, key, None)


def trained_precision(state: dict) -> str:
    """``bf16``, ``fp16`` or ``fp32``: the mixed precision a checkpoint was trained in (its ``cfg.common``, else
    the legacy ``args``); fairseq keeps a different optimizer state for each (``FP16Optimizer``'s flat fp32 copy,
    or the optimizer's own)."""
    cfg = state.get("cfg")
    common = cfg.get("common") if isinstance(cfg, dict) and cfg.get("common") is not None else state.get("args")
    if model_option(common, "bf16") or model_option(common, "memory_efficient_bf16"):
        return "bf16"
    if model_option(common, "fp16") or model_option(common, "memory_efficient_fp16"):
        return "fp16"
    return "fp32"


def arch_of(state: dict) -> str:
    """The checkpoint's architecture name, ``?`` when it does not say."""
    model_cfg = model_options(state)
    return str(model_option(model_cfg, "arch") or model_option(model_cfg, "_name") or "?")


def embedding_rows(state: dict) -> int | None:
    """Rows of the checkpoint's token embedding (its vocabulary size), None when it has none."""
    emb = [v for k, v in state["model"].items() if k.endswith("embed_tokens.weight")]
    return int(emb[0].shape[0]) if emb else None


def checkpoint_facts(path: Path) -> tuple[int, str, str]:
    """Embedding rows, architecture and trained precision (:func:`trained_precision`) of a fairseq checkpoint,
    from one read."""
    state = load_state(path)
    rows = embedding_rows(state)
    if rows is None:
        raise XlingError("checkpoint has no token embedding", file=path)
    return rows, arch_of(state), trained_precision(state)


def checkpoint_vocab(path: Path) -> tuple[int, str]:
    """Embedding rows and architecture of a fairseq checkpoint."""
    return checkpoint_facts(path)[:2]


def checkpoint_updates(path: Path) -> int:
    """The number of updates a fairseq checkpoint was trained for."""
    state = load_state(path)
    hist = state.get("optimizer_history") or [{}]
    return int(hist[-1].get("num_updates", 0))


# model options that only make training faster; a model directory is for inference and fine-tuning, so they are off
# there (a fine-tuning run would otherwise compile each layer, or train under bf16 autocast, without asking)
TRAINING_SPEED_OPTIONS = {"compile_layers": False, "amp_bf16": False}


def without_training_speed_options(state: dict) -> dict:
    """``state`` with :data:`TRAINING_SPEED_OPTIONS` turned off in its model config (dict or Namespace)."""
    model_cfg = model_options(state)
    for key, off in TRAINING_SPEED_OPTIONS.items():
        if isinstance(model_cfg, dict):
            if key in model_cfg:
                model_cfg[key] = off
        elif hasattr(model_cfg, key):
            setattr(model_cfg, key, off)
    return state


def write_model_dir(opts: PretrainOptions, info=None) -> Path:
    """``OUT/model``: the best (else last) checkpoint without optimizer state or training-speed options,
    dict.txt, spm model."""
    import torch

    ck = opts.checkpoint_dir
    src = ck / "checkpoint_best.pt" if (ck / "checkpoint_best.pt").exists() else ck / "checkpoint_last.pt"
    state = without_training_speed_options(load_state(src))
    state.pop("last_optimizer_state", None)
    dest = Path(opts.out) / "model"
    with atomic_dir(dest, command="pretrain") as tmp:
        torch.save(state, tmp / "model.pt")
        shutil.copyfile(Path(opts.data) / "dict.txt", tmp / "dict.txt")
        if (Path(opts.data) / "spm.model").exists():
            shutil.copyfile(Path(opts.data) / "spm.model", tmp / "sentencepiece.bpe.model")
    return dest


# how a trainer's log says that a save did not fit: Python's ENOSPC/EDQUOT, torch's zip writer's own words
FULL_DISK_LOG = {"No space left on device": errno.ENOSPC, "[Errno 28]": errno.ENOSPC, "file write failed": errno.ENOSPC,
                 "Disk quota exceeded": errno.EDQUOT, "[Errno 122]": errno.EDQUOT}


def failed_save(checkpoint_dir: Path, log_tail: list[str] = (), error: OSError | None = None) -> OSError | None:
    """After a failed training run: remove the ``*.pt.tmp`` files of saves that did not finish (fairseq writes a
    checkpoint to NAME.tmp, then renames it; on a full disk they stayed and kept it full). Return the full-disk
    error to report, naming the checkpoint that did not fit, when ``error`` is one or the trainer's ``log_tail``
    says so; else ``error`` itself (None without one)."""
    partial = sorted(checkpoint_dir.glob("*.pt.tmp")) if checkpoint_dir.is_dir() else []
    for f in partial:
        f.unlink(missing_ok=True)
    code = error.errno if error is not None and error.errno in FULL_DISK else \
        next((c for key, c in FULL_DISK_LOG.items() if any(key in line for line in log_tail)), None)
    if code is None:
        return error
    named = partial[0].with_suffix("") if partial else (error.filename if error is not None else None)
    return OSError(code, os.strerror(code), str(named or checkpoint_dir))
