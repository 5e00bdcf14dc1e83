"""``xling pretrain``: multilingual MLM / TLM pretraining run by fairseq's trainer.

:class:`PretrainOptions` is the API: :func:`check` validates inputs before anything runs (no
checkpoint is touched by a failed start), :func:`build_command` turns them into the exact fairseq
command (``python -m xling.xlmplug.train DATA --task xling_xlm ...``), :func:`pretrain` runs it in
subprocesses (fairseq's own launcher for GPUs, one process per rank for CPU DDP with gloo), follows
its JSON log for the progress bar and loss curve, resumes from ``checkpoint_last.pt``, and finally
writes a model directory ``OUT/model/{model.pt,dict.txt,sentencepiece.bpe.model}``.

Hand-written: only the command building and log following; training itself is fairseq's.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from xling.errors import XlingError
from xling.io import atomic_dir, atomic_path, read_json, sha256_text, write_json_atomic

# Model shape lives in the plugin's architectures; these are the training defaults per preset.
PRESETS = {
    "tiny": dict(arch="xling_xlm_tiny", tokens_per_sample=64, batch_size=16, lr=1e-3, warmup=20,
                 max_updates=300, update_freq=1, log_interval=10, weight_decay=0.01),
    "base": dict(arch="xling_xlm_base", tokens_per_sample=512, batch_size=32, lr=6e-4, warmup=10000,
                 max_updates=125000, update_freq=8, log_interval=100, weight_decay=0.01),
    "large": dict(arch="xling_xlm_large", tokens_per_sample=512, batch_size=16, lr=4e-4, warmup=10000,
                  max_updates=125000, update_freq=16, log_interval=100, weight_decay=0.01),
}


@dataclass
class PretrainOptions:
    data: Path
    out: Path
    preset: str = "base"
    tlm: bool = False
    tlm_ratio: Optional[float] = None  # default 0.5 with tlm
    tasks: Optional[list[str]] = None  # objectives; None: mlm (+tlm with tlm)
    task_weights: Optional[list[float]] = None  # one per task; None: all 1
    langs: Optional[list[str]] = None
    pairs: Optional[list[str]] = None
    alpha: float = 0.3
    max_updates: Optional[int] = None
    total_updates: Optional[int] = None  # LR schedule length; default max_updates
    batch_size: Optional[int] = None
    lr: Optional[float] = None
    log_interval: Optional[int] = None
    seed: int = 1
    lang_embeddings: bool = False
    mask_span_p: float = 0.0
    gpus: Optional[int] = None
    cpu_procs: int = 1
    nodes: int = 1
    node_rank: int = 0
    master: Optional[str] = None  # ADDR or ADDR:PORT
    precision: Optional[str] = None  # "bf16" | "fp16"
    extra: list[str] = field(default_factory=list)
    init: Optional[Path] = None

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.out) / "checkpoints"


@dataclass
class DataInfo:
    langs: list[str]
    pairs: list[str]
    tlm_ratio: float
    validate: bool
    dict_size: int
    manifest: dict
    tasks: list[str] = field(default_factory=list)  # Unicoder objectives (task xling_unicoder); empty: xling_xlm
    task_weights: list[float] = field(default_factory=list)


def _dict_size(path: Path) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def _has(prefix: Path) -> bool:
    return prefix.with_name(prefix.name + ".bin").exists() and prefix.with_name(prefix.name + ".idx").exists()


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check(opts: PretrainOptions, resume_check: bool = True) -> DataInfo:
    """Validate every input; raise :class:`XlingError` before anything is started or written.
    ``resume_check=False`` leaves the check of a checkpoint to resume to the caller (other model kinds)."""
    data = Path(opts.data)
    if opts.preset not in PRESETS:
        raise XlingError(f"unknown preset {opts.preset!r}", fix=f"use one of {', '.join(PRESETS)}")
    if not data.is_dir():
        raise XlingError("data directory does not exist", file=data, fix="run `xling prep-data --out DIR` first")
    man_path = data / "manifest.json"
    if not man_path.exists():
        raise XlingError("not a prepared data directory: manifest.json is missing", file=data,
                         fix="point --data at the output of `xling prep-data`")
    manifest = read_json(man_path, "data manifest")
    if manifest.get("kind") != "xling-data":
        raise XlingError("manifest.json is not an xling data manifest", file=man_path,
                         fix="point --data at the output of `xling prep-data`")
    if not (data / "dict.txt").exists():
        raise XlingError("dict.txt is missing from the data directory", file=data,
                         fix="re-run `xling prep-data`, which copies the vocabulary's dict.txt")
    langs = list(opts.langs or manifest.get("langs", []))
    have = set(manifest.get("langs", []))
    for lang in langs:
        if lang not in have:
            raise XlingError(f"language {lang!r} was not prepared (prepared: {', '.join(sorted(have))})",
                             file=man_path, fix="drop it from --langs or add it to `xling prep-data`")
    tasks, weights, ratio = _check_tasks(opts)
    if not 0.0 <= ratio <= 1.0:
        raise XlingError(f"--tlm-ratio must be within [0, 1], got {ratio}")
    prepared = list(manifest.get("pairs", []))
    parallel = [t for t in tasks if t in PARALLEL_TASKS]
    pairs = list(opts.pairs or (prepared if ratio > 0 or parallel else []))
    if parallel and not pairs:
        raise XlingError(f"task(s) {', '.join(parallel)} need parallel data but the data directory has no pairs",
                         file=man_path, fix="prepare pairs with `xling prep-data --para SRC-TGT=...`, or drop "
                                            "those tasks from --tasks")
    if opts.pairs and ratio == 0 and not tasks:
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
    needed = [(f"mono/{{}}.{lang}", f"no monolingual {{}} data for {lang!r}",
               "re-run `xling prep-data`, or drop the language from --langs") for lang in (langs if ratio < 1 else [])]
    needed += [(f"para/{{}}.{pair}.{lang}", f"no parallel {{}} data for {pair}", "re-run `xling prep-data --para`")
               for pair in pairs for lang in pair.split("-")]
    validate = True
    for split in ("train", "valid"):
        for prefix, message, fix in needed:
            if _has(data / prefix.format(split)):
                continue
            if split == "valid":
                validate = False
                continue
            raise XlingError(message.format(split), file=data / (prefix.format(split) + ".bin"), fix=fix)
    if "cs-mlm" in tasks:
        _check_alignments(data, pairs, validate)
    dict_size = _dict_size(data / "dict.txt")
    _check_devices(opts)
    if resume_check:  # fairseq adds <s> <pad> </s> <unk>; the MLM task adds <mask>
        check_resume(opts, dict_size + 5, f"{dict_size} entries of dict.txt + 4 specials + <mask>",
                     PRESETS[opts.preset]["arch"])
    return DataInfo(langs, pairs, ratio, validate, dict_size, manifest, tasks, weights)


TASKS = ("mlm", "tlm", "clwr", "clpc", "clmlm", "cs-mlm", "xlco")
PARALLEL_TASKS = ("tlm", "clwr", "clpc", "clmlm", "cs-mlm", "xlco")


def _check_tasks(opts: PretrainOptions) -> tuple[list[str], list[float], float]:
    """``(unicoder tasks, their weights, tlm ratio)``: tasks empty when only mlm/tlm are asked for, which
    is task ``xling_xlm`` (``--tasks mlm,tlm`` equals ``--tlm``; weights there set the TLM share)."""
    ratio = opts.tlm_ratio if opts.tlm_ratio is not None else (0.5 if opts.tlm else 0.0)
    if opts.tasks is None:
        if opts.task_weights:
            raise XlingError("--task-weights given without --tasks", fix="list the tasks, e.g. --tasks mlm,tlm,clwr")
        return [], [], ratio
    tasks = list(opts.tasks)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise XlingError(f"unknown task(s) {', '.join(unknown) or '(none given)'}", fix=f"use {', '.join(TASKS)}")
    if len(set(tasks)) != len(tasks):
        raise XlingError(f"a task is listed twice in --tasks {','.join(tasks)}")
    weights = list(opts.task_weights) if opts.task_weights is not None else [1.0] * len(tasks)
    if len(weights) != len(tasks):
        raise XlingError(f"--task-weights gives {len(weights)} weight(s) for {len(tasks)} task(s) "
                         f"({','.join(tasks)})", fix="give one weight per task, in the same order")
    if any(w < 0 for w in weights) or not any(weights):
        raise XlingError(f"--task-weights must be non-negative and not all 0, got {','.join(map(str, weights))}")
    if opts.tlm and "tlm" not in tasks:
        raise XlingError("--tlm asks for TLM but --tasks does not list tlm", fix="add tlm to --tasks, or drop --tlm")
    if set(tasks) <= {"mlm", "tlm"}:
        w = dict(zip(tasks, weights))
        if opts.tlm_ratio is None:
            ratio = w.get("tlm", 0.0) / (w.get("tlm", 0.0) + w.get("mlm", 0.0))
        return [], [], ratio
    if opts.tlm_ratio is not None:
        raise XlingError("--tlm-ratio applies to MLM+TLM runs; with Unicoder tasks weight them with --task-weights")
    return tasks, weights, 0.0 if "mlm" in tasks else 1.0  # 1: no monolingual data is read


def _check_alignments(data: Path, pairs: list[str], validate: bool) -> None:
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


def _check_devices(opts: PretrainOptions) -> None:
    if opts.gpus is not None:
        n = visible_gpus()
        if opts.gpus < 1:
            raise XlingError(f"--gpus must be at least 1, got {opts.gpus}", fix="leave --gpus out to train on CPU")
        if opts.gpus > n:
            raise XlingError(f"--gpus {opts.gpus} asked for, but {n} GPU(s) are visible",
                             fix="lower --gpus, or check CUDA_VISIBLE_DEVICES / nvidia-smi")
    if opts.nodes > 1 and not opts.master:
        raise XlingError("--nodes > 1 needs --master ADDR[:PORT] (the address of node rank 0)")
    if not 0 <= opts.node_rank < opts.nodes:
        raise XlingError(f"--node-rank must be in [0, {opts.nodes}), got {opts.node_rank}")
    if opts.cpu_procs > 1 and opts.gpus:
        raise XlingError("--cpu-procs is for CPU training; do not combine it with --gpus")
    if opts.precision == "fp16" and not opts.gpus and visible_gpus() == 0:
        raise XlingError("--fp16 needs a GPU", fix="use --bf16 on CPU, or train on a GPU")


def checkpoint_vocab(path: Path) -> tuple[int, str]:
    """Embedding rows and architecture of a fairseq checkpoint."""
    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    emb = [v for k, v in state["model"].items() if k.endswith("embed_tokens.weight")]
    if not emb:
        raise XlingError("checkpoint has no token embedding", file=path)
    return int(emb[0].shape[0]), str(_arch_of(state))


def _arch_of(state: dict) -> str:
    cfg = state.get("cfg") or {}
    model_cfg = cfg.get("model") if isinstance(cfg, dict) else None
    if model_cfg is None:
        model_cfg = state.get("args")
    if isinstance(model_cfg, dict):
        return str(model_cfg.get("arch") or model_cfg.get("_name") or "?")
    return str(getattr(model_cfg, "arch", None) or "?")


def check_resume(opts: PretrainOptions, want: int, symbols: str, preset_arch: str) -> None:
    """Before resuming from ``checkpoint_last.pt``: its embedding rows must be the ``want`` symbols this
    run's data gives (``symbols`` says how they add up) and its architecture the preset's."""
    last = opts.checkpoint_dir / "checkpoint_last.pt"
    if not last.exists():
        return
    rows, arch = checkpoint_vocab(last)
    if rows != want:
        raise XlingError(f"vocabulary mismatch: the data gives {want} symbols ({symbols}) but the checkpoint to "
                         f"resume has {rows}", file=last,
                         fix="use the data (and languages) the checkpoint was trained with, or a new --out directory")
    if arch not in ("?", preset_arch):
        raise XlingError(f"the checkpoint to resume is a {arch} model, not --preset {opts.preset} ({preset_arch})",
                         file=last, fix="use the same --preset, or a new --out directory")


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
        cmd += ["--finetune-from-model", str((Path(opts.out) / "init" / "model.pt").resolve())]
    return cmd + list(opts.extra)


def build_command(opts: PretrainOptions, info: DataInfo) -> list[str]:
    """The fairseq training command (as argv) for these options."""
    p = PRESETS[opts.preset]
    cmd = [
        sys.executable, "-m", "xling.xlmplug.train", str(Path(opts.data).resolve()),
        "--task", "xling_xlm", "--langs", ",".join(info.langs), "--alpha", str(opts.alpha),
        "--sample-break-mode", "complete", "--tokens-per-sample", str(p["tokens_per_sample"]),
        "--criterion", "xling_mlm_tlm", "--arch", p["arch"], *trainer_args(opts, p),
    ]
    if info.tasks:  # Unicoder objectives: task and criterion xling_unicoder, one sub-batch per objective
        cmd[cmd.index("xling_xlm")] = "xling_unicoder"
        cmd[cmd.index("xling_mlm_tlm")] = "xling_unicoder"
        cmd += ["--objectives", ",".join(info.tasks), "--objective-weights", ",".join(map(str, info.task_weights))]
        if info.pairs:
            cmd += ["--pairs", ",".join(info.pairs)]
    elif info.tlm_ratio > 0:
        cmd += ["--pairs", ",".join(info.pairs), "--tlm-ratio", str(info.tlm_ratio)]
    if opts.lang_embeddings:
        cmd += ["--lang-embeddings"]
    if opts.mask_span_p > 0:
        cmd += ["--mask-span-p", str(opts.mask_span_p)]
    # Unicoder objectives run the model several times per update: legacy DDP (all-reduce after backward)
    return cmd + launch_args(opts, info.validate, legacy_ddp=bool(info.tasks))


def rank_commands(opts: PretrainOptions, cmd: list[str], port: int) -> list[list[str]]:
    """One command per process to start: CPU DDP starts each rank itself (gloo, no spawn)."""
    if opts.cpu_procs <= 1 or opts.gpus:
        return [cmd]
    n_extra = len(opts.extra)
    base, extra = (cmd[:-n_extra], cmd[-n_extra:]) if n_extra else (cmd, [])
    return [base + ["--distributed-backend", "gloo", "--distributed-rank", str(r), "--device-id", "0",
                    "--distributed-init-method", f"tcp://127.0.0.1:{port}", "--distributed-no-spawn"] + extra
            for r in range(opts.cpu_procs)]


_LOG = re.compile(r"\b(train_inner|train|valid)\b\W+(\{.*\})\s*$")


def parse_log_line(line: str) -> Optional[tuple[str, dict]]:
    """``(kind, stats)`` for a fairseq JSON log line (``train_inner``, ``train`` or ``valid``)."""
    m = _LOG.search(line)
    if not m:
        return None
    try:
        raw = json.loads(m.group(2))
    except json.JSONDecodeError:
        return None
    stats = {}
    for k, v in raw.items():
        if v is None:  # a meter with nothing logged in this interval (e.g. no TLM row in the batch)
            continue
        try:
            stats[k] = float(v)
        except (TypeError, ValueError):
            stats[k] = v
    return m.group(1), stats


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fingerprint(opts: PretrainOptions, cmd: list[str], info: DataInfo) -> str:
    """Identity of a run: everything but where it stops (a longer --max-updates continues it)."""
    i = cmd.index("--max-update")
    argv = cmd[1:i] + cmd[i + 2:]
    return sha256_text(json.dumps([argv, info.manifest, str(opts.init)], sort_keys=True, default=str))


def pretrain(opts: PretrainOptions, on_stats: Optional[Callable[[str, dict], None]] = None) -> dict:
    """Run (or resume, or skip when finished) a pretraining run; return the summary written to
    ``OUT/pretrain.json``. ``on_stats(kind, stats)`` sees every fairseq log record as it comes."""
    info = check(opts)
    out = Path(opts.out)
    cmd = build_command(opts, info)
    if opts.init:
        state, shape = _load_init(opts, info)
        i = cmd.index("--finetune-from-model")
        cmd = cmd[:i] + init_args(shape) + cmd[i:]
        _prepare_init(opts, info, cmd, shape, state)
    summary_path = out / "pretrain.json"
    fp = _fingerprint(opts, cmd, info)
    max_updates = opts.max_updates or PRESETS[opts.preset]["max_updates"]
    old = read_json(summary_path, "pretrain summary") if summary_path.exists() else None
    if old and old.get("fingerprint") == fp and (out / "model" / "model.pt").exists() \
            and old.get("num_updates", 0) >= max_updates:
        old["skipped"] = True
        return old
    curve, valid, last_train = run_ranks(opts, cmd, on_stats)
    last = opts.checkpoint_dir / "checkpoint_last.pt"
    if not last.exists():
        raise XlingError("fairseq finished without writing checkpoint_last.pt", file=opts.checkpoint_dir)
    num_updates = _checkpoint_updates(last)
    if old and old.get("fingerprint") == fp and curve:
        first = curve[0]["num_updates"]
        curve = [c for c in old.get("curve", []) if c["num_updates"] < first] + curve
        valid = [v for v in old.get("valid", []) if v.get("valid_num_updates", 0) < first] + valid
    model_dir = write_model_dir(opts, info)
    summary = {
        "kind": "xling-pretrain", "fingerprint": fp, "preset": opts.preset, "langs": info.langs,
        "pairs": info.pairs, "tlm_ratio": info.tlm_ratio, "alpha": opts.alpha, "num_updates": num_updates,
        "tasks": info.tasks or (["mlm"] if info.tlm_ratio < 1 else []) + (["tlm"] if info.tlm_ratio > 0 else []),
        "task_weights": info.task_weights or None,
        "command": shlex.join(cmd), "curve": curve, "valid": valid, "last_epoch": last_train,
        "model_dir": str(model_dir), "skipped": False,
    }
    write_json_atomic(summary_path, summary)
    return summary


def run_ranks(opts: PretrainOptions, cmd: list[str], on_stats: Optional[Callable[[str, dict], None]] = None
              ) -> tuple[list[dict], list[dict], dict]:
    """Run the fairseq command (one process per rank), log to ``OUT/train.log`` and follow its JSON log;
    return ``(curve, valid, last_train)``. A failed run raises :class:`XlingError` with the log's tail."""
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if opts.cpu_procs > 1:
        env.setdefault("OMP_NUM_THREADS", "1")  # ranks share the cores
    env["PYTHONUNBUFFERED"] = "1"
    commands = rank_commands(opts, cmd, _free_port())
    curve, valid, last_train = [], [], {}
    procs, logs = [], []
    try:
        for r, c in enumerate(commands):
            log = open(out / ("train.log" if r == 0 else f"train.rank{r}.log"), "a", encoding="utf-8")
            logs.append(log)
            procs.append(subprocess.Popen(c, stdout=subprocess.PIPE if r == 0 else log,
                                          stderr=subprocess.STDOUT, text=True, env=env))
        for line in procs[0].stdout:
            logs[0].write(line)
            logs[0].flush()  # so the log can be followed while training runs
            rec = parse_log_line(line)
            if rec is None:
                continue
            kind, stats = rec
            if kind == "train_inner":
                curve.append({k: v for k, v in stats.items() if k in ("num_updates", "loss", "lr", "wps", "bsz")
                              or k.endswith(("_loss", "_acc"))})
            elif kind == "valid":
                valid.append(stats)
            else:
                last_train = stats
            if on_stats:
                on_stats(kind, stats)
        codes = [p.wait() for p in procs]
    except BaseException:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        raise
    finally:
        for log in logs:
            log.close()
    if any(codes):
        tail = (out / "train.log").read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        raise XlingError("fairseq training failed (exit code " + ",".join(map(str, codes)) + "):\n    "
                         + "\n    ".join(tail), file=out / "train.log",
                         fix="read the log above; re-running resumes from checkpoint_last.pt")
    return curve, valid, last_train


def _checkpoint_updates(path: Path) -> int:
    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    hist = state.get("optimizer_history") or [{}]
    return int(hist[-1].get("num_updates", 0))


def write_model_dir(opts: PretrainOptions, info: DataInfo) -> Path:
    """``OUT/model``: the best (else last) checkpoint without optimizer state, dict.txt, spm model."""
    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    import torch

    ck = opts.checkpoint_dir
    src = ck / "checkpoint_best.pt" if (ck / "checkpoint_best.pt").exists() else ck / "checkpoint_last.pt"
    state = torch.load(src, map_location="cpu", weights_only=True)
    state.pop("last_optimizer_state", None)
    dest = Path(opts.out) / "model"
    with atomic_dir(dest) as tmp:
        torch.save(state, tmp / "model.pt")
        shutil.copyfile(Path(opts.data) / "dict.txt", tmp / "dict.txt")
        if (Path(opts.data) / "spm.model").exists():
            shutil.copyfile(Path(opts.data) / "spm.model", tmp / "sentencepiece.bpe.model")
    return dest


INIT_SHAPE_KEYS = ("encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_attention_heads",
                   "max_positions", "activation_fn", "encoder_normalize_before", "layernorm_embedding",
                   "untie_weights_roberta")


def _load_init(opts: PretrainOptions, info: DataInfo) -> tuple[dict, dict]:
    """The --init model's checkpoint state and its architecture options; checks its vocabulary."""
    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    import torch

    init = Path(opts.init)
    ck = init / "model.pt"
    if not ck.is_file():
        raise XlingError("--init must be a model directory holding model.pt and dict.txt", file=init,
                         fix="pass the directory written by `xling pretrain` (OUT/model) or `xling import`")
    if not (init / "dict.txt").is_file():
        raise XlingError("the --init model directory has no dict.txt", file=init)
    init_size, data_size = _dict_size(init / "dict.txt"), info.dict_size
    if init_size != data_size:
        raise XlingError(f"vocabulary mismatch: the --init model's dict.txt has {init_size} entries, the data's "
                         f"dict.txt has {data_size}", file=Path(opts.data) / "dict.txt",
                         fix="prepare the data with the model's vocabulary: `xling prep-data --vocab` on a "
                             "directory holding the model's sentencepiece.bpe.model (as spm.model) and dict.txt")
    pieces = [[ln.split()[0] for ln in (d / "dict.txt").read_text(encoding="utf-8").splitlines() if ln.strip()]
              for d in (init, Path(opts.data))]
    if pieces[0] != pieces[1]:
        raise XlingError("the --init model's dict.txt and the data's dict.txt list different pieces",
                         file=Path(opts.data) / "dict.txt", fix="prepare the data with the model's vocabulary")
    state = torch.load(ck, map_location="cpu", weights_only=True)
    cfg = state.get("cfg") or {}
    model_cfg = cfg.get("model") if isinstance(cfg, dict) else None
    if model_cfg is None:
        model_cfg = state.get("args")
    get = (lambda k: model_cfg.get(k)) if isinstance(model_cfg, dict) else (lambda k: getattr(model_cfg, k, None))
    shape = {k: get(k) for k in INIT_SHAPE_KEYS if get(k) is not None}
    emb = [v for k, v in state["model"].items() if k.endswith("embed_tokens.weight")]
    if emb and int(emb[0].shape[0]) not in (data_size + 4, data_size + 5):
        raise XlingError(f"vocabulary mismatch: the --init model has {int(emb[0].shape[0])} embedding rows, its "
                         f"dict.txt gives {data_size + 5}", file=ck)
    return state, shape


def init_args(shape: dict) -> list[str]:
    out = []
    for k, v in shape.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            out += [flag] if v else []
        else:
            out += [flag, str(v)]
    return out


def _prepare_init(opts: PretrainOptions, info: DataInfo, cmd: list[str], shape: dict, state: dict) -> None:
    """Write OUT/init/model.pt: the --init weights in this run's model, new parts (LM head, language
    embeddings, the <mask> row) taken from a freshly initialised model."""
    import torch
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    import xling.xlmplug  # noqa: F401

    dest = Path(opts.out) / "init" / "model.pt"
    if dest.exists():
        return
    args = options.parse_args_and_arch(options.get_training_parser(), cmd[3:])
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    fresh = task.build_model(cfg.model).state_dict()
    merged, kept, added = {}, 0, []
    src = state["model"]
    for k, v in fresh.items():
        w = src.get(k)
        if w is not None and tuple(w.shape) == tuple(v.shape):
            merged[k] = w
            kept += 1
        elif w is not None and k.endswith(("embed_tokens.weight", "lm_head.bias", "lm_head.weight")) \
                and w.shape[0] == v.shape[0] - 1 and w.shape[1:] == v.shape[1:]:
            merged[k] = torch.cat([w, v[-1:]])  # the source lacked <mask>
            kept += 1
        elif w is not None:
            raise XlingError(f"--init weight {k} has shape {tuple(w.shape)}, this run needs {tuple(v.shape)}",
                             file=Path(opts.init) / "model.pt")
        else:
            merged[k] = v
            added.append(k)
    if kept == 0:
        raise XlingError("no weight of the --init model matches a RoBERTa/XLM-R encoder",
                         file=Path(opts.init) / "model.pt")
    out_state = {k: v for k, v in state.items() if k not in ("last_optimizer_state",)}
    out_state["model"] = merged
    out_state["extra_state"] = {"init_added": added}
    out_state.setdefault("optimizer_history", [{"criterion_name": "MlmTlmLoss", "optimizer_name": "none",
                                                "lr_scheduler_state": {}, "num_updates": 0}])
    with atomic_path(dest) as tmp:
        torch.save(out_state, tmp)
