"""Encoder pretraining: MLM, TLM and the Unicoder objectives, run by fairseq's trainer.

:func:`check` validates inputs before anything runs (no checkpoint is touched by a failed start),
:func:`build_command` turns them into the exact fairseq command (``python -m xling.xlmplug.train DATA
--task xling_xlm ...``; task and criterion ``xling_unicoder`` for the Unicoder objectives), and
:func:`pretrain` runs it (see :func:`xling.pretrain.launch.train`), writing ``OUT/model/``.

Hand-written: only the command building; training itself is fairseq's.
"""
from __future__ import annotations

from typing import Optional

from xling.pretrain.checks import check_data, check_resume
from xling.pretrain.command import batching, compiles, launch_args, train_program, trainer_args
from xling.pretrain.init import add_init, encoder_init_args, prepare_encoder_init
from xling.pretrain.launch import StatsCallback, train
from xling.pretrain.options import GPU_COMPILE_ARGS, PRESETS, DataInfo, PretrainOptions


def vocab_rows(info: DataInfo) -> int:
    """Embedding rows of the model: fairseq's 4 specials, dict.txt, the masked-LM task's <mask>."""
    return info.dict_size + 5


def check(opts: PretrainOptions) -> DataInfo:
    """Validate every input (data, objectives, devices, the checkpoint to resume); raise
    :class:`~xling.errors.XlingError` before anything is started or written."""
    info = check_data(opts)
    check_resume(opts, vocab_rows(info), f"{info.dict_size} entries of dict.txt + 4 specials + <mask>",
                 PRESETS[opts.preset]["arch"])
    return info


def build_command(opts: PretrainOptions, info: DataInfo) -> list[str]:
    """The fairseq training command (as argv) for these options."""
    p = PRESETS[opts.preset]
    unicoder = bool(info.tasks)  # Unicoder objectives: task and criterion xling_unicoder, one sub-batch each
    cmd = [
        *train_program(opts, info),
        "--task", "xling_unicoder" if unicoder else "xling_xlm", "--langs", ",".join(info.langs),
        "--alpha", str(opts.alpha), "--sample-break-mode", "complete",
        "--tokens-per-sample", str(p["tokens_per_sample"]),
        "--criterion", "xling_unicoder" if unicoder else "xling_mlm_tlm", "--arch", p["arch"],
        *trainer_args(opts, p),
    ]
    if unicoder:
        cmd += ["--objectives", ",".join(info.tasks), "--objective-weights", ",".join(map(str, info.task_weights))]
        if info.pairs:
            cmd += ["--pairs", ",".join(info.pairs)]
    elif info.tlm_ratio > 0:
        cmd += ["--pairs", ",".join(info.pairs), "--tlm-ratio", str(info.tlm_ratio)]
    if opts.lang_embeddings:
        cmd += ["--lang-embeddings"]
    if opts.mask_span_p > 0:
        cmd += ["--mask-span-p", str(opts.mask_span_p), "--max-span-len", str(opts.mask_span_max)]
    if opts.mask_whole_words:
        cmd += ["--mask-whole-words"]
    if compiles(opts):
        cmd += list(GPU_COMPILE_ARGS)
    # Unicoder objectives run the model several times per update: legacy DDP (all-reduce after backward)
    return cmd + launch_args(opts, info.validate, legacy_ddp=unicoder)


def command_for(opts: PretrainOptions) -> tuple[DataInfo, list[str], Optional[dict]]:
    """Checked inputs, the fairseq command (with the ``--init`` model's shape), and the ``--init`` state
    (loaded, not yet written)."""
    info = check(opts)
    cmd, init_state = add_init(opts, info, build_command(opts, info), encoder_init_args)
    return info, cmd, init_state


def max_updates(opts: PretrainOptions) -> int:
    return opts.max_updates or PRESETS[opts.preset]["max_updates"]


def pretrain(opts: PretrainOptions, on_stats: Optional[StatsCallback] = None) -> dict:
    """Run (or resume, or skip when finished) an encoder pretraining run; return the summary written to
    ``OUT/pretrain.json``. ``on_stats(kind, stats)`` sees every fairseq log record as it comes."""
    return run_checked(opts, *command_for(opts), on_stats=on_stats)


def run_checked(opts: PretrainOptions, info: DataInfo, cmd: list[str], init_state: Optional[dict],
                on_stats: Optional[StatsCallback] = None) -> dict:
    """:func:`pretrain` for what :func:`command_for` returned."""
    tasks = info.tasks or (["mlm"] if info.tlm_ratio < 1 else []) + (["tlm"] if info.tlm_ratio > 0 else [])
    fields = {"tasks": tasks, "task_weights": info.task_weights or None,
              "batch_size": batching(opts, PRESETS[opts.preset]).batch_size}

    def prepare() -> dict:
        if init_state is not None:
            prepare_encoder_init(opts, cmd, init_state)
        return {}

    return train(opts, info, cmd, max_updates(opts), fields, prepare, on_stats)
