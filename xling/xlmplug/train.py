"""``python -m xling.xlmplug.train ARGS``: fairseq-train with the plugin registered.

Identical to ``fairseq-train`` (same arguments, fairseq's own ``main``) except that

* torch's safe globals are set up for fairseq checkpoints (:func:`xling.fairseq_compat.ensure_fairseq`)
  and ``xling.xlmplug`` is imported, so no ``--user-dir`` is needed and checkpoints record no path;
* ``--bf16`` means bfloat16 on the GPU (or CPU) it runs on: fairseq 0.12's parser turns ``--bf16`` into
  ``--tpu`` (``fairseq/options.py``), and its trainer then asks for ``torch_xla``. :func:`parse_args` puts
  ``tpu`` back to what the command line says, so fairseq's own bf16 path (bf16 model, fp32 master
  weights in ``FP16Optimizer``) runs on CUDA or CPU; ``--bf16 --tpu`` still asks for TPUs;
* checkpoint copies are atomic and, where the file system allows, hard links (:func:`atomic_checkpoint_copies`):
  fairseq writes a save's first file through a temporary file and a rename, but copies it to the others
  (``checkpoint_last.pt``, ``checkpoint_best.pt``) in place, so a trainer killed during a copy left a truncated
  ``checkpoint_last.pt`` that the next launch could not resume; and each copy wrote the whole checkpoint again
  (base: ~3 GB per save, while the other ranks wait) and kept it twice on disk;
* every rank of a multi-rank run can resume: fairseq reads a checkpoint on rank 0 and sends its non-tensor part
  (config, placeholders) to the others pickled, and reads it back with ``torch.load``, whose ``weights_only``
  default (torch>=2.6) refuses omegaconf's ``DictConfig``, so resuming on several GPUs (or CPU processes) failed
  with an ``UnpicklingError`` on rank 1 (:func:`trusted_rank_broadcast`);
* a run resumed on another number of ranks goes on where the data stopped, neither skipping nor repeating it
  (:mod:`xling.xlmplug.resume`);
* a signal (SIGTERM, SIGINT, SIGUSR1) stops training after the current update with a checkpoint, on every rank
  at the same update (:mod:`xling.xlmplug.stop`);
* the data-loader workers of a trainer that was killed do not print a traceback of their broken connection
  into the log whose tail is the launcher's error message (:mod:`xling.xlmplug.workers`).
* fairseq's ``import wandb`` (a few tenths of a second per process) happens only in a trainer given
  ``--wandb-project`` (:mod:`xling.xlmplug.wandb_import`).
"""
from __future__ import annotations

import shutil
import sys
from typing import Optional

from xling.xlmplug import resume, stop, wandb_import, workers


def asked_for_tpu(argv: list[str]) -> bool:
    """Whether the command line itself names ``--tpu`` (not fairseq's bf16 rewrite)."""
    return any(a == "--tpu" for a in argv)


def parse_args(argv: Optional[list[str]] = None):
    """fairseq-train's argument namespace for ``argv`` (default ``sys.argv[1:]``), with ``tpu`` as asked."""
    from fairseq import options

    argv = sys.argv[1:] if argv is None else list(argv)
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    if getattr(args, "bf16", False) and not asked_for_tpu(argv):
        args.tpu = False
    return args


def atomic_copy(src: str, dst: str) -> bool:
    """Put ``src`` at ``dst`` through a temporary name beside it and a rename (:func:`xling.io.atomic_path`):
    ``dst`` is the old file or the whole new one. The temporary name is a hard link to ``src`` where the file
    system has them (no bytes copied: fairseq never writes a checkpoint in place, it writes a new file and renames
    it, so linked names cannot change each other), else a copy."""
    import os

    from xling.io import atomic_path

    with atomic_path(dst) as tmp:
        os.unlink(tmp)
        try:
            os.link(src, tmp)
        except OSError:  # another device, or a file system without hard links
            shutil.copyfile(src, tmp)
    return True


def atomic_checkpoint_copies() -> None:
    """Make fairseq's ``PathManager.copy`` (how a save reaches its second and later files) atomic for local
    paths; remote ones (``scheme://``, ioPath's) keep fairseq's copy."""
    from fairseq.file_io import PathManager

    original = PathManager.copy
    if getattr(original, "xling_atomic", False):
        return

    def copy(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
        if "://" in str(src_path) or "://" in str(dst_path):
            return original(src_path, dst_path, overwrite)
        return atomic_copy(src_path, dst_path)

    copy.xling_atomic = True
    PathManager.copy = staticmethod(copy)


def broadcast_object_slow(obj, src_rank: int, group, dist_device):
    """fairseq's ``distributed.utils._broadcast_object_slow`` (same arguments) through torch's
    ``broadcast_object_list``, which unpickles plainly: the bytes are what rank ``src_rank`` of this very run
    pickled, not a file from elsewhere, so ``weights_only`` guards nothing here."""
    import torch.distributed as dist

    objs = [obj]
    dist.broadcast_object_list(objs, src=src_rank, group=group, device=dist_device)
    return objs[0]


def trusted_rank_broadcast() -> None:
    """Make fairseq's rank-to-rank object broadcast (checkpoint resume, sharded data) use
    :func:`broadcast_object_slow`."""
    from fairseq.distributed import utils as distributed_utils

    distributed_utils._broadcast_object_slow = broadcast_object_slow


def main(argv: Optional[list[str]] = None):
    import torch

    import xling.xlmplug  # noqa: F401  (registers tasks, criteria, models, optimizers)
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.distributed import utils as distributed_utils
    from fairseq_cli.train import main as train_main

    args = parse_args(argv)
    if args.wandb_project:
        wandb_import.bind()
    stop.install()
    cfg = convert_namespace_to_omegaconf(args)
    if cfg.common.use_plasma_view:
        from fairseq.data.plasma_utils import PlasmaStore

        server = PlasmaStore(path=cfg.common.plasma_path)  # noqa: F841  (alive while training, as in fairseq-train)
    if args.wandb_project:
        train_main = wandb_import.train_then_finish
    if args.profile:  # what fairseq_cli.train.cli_main does
        with torch.cuda.profiler.profile(), torch.autograd.profiler.emit_nvtx():
            distributed_utils.call_main(cfg, train_main)
    else:
        distributed_utils.call_main(cfg, train_main)


# On import, not in main(): with several GPUs fairseq's launcher spawns a process per GPU, and each imports this
# module (as ``__mp_main__``) without running main(); rank 0, which saves, is one of them.
atomic_checkpoint_copies()
trusted_rank_broadcast()
resume.install()
workers.install()
if wandb_import.asked(sys.argv):
    wandb_import.bind()
if __name__ == "__mp_main__":  # a spawned rank: it trains, so it stops on a signal too
    stop.install()

if __name__ == "__main__":
    main()
