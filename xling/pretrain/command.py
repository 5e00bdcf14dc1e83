"""The parts of the fairseq training command that the encoder and the encoder-decoder share: the program,
the optimizer/schedule/batching/logging flags of a preset, and the validation, precision, device,
data-parallel and ``--init`` flags. Each front module (:mod:`~xling.pretrain.encoder`,
:mod:`~xling.pretrain.seq2seq`) adds its task, criterion and architecture."""
from __future__ import annotations

import sys
from pathlib import Path

from xling.pretrain.checks import visible_gpus
from xling.pretrain.options import PretrainOptions

INIT_FLAG = "--finetune-from-model"


def train_program(opts: PretrainOptions) -> list[str]:
    """``python -m xling.xlmplug.train DATA``: fairseq-train with the plugin imported (a sharded
    ``prep-data`` output is passed as ``DATA/shard0:DATA/shard1:...``, one shard an epoch)."""
    from xling.corpus import fairseq_data_arg

    return [sys.executable, "-m", "xling.xlmplug.train", fairseq_data_arg(Path(opts.data).resolve())]


def trainer_args(opts: PretrainOptions, p: dict) -> list[str]:
    """fairseq-train's optimizer, schedule, batching, logging and saving flags of a preset ``p`` (shared by
    the encoder and the encoder-decoder commands). A run shorter than the preset's log interval logs ten times."""
    max_updates = opts.max_updates or p["max_updates"]
    total = opts.total_updates or max_updates
    return [
        "--optimizer", "adam", "--adam-betas", "(0.9,0.98)", "--adam-eps", "1e-6", "--clip-norm", "1.0",
        "--weight-decay", str(p["weight_decay"]),
        "--lr-scheduler", "polynomial_decay", "--lr", str(opts.lr or p["lr"]),
        "--warmup-updates", str(min(p["warmup"], max(1, total // 10))),
        "--total-num-update", str(total), "--max-update", str(max_updates),
        "--batch-size", str(opts.batch_size or p["batch_size"]), "--update-freq", str(p["update_freq"]),
        "--dropout", "0.1", "--attention-dropout", "0.1",
        "--save-dir", str(opts.checkpoint_dir.resolve()), "--no-epoch-checkpoints",
        "--log-format", "json",
        "--log-interval", str(opts.log_interval or min(p["log_interval"], max(1, max_updates // 10))),
        "--seed", str(opts.seed), "--num-workers", "0", "--skip-invalid-size-inputs-valid-test",
    ]


def launch_args(opts: PretrainOptions, validate: bool, legacy_ddp: bool = False) -> list[str]:
    """Validation, precision, device and data-parallel flags, ``--init`` weights, then the user's extra
    arguments (last, so that they override). ``legacy_ddp``: all-reduce after backward on GPUs too."""
    cmd = [] if validate else ["--disable-validation"]
    if opts.precision:
        cmd += [f"--{opts.precision}"]
    gpus = opts.gpus if opts.gpus is not None else min(1, visible_gpus())
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
