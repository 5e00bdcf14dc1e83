"""Checks made before a pretraining run starts anything: the prepared data, the objectives (read from the
registry :mod:`xling.xlmplug.objectives`), the devices, and the checkpoint a run would resume from.
Every problem is an :class:`~xling.errors.XlingError`; nothing is written."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xling.corpus.manifest import load_manifest, shard_dirs
from xling.errors import XlingError
from xling.pretrain.checkpoints import checkpoint_facts
from xling.pretrain.identity import parse_flags
from xling.pretrain.options import PRESETS, DataInfo, PretrainOptions


def dict_pieces(path: Path) -> list[str]:
    """The pieces of a fairseq ``dict.txt``, in order."""
    with open(path, encoding="utf-8") as f:
        return [line.split()[0] for line in f if line.strip()]


def dict_size(path: Path) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def has_dataset(prefix: Path) -> bool:
    """Whether the fairseq indexed dataset ``prefix.{bin,idx}`` exists."""
    return prefix.with_name(prefix.name + ".bin").exists() and prefix.with_name(prefix.name + ".idx").exists()


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_data(opts: PretrainOptions) -> DataInfo:
    """Validate the data directory, languages, pairs, objectives and devices of a run (not the checkpoint
    to resume: that depends on the architecture, see :func:`check_resume`)."""
    data = Path(opts.data)
    check_counts(opts)
    check_extra(opts)
    if opts.preset not in PRESETS:
        raise XlingError(f"unknown preset {opts.preset!r}", fix=f"use one of {', '.join(PRESETS)}")
    if not data.is_dir():
        raise XlingError("data directory does not exist", file=data, fix="run `xling prep-data --out DIR` first")
    man_path = data / "manifest.json"
    manifest = load_manifest(data)
    langs = list(opts.langs or manifest.get("langs", []))
    have = set(manifest.get("langs", []))
    for lang in langs:
        if lang not in have:
            raise XlingError(f"language {lang!r} was not prepared (prepared: {', '.join(sorted(have))})",
                             file=man_path, fix="drop it from --langs or add it to `xling prep-data`")
    tasks = check_tasks(opts)
    check_masking(opts, tasks.tasks)
    ratio = tasks.tlm_ratio
    if not 0.0 <= ratio <= 1.0:
        raise XlingError(f"--tlm-ratio must be within [0, 1], got {ratio}")
    prepared = list(manifest.get("pairs", []))
    pairs = list(opts.pairs or (prepared if ratio > 0 or tasks.parallel else []))
    if tasks.parallel and not pairs:
        raise XlingError(f"task(s) {', '.join(tasks.parallel)} need parallel data but the data directory has no "
                         "pairs", file=man_path, fix="prepare pairs with `xling prep-data --para SRC-TGT=...`, or "
                                                     "drop those tasks from --tasks")
    if opts.pairs and ratio == 0 and not tasks.tasks:
        ratio = 0.5
    for pair in pairs:
        if pair not in prepared:
            raise XlingError(f"pair {pair!r} was not prepared (prepared: {', '.join(prepared) or 'none'})",
                             file=man_path, fix="choose a prepared pair or add it with `xling prep-data --para`")
        for lang in pair.split("-"):
            if lang not in langs:
                langs.append(lang)
    if ratio > 0 and not pairs:
        raise XlingError("TLM needs parallel data but the data directory has no pairs", file=man_path,
                         fix="prepare pairs with `xling prep-data --para SRC-TGT=...`, or drop --tlm")
    # every dataset this run reads: a missing train split is an error, a missing valid split turns validation off
    mono_tasks = [t for t in tasks.tasks if t not in tasks.parallel] or ["mlm"]  # what reads monolingual text
    needed = [(f"mono/{{}}.{lang}", f"no monolingual {{}} data for {lang!r} (--tasks {','.join(mono_tasks)} reads "
               "monolingual text)", "re-run `xling prep-data` with --mono LANG=FILE or --mono-from-para, drop the "
               "language from --langs, or train on pairs (--tasks tlm, trtd)") for lang in (langs if ratio < 1 else [])]
    needed += [(f"para/{{}}.{pair}.{lang}", f"no parallel {{}} data for {pair}", "re-run `xling prep-data --para`")
               for pair in pairs for lang in pair.split("-")]
    validate = True
    roots = shard_dirs(data, manifest)  # [DATA], or DATA/shard0.. (prep-data --shard-size), each read in turn
    for split in ("train", "valid"):
        for prefix, message, fix in needed:
            if all(has_dataset(root / prefix.format(split)) for root in roots):
                continue
            if split == "valid":
                validate = False
                continue
            raise XlingError(message.format(split), file=data / (prefix.format(split) + ".bin"), fix=fix)
    if "cs-mlm" in tasks.tasks:
        check_alignments(roots[0], pairs, validate)
    check_devices(opts)
    check_out(opts)
    return DataInfo(langs, pairs, ratio, validate, dict_size(data / "dict.txt"), manifest, tasks.tasks,
                    tasks.weights)


def check_counts(opts: PretrainOptions) -> None:
    """Counts where 0 (or less) means nothing: refused instead of silently meaning "the preset's"."""
    for name in ("max_updates", "total_updates", "batch_size", "micro_batch_size", "log_interval"):
        v = getattr(opts, name)
        if v is not None and v < 1:
            raise XlingError(f"--{name.replace('_', '-')} must be at least 1, got {v}",
                             fix=f"leave --{name.replace('_', '-')} out for the preset's value")
    if opts.save_interval is not None and opts.save_interval < 0:
        raise XlingError(f"--save-interval must be >= 0 (0: save at epoch ends only), got {opts.save_interval}",
                         fix="leave --save-interval out for the preset's value")
    for name in ("cpu_procs", "nodes"):
        if getattr(opts, name) < 1:
            raise XlingError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(opts, name)}")
    if opts.lr is not None and not opts.lr > 0:
        raise XlingError(f"--lr must be positive, got {opts.lr}")
    if not opts.alpha >= 0:
        raise XlingError(f"--alpha must be >= 0 (0: languages sampled uniformly), got {opts.alpha}")
    if not 0.0 <= opts.mask_span_p < 1.0 or opts.mask_span_max < 1:
        raise XlingError(f"--mask-span: p must be within (0, 1) and max at least 1, got p={opts.mask_span_p}, "
                         f"max={opts.mask_span_max}", fix="give --mask-span geometric:p=0.2,max=10")


# fairseq's spelling of an option that xling's own flag sets: after `--` it would silently override that flag
OWNED_FAIRSEQ_FLAGS = {"--max-update": "--max-updates", "--total-num-update": "--total-updates", "--lr": "--lr",
                       "--log-interval": "--log-interval", "--save-interval-updates": "--save-interval",
                       "--seed": "--seed", "--multilang-sampling-alpha": "--alpha"}


def check_extra(opts: PretrainOptions) -> None:
    """A fairseq argument after ``--`` that means one of xling's own flags is refused, naming both."""
    # --flag=value as two arguments, as fairseq's argparse reads it
    given = parse_flags([p for a in map(str, opts.extra) for p in (a.split("=", 1) if a.startswith("--") else [a])])
    for name, value in given.items():
        if name in OWNED_FAIRSEQ_FLAGS:
            ours = OWNED_FAIRSEQ_FLAGS[name]
            raise XlingError(f"{name} after -- would silently override xling's {ours}",
                             fix=f"give xling's {ours}{'' if value is True else ' ' + value} instead, before the --")


RUN_FILES = ("run.json", "pretrain.json", "checkpoints", "train.log", "model", "init", ".xling-pretrain.lock")


def check_out(opts: PretrainOptions) -> None:
    """``--out`` is a run directory: not a file, not inside the data or ``--init`` directory, and not a
    non-empty directory that holds no run (a user's folder)."""
    from xling.outputs import claim_dir

    out = Path(opts.out)
    protect = {"data directory": Path(opts.data)}
    if opts.init:
        protect["--init model directory"] = Path(opts.init)
    claim_dir(out, command="pretrain", force=True, protect=protect)  # not a file, not inside them
    if out.is_dir() and any(out.iterdir()) and not any((out / name).exists() for name in RUN_FILES):
        raise XlingError("--out is not empty and holds no `xling pretrain` run (no run.json, checkpoints/, "
                         "pretrain.json)", file=out, fix="choose a new or empty directory for --out (its files "
                                                         "are left as they are)")


@dataclass
class TaskChoice:
    tasks: list[str]  # Unicoder objectives (task xling_unicoder); empty: task xling_xlm (mlm and/or tlm)
    weights: list[float]
    tlm_ratio: float
    parallel: list[str]  # the chosen objectives that read parallel pairs


def check_tasks(opts: PretrainOptions) -> TaskChoice:
    """The objectives of ``--tasks/--task-weights``, validated by the objective registry. ``tasks`` is empty
    when only mlm/tlm are asked for, which is task ``xling_xlm`` (``--tasks mlm,tlm`` equals ``--tlm``;
    weights there set the TLM share)."""
    ratio = opts.tlm_ratio if opts.tlm_ratio is not None else (0.5 if opts.tlm else 0.0)
    if opts.tasks is None:
        if opts.task_weights:
            raise XlingError("--task-weights given without --tasks", fix="list the tasks, e.g. --tasks mlm,tlm,clwr")
        return TaskChoice([], [], ratio, [])
    from xling.xlmplug.objectives import OBJECTIVES, PARALLEL_OBJECTIVES, parse_objectives

    try:
        tasks, weights = parse_objectives(list(opts.tasks), opts.task_weights)
    except ValueError as e:
        raise XlingError(task_error(list(opts.tasks), opts.task_weights, OBJECTIVES, e),
                         fix=f"--tasks takes {', '.join(OBJECTIVES)}, --task-weights one non-negative number per "
                             "task, in the same order") from None
    parallel = [t for t in tasks if t in PARALLEL_OBJECTIVES]
    if opts.tlm and "tlm" not in tasks:
        raise XlingError("--tlm asks for TLM but --tasks does not list tlm", fix="add tlm to --tasks, or drop --tlm")
    if set(tasks) <= {"mlm", "tlm"}:
        w = dict(zip(tasks, weights))
        if opts.tlm_ratio is None:
            ratio = w.get("tlm", 0.0) / (w.get("tlm", 0.0) + w.get("mlm", 0.0))
        return TaskChoice([], [], ratio, [])
    if opts.tlm_ratio is not None:
        raise XlingError("--tlm-ratio applies to MLM+TLM runs; with Unicoder tasks weight them with --task-weights")
    # 1: no monolingual data is read (every objective reads pairs)
    return TaskChoice(tasks, weights, 0.0 if len(parallel) < len(tasks) else 1.0, parallel)


def check_masking(opts: PretrainOptions, tasks: list[str]) -> None:
    """--mask-span / --mask-whole-words need an objective whose examples are masked."""
    from xling.xlmplug.objectives import OBJECTIVES

    if (opts.mask_span_p or opts.mask_whole_words) and tasks and not any(OBJECTIVES[t].masks_input for t in tasks):
        flag = "--mask-span" if opts.mask_span_p else "--mask-whole-words"
        masked = ", ".join(n for n, o in OBJECTIVES.items() if o.masks_input)
        raise XlingError(f"{flag} masks the masked objectives ({masked}), and --tasks {','.join(tasks)} has none",
                         fix=f"add one of them to --tasks, or drop {flag}")


def task_error(tasks: list[str], weights, known, error: ValueError) -> str:
    """The registry's complaint about ``--tasks/--task-weights``, said with the flags' names."""
    unknown = [t for t in tasks if t not in known]
    if unknown or not tasks:
        return f"unknown task(s) {', '.join(unknown) or '(none given)'}"
    if weights is not None and len(weights) != len(tasks):
        return f"--task-weights gives {len(weights)} weight(s) for {len(tasks)} task(s) ({','.join(tasks)})"
    return f"--tasks {','.join(tasks)}: {error}"


def check_alignments(data: Path, pairs: list[str], validate: bool) -> None:
    for pair in pairs:
        for split in ("train", "valid") if validate else ("train",):
            path = data / "para" / f"{split}.{pair}.align"
            if not path.exists():
                raise XlingError(f"cs-mlm needs word alignments of {pair}, but {split}.{pair}.align is missing",
                                 file=path, fix="re-run `xling prep-data ... --align` (word-aligns every pair), "
                                                "or drop cs-mlm from --tasks")
    if not (data / "spm.model").exists():
        raise XlingError("cs-mlm maps alignments to pieces with the data's spm.model, which is missing", file=data,
                         fix="re-run `xling prep-data`, which copies the vocabulary's spm.model")


def check_devices(opts: PretrainOptions) -> None:
    if opts.gpus is not None:
        n = visible_gpus()
        if opts.gpus < 1:
            raise XlingError(f"--gpus must be at least 1, got {opts.gpus}", fix="leave --gpus out to train on CPU")
        if opts.gpus > n and not opts.plan_only:
            raise XlingError(f"--gpus {opts.gpus} asked for, but {n} GPU(s) are visible",
                             fix="lower --gpus, or check CUDA_VISIBLE_DEVICES / nvidia-smi")
    if opts.nodes > 1 and not opts.master:
        raise XlingError("--nodes > 1 needs --master-addr", fix="the address of the node run with --node-rank 0 "
                                                                  "(and --master-port, a free port there)")
    if not 0 <= opts.node_rank < opts.nodes:
        raise XlingError(f"--node-rank must be in [0, {opts.nodes}), got {opts.node_rank}")
    if opts.cpu_procs > 1 and opts.gpus:
        raise XlingError("--cpu-procs is for CPU training; do not combine it with --gpus")
    if opts.precision == "fp16" and not opts.gpus and visible_gpus() == 0:
        raise XlingError("--fp16 needs a GPU", fix="use --bf16 on CPU, or train on a GPU")


def check_resume(opts: PretrainOptions, want: int, symbols: str, preset_arch: str) -> None:
    """Before resuming from ``checkpoint_last.pt``: its embedding rows must be the ``want`` symbols this
    run's data gives (``symbols`` says how they add up) and its architecture the preset's. A run resumes in the
    precision it was trained in: with none asked for, ``opts.precision`` becomes the checkpoint's (a run begun on
    CPU in fp32 goes on in fp32 on a GPU, whose default would be bf16); another one asked for is refused, since
    fairseq cannot load the optimizer state of one precision into another (it stopped with an AssertionError)."""
    last = opts.checkpoint_dir / "checkpoint_last.pt"
    if not last.exists():
        return
    rows, arch, trained = checkpoint_facts(last)
    if rows != want:
        raise XlingError(f"vocabulary mismatch: the data gives {want} symbols ({symbols}) but the checkpoint to "
                         f"resume has {rows}", file=last,
                         fix="use the data (and languages) the checkpoint was trained with, or a new --out directory")
    if arch not in ("?", preset_arch):
        raise XlingError(f"the checkpoint to resume is a {arch} model, not --preset {opts.preset} ({preset_arch})",
                         file=last, fix="use the same --preset, or a new --out directory")
    if opts.precision is None:
        opts.precision = trained
        if trained == "fp16" and not opts.gpus and visible_gpus() == 0:
            raise XlingError("checkpoint_last.pt was trained in fp16, which needs a GPU to resume", file=last,
                             fix="resume it on a GPU, or start a new run (another --out) on CPU")
    elif opts.precision != trained:
        raise XlingError(f"checkpoint_last.pt was trained in {trained}; resuming it in {opts.precision} needs "
                         f"another kind of optimizer state, which fairseq cannot load", file=last,
                         fix=f"resume with --{trained} (or without a precision flag: a run keeps its own), or train "
                             f"in {opts.precision} from the start in another --out")
