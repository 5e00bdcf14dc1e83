"""What a pretraining run *is*, so that a re-run resumes only the same run.

:func:`run_identity` is stored in ``OUT/run.json`` when a run starts: the data (hashes of ``dict.txt``,
``spm.model`` and the manifest, the languages and pairs), the model (architecture, ``--init`` weights),
the objectives and the schedule, each as the fairseq flags that set it. Where it stops (``--max-update``),
logging, devices and data parallelism are not part of it: extending a run or moving it to more GPUs
resumes it. The batch is (``batch size``: sequences per update over all ranks), but not how it is split into
micro-batches on the devices (:mod:`xling.pretrain.batching`), unless fairseq's own batching flags are given
after ``--``. :func:`check_identity` refuses to resume ``checkpoint_last.pt`` under another identity
(``--force-resume`` overrides; the change is then kept in ``run.json``'s ``launches`` and
``pretrain.json``). The same identity decides when a re-run is skipped: ``pretrain.json``'s ``fingerprint``
is its hash, and a finished run (``num_updates >= --max-updates``) of that fingerprint is not run again."""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Optional

from xling.errors import XlingError
from xling.io import read_json, sha256_file, sha256_text, write_json_atomic
from xling.pretrain.batching import LAYOUT_FLAGS
from xling.pretrain.options import DataInfo, PretrainOptions

RUN_FILE = "run.json"
BATCH_KEY = "batch size"  # the schedule's sequences per update over all ranks

# flags that do not change what is trained: where it stops, logging, saving, devices, data parallelism
NOT_IDENTITY = {"--max-update", "--log-interval", "--log-format", "--save-dir", "--no-epoch-checkpoints",
                "--save-interval-updates", "--keep-interval-updates", "--cpu",
                "--distributed-world-size", "--ddp-backend", "--distributed-init-method", "--distributed-rank",
                "--distributed-backend", "--device-id", "--distributed-no-spawn", "--num-workers",
                "--disable-validation", "--finetune-from-model", "--fp16", "--bf16",
                "--skip-invalid-size-inputs-valid-test", "--tensorboard-logdir", "--wandb-project",
                # how fast, not what: the same training compiled or eager, with or without padded LM-head rows
                "--compile-layers", "--compile-mode", "--compile-loss", "--lm-head-pad", "--amp-bf16",
                "--memory-efficient-bf16", "--memory-efficient-fp16"}
FOLLOWS_LENGTH = {"--total-num-update", "--warmup-updates"}  # derived from --max-updates unless --total-updates
DATA_FLAGS = {"--langs", "--pairs"}
OBJECTIVE_FLAGS = {"--task", "--criterion", "--objectives", "--objective-weights", "--tlm-ratio", "--lang-embeddings",
                   "--mask-span-p", "--max-span-len", "--mask-whole-words", "--rtd-weight", "--rtd-temperature",
                   "--rtd-generator-width", "--rtd-generator-layers", "--rtd-generator-heads", "--ngram", "--ngram-decay",
                   "--label-smoothing", "--mask", "--mask-length", "--replace-length",
                   "--poisson-lambda", "--mask-random", "--permute-sentences", "--insert", "--rotate",
                   "--word-shuffle", "--word-dropout", "--word-blank"}
MODEL_PREFIXES = ("--arch", "--encoder-", "--decoder-", "--max-positions", "--activation-fn",
                  "--layernorm-embedding", "--untie-weights-roberta")


def flag_values(cmd: list[str]) -> dict[str, str]:
    """``{flag: value}`` of a fairseq command after its data argument (``True`` for switches)."""
    return parse_flags(cmd[4:])


def parse_flags(args: list[str]) -> dict[str, str]:
    """``{flag: value}`` of fairseq arguments (``True`` for switches; the last of a repeated flag)."""
    out, i = {}, 0
    while i < len(args):
        a = args[i]
        if a.startswith("--"):
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                out[a], i = args[i + 1], i + 2
                continue
            out[a] = True
        i += 1
    return out


def user_flags(opts: PretrainOptions) -> set[str]:
    """The fairseq flags the user gave after ``--``."""
    return set(parse_flags(list(opts.extra)))


def _file_hash(path: Path) -> Optional[str]:
    return sha256_file(path) if path.is_file() else None


def init_identity(init: Optional[Path]) -> Optional[dict]:
    """The ``--init`` model: where it is and the hashes of its weights and dictionary."""
    if not init:
        return None
    init = Path(init)
    return {"dir": str(init.resolve()), "model.pt": _file_hash(init / "model.pt"),
            "dict.txt": _file_hash(init / "dict.txt")}


def run_identity(opts: PretrainOptions, info: DataInfo, cmd: list[str], batch_size: int) -> dict:
    """Data, model, objectives and schedule of the run ``cmd`` of ``batch_size`` sequences per update (see the
    module docstring)."""
    data = Path(opts.data)
    ident = {"data": {"dict.txt": _file_hash(data / "dict.txt"), "spm.model": _file_hash(data / "spm.model"),
                      "manifest": sha256_text(json.dumps(info.manifest, sort_keys=True, default=str))},
             "model": {"init": init_identity(opts.init)}, "objectives": {},
             "schedule": {BATCH_KEY: batch_size}}
    users = user_flags(opts)
    for flag, value in flag_values(cmd).items():
        if flag in NOT_IDENTITY or (flag in FOLLOWS_LENGTH and opts.total_updates is None) or \
                (flag in LAYOUT_FLAGS and flag not in users):
            continue
        group = ("data" if flag in DATA_FLAGS else "objectives" if flag in OBJECTIVE_FLAGS
                 else "model" if flag.startswith(MODEL_PREFIXES) else "schedule")
        ident[group][flag] = value
    return ident


def changes(old: dict, new: dict) -> list[str]:
    """``group key: old -> new`` for each difference between two identities."""
    out = []
    for group in sorted(set(old) | set(new)):
        a, b = old.get(group) or {}, new.get(group) or {}
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                out.append(f"{group} {key}: {_short(a.get(key))} -> {_short(b.get(key))}")
    return out


def _short(v) -> str:
    if v is None:
        return "(not set)"
    if isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v):
        return "sha256 " + v[:12]
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_short(x)}" for k, x in v.items()) + "}"
    return str(v)


def read_run(out: Path) -> Optional[dict]:
    path = Path(out) / RUN_FILE
    return read_json(path, "run record") if path.is_file() else None


def check_identity(opts: PretrainOptions, ident: dict, force: bool = False) -> list[str]:
    """Before training: when ``checkpoint_last.pt`` would be resumed, the run's stored identity must be
    ``ident``; return what changed (empty when nothing did, or nothing is resumed)."""
    last = opts.checkpoint_dir / "checkpoint_last.pt"
    run = read_run(Path(opts.out))
    if not last.exists() or run is None:
        return []
    changed = changes(_comparable(run.get("identity") or {}, ident), ident)
    if changed and not force:
        raise XlingError("this run directory was started with other data, model, objectives or schedule, and "
                         "resuming its checkpoint_last.pt would mix them: " + "; ".join(changed),
                         file=Path(opts.out) / RUN_FILE,
                         fix="re-run with the original options (a larger --max-updates is fine), choose a new "
                             "--out, or pass --force-resume to continue the checkpoint under the new options")
    return changed


def _comparable(old: dict, new: dict) -> dict:
    """A stored identity as this version writes it: one written before the batch was recorded as sequences per
    update over all ranks kept its micro-batch flags instead, which said nothing of the ranks; its batch is
    then taken to be ``new``'s."""
    schedule = old.get("schedule") or {}
    if BATCH_KEY in schedule or "--update-freq" not in schedule:
        return old
    kept = {k: v for k, v in schedule.items() if k not in LAYOUT_FLAGS}
    return {**old, "schedule": {**kept, BATCH_KEY: (new.get("schedule") or {}).get(BATCH_KEY)}}


def record_launch(opts: PretrainOptions, ident: dict, cmd: list[str], from_update: int, max_updates: int,
                  changed: list[str]) -> dict:
    """Append this launch to ``OUT/run.json`` (the identity becomes the new one); return the record."""
    out = Path(opts.out)
    last = opts.checkpoint_dir / "checkpoint_last.pt"
    run = read_run(out) if last.exists() else None
    launches = (run or {}).get("launches", [])
    launches.append({"from_update": from_update, "max_updates": max_updates, "command": shlex.join(cmd),
                     **({"changed": changed, "force_resume": True} if changed else {})})
    run = {"kind": "xling-pretrain-run", "identity": ident, "launches": launches}
    write_json_atomic(out / RUN_FILE, run)
    return run
