"""The parts of the fairseq training command that the encoder and the encoder-decoder share: the program,
the optimizer/schedule/batching/logging flags of a preset, and the validation, precision, device,
data-parallel and ``--init`` flags. Each front module (:mod:`~xling.pretrain.encoder`,
:mod:`~xling.pretrain.seq2seq`) adds its task, criterion and architecture."""
from __future__ import annotations

import sys
from pathlib import Path

from xling.pretrain.checks import visible_gpus
from xling.pretrain.batching import Batching, plan_batching
from xling.pretrain.options import GPU_COMPILE_ARGS, DataInfo, PretrainOptions

INIT_FLAG = "--finetune-from-model"


def train_program(opts: PretrainOptions, info: DataInfo) -> list[str]:
    """``python -m xling.xlmplug.train DATA``: fairseq-train with the plugin imported (a sharded
    ``prep-data`` output is passed as ``DATA/shard0:DATA/shard1:...``, one shard an epoch)."""
    from xling.corpus import fairseq_data_arg

    return [sys.executable, "-m", "xling.xlmplug.train", fairseq_data_arg(Path(opts.data).resolve(), info.manifest)]


def run_gpus(opts: PretrainOptions) -> int:
    """GPUs per node the run uses: ``--gpus``, else 1 when one is visible, else 0 (CPU)."""
    return opts.gpus if opts.gpus is not None else min(1, visible_gpus())


def gpu_precision() -> str:
    """``bf16`` on GPUs that compute in it (compute capability >= 8; assumed when no GPU is visible here,
    e.g. a dry run for another machine), else ``fp16``."""
    import torch

    if not torch.cuda.is_available():
        return "bf16"
    return "bf16" if torch.cuda.get_device_capability(0)[0] >= 8 else "fp16"


def precision(opts: PretrainOptions) -> str | None:
    """The run's mixed precision: the user's (``fp32``: none), else the GPU default (none on CPU)."""
    if opts.precision == "fp32":
        return None
    return opts.precision or (gpu_precision() if run_gpus(opts) else None)


def batching(opts: PretrainOptions, p: dict) -> Batching:
    """How the run's updates are split over its devices (:mod:`xling.pretrain.batching`)."""
    return plan_batching(opts, p, run_gpus(opts))


def device_notes(opts: PretrainOptions, arch: str = "encoder") -> list[str]:
    """What the preset of ``arch`` (encoder, seq2seq) chose for the devices (``--dry-run`` prints it): the batch
    and its split, and on GPUs precision, loader workers and compilation."""
    from xling.pretrain.options import PRESETS, SEQ2SEQ_PRESETS

    p = (SEQ2SEQ_PRESETS if arch == "seq2seq" else PRESETS)[opts.preset]
    b = batching(opts, p)
    gpus = run_gpus(opts)
    notes = [b.describe("GPU" if gpus else "process")]
    if not gpus:
        return notes
    if gpus > visible_gpus():
        notes.append(f"{gpus} GPUs per node asked for, {visible_gpus()} visible here: this command is for another "
                     f"machine (training checks its GPUs)")
    notes.append(f"GPU defaults of preset {opts.preset}: --num-workers {b.workers} (data-loader workers per GPU)")
    if not opts.precision:
        notes.append(f"precision --{gpu_precision()} (GPU default; bf16 needs compute capability >= 8)")
    if arch == "encoder" and compiles(opts):
        notes.append(f"torch.compile: {' '.join(GPU_COMPILE_ARGS)} (GPU default; --no-compile runs eager)")
    return notes


def compiles(opts: PretrainOptions) -> bool:
    """Whether an encoder run compiles its layers and loss: ``--compile``/``--no-compile``, else on GPUs."""
    return opts.compile if opts.compile is not None else run_gpus(opts) > 0


def trainer_args(opts: PretrainOptions, p: dict, min_workers: int = 0) -> list[str]:
    """fairseq-train's optimizer, schedule, batching (:func:`batching`), logging and saving flags of a preset
    ``p`` (shared by the encoder and the encoder-decoder commands). A run shorter than the preset's log interval
    logs ten times.
    The optimizer is ``xling_adamw`` (fairseq's ``adam`` in torch's fused/foreach AdamW kernels; ``-- --optimizer
    adam`` runs fairseq's own). ``min_workers``: data-loader worker processes also on CPU (the encoder-decoder's
    noise draws from torch's generator, which a loader thread in the trainer's process would share with dropout)."""
    max_updates = opts.max_updates or p["max_updates"]
    total = opts.total_updates or max_updates
    b = batching(opts, p)
    return [
        "--optimizer", "xling_adamw", "--adam-betas", "(0.9,0.98)", "--adam-eps", "1e-6", "--clip-norm", "1.0",
        "--weight-decay", str(p["weight_decay"]),
        "--lr-scheduler", "polynomial_decay", "--lr", str(opts.lr or p["lr"]),
        "--warmup-updates", str(min(p["warmup"], max(1, total // 10))),
        "--total-num-update", str(total), "--max-update", str(max_updates),
        *b.args(),
        "--dropout", "0.1", "--attention-dropout", "0.1",
        "--save-dir", str(opts.checkpoint_dir.resolve()), "--no-epoch-checkpoints", *save_args(opts, p),
        "--log-format", "json",
        "--log-interval", str(opts.log_interval or min(p["log_interval"], max(1, max_updates // 10))),
        "--seed", str(opts.seed), "--num-workers", str(max(b.workers, min_workers)),
        "--skip-invalid-size-inputs-valid-test",
    ]


def save_args(opts: PretrainOptions, p: dict) -> list[str]:
    """Mid-epoch checkpoints every ``--save-interval`` updates (the preset's by default; 0: none): fairseq
    validates, writes ``checkpoint_EPOCH_UPDATES.pt`` and puts it at ``checkpoint_last.pt`` too (both atomically;
    the second name a hard link where the file system has them, through :mod:`xling.xlmplug.train`); it keeps the
    newest of these files only (``--keep-interval-updates 1``). An epoch-end save does not count."""
    every = p["save_interval"] if opts.save_interval is None else opts.save_interval
    return ["--save-interval-updates", str(every), "--keep-interval-updates", "1"] if every > 0 else []


def launch_args(opts: PretrainOptions, validate: bool, legacy_ddp: bool = False) -> list[str]:
    """Validation, precision, device and data-parallel flags, ``--init`` weights, then the user's extra
    arguments (last, so that they override). ``legacy_ddp``: all-reduce after backward on GPUs too."""
    cmd = [] if validate else ["--disable-validation"]
    if precision(opts):
        cmd += [f"--{precision(opts)}"]
    gpus = run_gpus(opts)
    if gpus == 0:
        cmd += ["--cpu"]
    world = max(gpus, 1) * opts.nodes if gpus else opts.cpu_procs
    if world > 1:
        cmd += ["--distributed-world-size", str(world),
                "--ddp-backend", "no_c10d" if not gpus or legacy_ddp else "pytorch_ddp"]
        if opts.nodes > 1:
            addr, _, port = (opts.master or "").partition(":")
            cmd += ["--distributed-init-method", f"tcp://{addr}:{port or 29500}",
                    "--distributed-rank", str(opts.node_rank * gpus)]
    if opts.init:
        # used on the first launch only; later launches resume from checkpoint_last.pt
        cmd += [INIT_FLAG, str(init_checkpoint(opts).resolve())]
    return cmd + list(opts.extra)


def init_checkpoint(opts: PretrainOptions) -> Path:
    """``OUT/init/model.pt``: the ``--init`` weights prepared for this run's model."""
    return Path(opts.out) / "init" / "model.pt"


def with_init_args(cmd: list[str], args: list[str]) -> list[str]:
    """``cmd`` with the model options ``args`` of the ``--init`` model put before its weights' flag."""
    i = cmd.index(INIT_FLAG)
    return cmd[:i] + args + cmd[i:]


def parse_train_args(cmd: list[str]):
    """fairseq's ``(cfg, task)`` for a training command (the plugin imported), to build its model."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    import xling.xlmplug  # noqa: F401

    args = options.parse_args_and_arch(options.get_training_parser(), cmd[3:])
    cfg = convert_namespace_to_omegaconf(args)
    return cfg, tasks.setup_task(cfg.task)
