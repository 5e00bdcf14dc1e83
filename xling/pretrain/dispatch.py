"""One entry point for both architectures: :func:`plan` picks the encoder or the encoder-decoder front
(``--arch``, by default from ``--tasks``), checks the options that apply to it and builds its command;
:func:`run` trains it."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import xling.pretrain.encoder as encoder
import xling.pretrain.seq2seq as seq2seq
from xling.errors import XlingError
from xling.pretrain.batching import LAYOUT_FLAGS
from xling.pretrain.identity import user_flags
from xling.pretrain.launch import MicroBatchOOM, StatsCallback
from xling.pretrain.options import ARCHS, SEQ2SEQ_TASKS, DataInfo, NoiseOptions, PretrainOptions


def resolve_arch(opts: PretrainOptions, arch: Optional[str] = None) -> str:
    """``arch`` as given, else ``seq2seq`` when ``--tasks`` lists a denoising task, else ``encoder``."""
    arch = arch or ("seq2seq" if set(SEQ2SEQ_TASKS) & set(opts.tasks or []) else "encoder")
    if arch not in ARCHS:
        raise XlingError(f"--arch must be {' or '.join(ARCHS)}, not {arch!r}")
    return arch


def check_noise(arch: str, noise: NoiseOptions) -> None:
    """An encoder takes no noise options: they must be left at their defaults (the encoder-decoder checks
    their rates in :func:`xling.pretrain.seq2seq.check`)."""
    changed = noise.changed() if arch != "seq2seq" else []
    if changed:
        raise XlingError("noise options (" + ", ".join(NoiseOptions.flag(k) for k in changed)
                         + ") apply to the encoder-decoder only", fix="add --arch seq2seq --tasks xdae, or "
                         "drop them (encoder pretraining masks with --mask-span)")


@dataclass
class Plan:
    """A checked run: its architecture, options, data, fairseq command and length in updates."""
    arch: str
    opts: PretrainOptions
    noise: NoiseOptions
    info: DataInfo
    command: list[str]
    max_updates: int
    init_state: Optional[dict] = None  # the --init checkpoint, loaded (written at the start of training)


def plan(opts: PretrainOptions, noise: Optional[NoiseOptions] = None, arch: Optional[str] = None) -> Plan:
    """Check everything and build the fairseq command; nothing is started or written."""
    noise = noise or NoiseOptions()
    arch = resolve_arch(opts, arch)
    check_noise(arch, noise)
    if arch != "seq2seq" and (opts.decoder or opts.ngram is not None):
        raise XlingError(f"{'--decoder' if opts.decoder else '--ngram'} sets the decoder of an encoder-decoder",
                         fix="add --arch seq2seq --tasks xdae, or drop it")
    if arch == "seq2seq":
        info, cmd, init_state = seq2seq.command_for(opts, noise)
        return Plan(arch, opts, noise, info, cmd, seq2seq.max_updates(opts), init_state)
    info, cmd, init_state = encoder.command_for(opts)
    return Plan(arch, opts, noise, info, cmd, encoder.max_updates(opts), init_state)


def run_plan(p: Plan, on_stats: Optional[StatsCallback] = None) -> dict:
    """Run (or resume, or skip when finished) a checked run; return its summary (``OUT/pretrain.json``).

    When its micro-batches run out of memory and xling chose their size (no ``--micro-batch-size``, no fairseq
    batching flags after ``--``), the run is launched again with micro-batches half as large, down to one
    sequence: the batch (sequences per update) and so the training stay the same, in more micro-batches per
    update; the re-launch resumes ``checkpoint_last.pt`` if one was saved. ``on_stats("note", {"message": ...})``
    says so."""
    halve = p.opts.micro_batch_size is None and not user_flags(p.opts) & set(LAYOUT_FLAGS)  # xling's micro-batch
    while True:
        try:
            if p.arch == "seq2seq":
                return seq2seq.run_checked(p.opts, p.noise, p.info, p.command, p.init_state, on_stats)
            return encoder.run_checked(p.opts, p.info, p.command, p.init_state, on_stats)
        except MicroBatchOOM as e:
            if not halve or e.half < 1:
                raise
            if on_stats:
                on_stats("note", {"message": f"{e.message}; launching again with --micro-batch-size {e.half} "
                                             f"(the same batch per update, in more micro-batches)"})
            p = plan(replace(p.opts, micro_batch_size=e.half), p.noise, p.arch)


def run(opts: PretrainOptions, noise: Optional[NoiseOptions] = None, arch: Optional[str] = None,
        on_stats: Optional[StatsCallback] = None) -> dict:
    """Check and run the encoder or encoder-decoder pretraining run these options describe."""
    return run_plan(plan(opts, noise, arch), on_stats)
