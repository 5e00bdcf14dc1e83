"""``xling pretrain``: multilingual pretraining run by fairseq's trainer, for an encoder (MLM, TLM, the
Unicoder objectives) or an encoder-decoder (multilingual denoising).

:class:`PretrainOptions` (plus :class:`NoiseOptions` for the encoder-decoder) is the API: :func:`plan`
checks every input before anything runs (no checkpoint is touched by a failed start) and builds the exact
fairseq command; :func:`run` / :func:`run_plan` run it in subprocesses (fairseq's own launcher for GPUs,
one process per rank for CPU DDP with gloo), follow its JSON log for the progress bar and loss curve,
resume from ``checkpoint_last.pt``, and write a model directory
``OUT/model/{model.pt,dict.txt,sentencepiece.bpe.model}`` and the summary ``OUT/pretrain.json``.

Modules: :mod:`~xling.pretrain.options` (options, presets), :mod:`~xling.pretrain.checks`,
:mod:`~xling.pretrain.command` (shared fairseq flags), :mod:`~xling.pretrain.launch` (rank processes, log
following, the run's life cycle), :mod:`~xling.pretrain.checkpoints`, :mod:`~xling.pretrain.init`
(``--init``), the fronts :mod:`~xling.pretrain.encoder` and :mod:`~xling.pretrain.seq2seq`, and
:mod:`~xling.pretrain.dispatch` (one entry point for both).

The names below without a prefix are the encoder's (``check``, ``build_command``, ``pretrain``).
"""
from xling.pretrain.checkpoints import checkpoint_updates, checkpoint_vocab, write_model_dir
from xling.pretrain.checks import check_data, check_resume, check_tasks, visible_gpus
from xling.pretrain.command import launch_args, trainer_args
from xling.pretrain.dispatch import Plan, check_noise, plan, resolve_arch, run, run_plan
from xling.pretrain.encoder import build_command, check, pretrain
from xling.pretrain.launch import parse_log_line, rank_commands, run_ranks
from xling.pretrain.options import (ARCHS, PRESETS, SEQ2SEQ_PRESETS, SEQ2SEQ_TASKS, DataInfo, NoiseOptions,
                                    PretrainOptions)

__all__ = [
    "ARCHS", "PRESETS", "SEQ2SEQ_PRESETS", "SEQ2SEQ_TASKS", "DataInfo", "NoiseOptions", "Plan", "PretrainOptions",
    "build_command", "check", "check_data", "check_noise", "check_resume", "check_tasks", "checkpoint_updates",
    "checkpoint_vocab", "launch_args", "parse_log_line", "plan", "pretrain", "rank_commands", "resolve_arch",
    "run", "run_plan", "run_ranks", "trainer_args", "visible_gpus", "write_model_dir",
]
