"""Encoder-decoder pretraining (``xling pretrain --arch seq2seq --tasks xdae``): multilingual denoising.

:func:`build_command` turns :class:`~xling.pretrain.options.PretrainOptions` plus
:class:`~xling.pretrain.options.NoiseOptions` into a fairseq command with the plugin's ``xling_dae`` task
(mBART-style language tokens, alpha language sampling, the xDAE noise set) and a
``xling_dae_{tiny,base,large}`` architecture (fairseq's ``bart``), trained with label-smoothed
cross-entropy. ``OUT/model/`` is a model directory as for encoders (``model.pt``, ``dict.txt``,
``sentencepiece.bpe.model``); the language list is in the checkpoint's task config.
"""
from __future__ import annotations

from dataclasses import asdict, replace
from typing import Optional

from xling.errors import XlingError
from xling.pretrain.checks import check_data, check_resume
from xling.pretrain.command import batching, launch_args, train_program, trainer_args
from xling.pretrain.init import add_init, prepare_seq2seq_init, seq2seq_init_args
from xling.pretrain.launch import StatsCallback, train
from xling.pretrain.options import (DECODERS, SEQ2SEQ_PRESETS, SEQ2SEQ_TASKS, DataInfo, NoiseOptions,
                                    PretrainOptions)


def check(opts: PretrainOptions, noise: NoiseOptions) -> DataInfo:
    """Validate every input before anything runs (the data checks are the encoder's)."""
    if opts.tasks and any(t not in SEQ2SEQ_TASKS for t in opts.tasks):
        raise XlingError(f"--arch seq2seq trains {', '.join(SEQ2SEQ_TASKS)}, not "
                         f"{', '.join(t for t in opts.tasks if t not in SEQ2SEQ_TASKS)}",
                         fix="use --tasks xdae with --arch seq2seq (mlm, tlm, ... train an encoder: --arch encoder)")
    if opts.tlm or opts.pairs or opts.tlm_ratio:
        raise XlingError("--tlm / --pairs / --tlm-ratio are encoder options; --arch seq2seq denoises monolingual data")
    if opts.mask_span_p or opts.mask_whole_words:
        flag = "--mask-span" if opts.mask_span_p else "--mask-whole-words"
        raise XlingError(f"{flag} masks the encoder's masked-LM objectives; xdae has its own span noise",
                         fix="drop it and set xdae's spans with --mask-ratio and --poisson-lambda (or train "
                             "--arch encoder --tasks mlm)")
    if opts.lang_embeddings:
        raise XlingError("--lang-embeddings is an encoder option",
                         fix="with --arch seq2seq the language token does that")
    if opts.compile:
        raise XlingError("--compile is an encoder option (the encoder-decoder runs eager)", fix="drop --compile")
    check_decoder(opts)
    noise.check()
    # the encoder's objectives (--tasks) do not apply here
    info = check_data(replace(opts, tasks=None, task_weights=None))
    check_resume(opts, vocab_rows(info), f"{info.dict_size} entries of dict.txt + 4 specials + "
                 f"{len(info.langs)} language tokens + <mask>", model_arch(opts))
    return info


def check_decoder(opts: PretrainOptions) -> None:
    if (opts.decoder or "transformer") not in DECODERS:
        raise XlingError(f"--decoder must be {' or '.join(DECODERS)}, not {opts.decoder!r}",
                         fix="--decoder prophetnet for ProphetNet's n-stream decoder, or leave it out for bart's")
    if opts.ngram is not None and opts.decoder != "prophetnet":
        raise XlingError("--ngram sets ProphetNet's future n-gram prediction", fix="add --decoder prophetnet, or "
                                                                                   "drop --ngram")
    if opts.ngram is not None and opts.ngram < 1:
        raise XlingError(f"--ngram must be at least 1 (1: next token only, 2: ProphetNet's default), got {opts.ngram}",
                         fix="give --ngram 2 (or leave it out)")


def model_arch(opts: PretrainOptions) -> str:
    """The fairseq architecture of the preset and decoder: ``xling_dae_*`` (bart) or ``xling_prophetnet_*``."""
    arch = SEQ2SEQ_PRESETS[opts.preset]["arch"]
    return arch.replace("xling_dae_", "xling_prophetnet_") if opts.decoder == "prophetnet" else arch


def decoder_args(opts: PretrainOptions, arch: str) -> list[str]:
    """Architecture and criterion of the decoder: bart's with label-smoothed cross-entropy, or ProphetNet's with
    the future n-gram loss."""
    if opts.decoder == "prophetnet":
        return ["--criterion", "xling_ngram_loss", "--label-smoothing", "0.1",
                "--arch", model_arch(opts), "--ngram", str(opts.ngram or 2)]
    return ["--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1", "--arch", arch]


def vocab_rows(info: DataInfo) -> int:
    """Embedding rows of the model: fairseq's 4 specials, dict.txt, one [lang] per language, <mask>."""
    return info.dict_size + 4 + len(info.langs) + 1


def build_command(opts: PretrainOptions, info: DataInfo, noise: NoiseOptions) -> list[str]:
    p = SEQ2SEQ_PRESETS[opts.preset]
    cmd = [
        *train_program(opts, info),
        "--task", "xling_dae", "--langs", ",".join(info.langs), "--multilang-sampling-alpha", str(opts.alpha),
        "--sample-break-mode", "complete", "--tokens-per-sample", str(p["tokens_per_sample"]),
        *noise.args(),
        *decoder_args(opts, p["arch"]),
        # one loader process also on CPU: the noise is seeded per example on torch's generator (the same noise
        # in every run and after a resume), which fairseq's loader thread would share with the trainer's dropout
        *trainer_args(opts, p, min_workers=1),
    ]
    return cmd + launch_args(opts, info.validate)


def command_for(opts: PretrainOptions, noise: NoiseOptions) -> tuple[DataInfo, list[str], Optional[dict]]:
    """Checked inputs, the fairseq command, and the --init state (loaded, not yet written)."""
    info = check(opts, noise)
    cmd, init_state = add_init(opts, info, build_command(opts, info, noise), seq2seq_init_args)
    return info, cmd, init_state


def max_updates(opts: PretrainOptions) -> int:
    return opts.max_updates or SEQ2SEQ_PRESETS[opts.preset]["max_updates"]


def pretrain(opts: PretrainOptions, noise: NoiseOptions, on_stats: Optional[StatsCallback] = None) -> dict:
    """Run (or resume, or skip when finished) a denoising pretraining run; return the summary written
    to ``OUT/pretrain.json`` (same keys as the encoder's, plus ``arch``, ``noise`` and ``init``)."""
    return run_checked(opts, noise, *command_for(opts, noise), on_stats=on_stats)


def run_checked(opts: PretrainOptions, noise: NoiseOptions, info: DataInfo, cmd: list[str],
                init_state: Optional[dict], on_stats: Optional[StatsCallback] = None) -> dict:
    """:func:`pretrain` for what :func:`command_for` returned."""
    fields = {"arch": "seq2seq", "tasks": list(SEQ2SEQ_TASKS), "task_weights": [1.0], "noise": asdict(noise),
              "batch_size": batching(opts, SEQ2SEQ_PRESETS[opts.preset]).batch_size}

    def prepare() -> dict:
        init = prepare_seq2seq_init(opts, info, cmd, init_state) if init_state is not None else None
        return {"init": init}

    return train(opts, info, cmd, max_updates(opts), fields, prepare, on_stats)
