"""``xling pretrain --arch seq2seq --tasks xdae``: multilingual denoising pretraining of an encoder-decoder.

The encoder-decoder counterpart of :mod:`xling.pretrain` (which it reuses for input checks, process
launching, log following, fingerprints and the model directory): :func:`build_command` turns
:class:`~xling.pretrain.PretrainOptions` plus :class:`NoiseOptions` into a fairseq command with the
plugin's ``xling_dae`` task (mBART-style language tokens, alpha language sampling, the xDAE noise set)
and a ``xling_dae_{tiny,base,large}`` architecture (fairseq's ``bart``), trained with label-smoothed
cross-entropy. ``OUT/model/`` is a model directory as for encoders (``model.pt``, ``dict.txt``,
``sentencepiece.bpe.model``); the language list is in the checkpoint's task config.
"""
from __future__ import annotations

import shlex
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Optional

from xling import pretrain as lib
from xling.errors import XlingError
from xling.io import atomic_path, read_json, write_json_atomic

TASKS = ("xdae",)
PRESETS = {
    "tiny": dict(arch="xling_dae_tiny", tokens_per_sample=64, batch_size=16, lr=1e-3, warmup=20,
                 max_updates=300, update_freq=1, log_interval=10, weight_decay=0.01),
    "base": dict(arch="xling_dae_base", tokens_per_sample=512, batch_size=16, lr=3e-4, warmup=10000,
                 max_updates=250000, update_freq=8, log_interval=100, weight_decay=0.01),
    "large": dict(arch="xling_dae_large", tokens_per_sample=512, batch_size=8, lr=3e-4, warmup=10000,
                  max_updates=250000, update_freq=16, log_interval=100, weight_decay=0.01),
}


@dataclass
class NoiseOptions:
    """One rate per noise (0 switches it off); defaults follow mBART (span infilling 35 % of the words,
    Poisson lambda 3.5, all sentences permuted)."""
    mask: float = 0.35  # fraction of words in masked spans (text infilling: one <mask> per span)
    poisson_lambda: float = 3.5  # mean span length
    permute_sentences: float = 1.0  # fraction of sentences shuffled
    insert: float = 0.0  # inserted <mask>/random tokens, as a fraction of the length
    rotate: float = 0.0  # probability of rotating the document to start at a random token
    word_shuffle: float = 0.0  # XLM: maximal displacement of a word (0/1: off)
    word_dropout: float = 0.0  # XLM: probability of dropping a word
    word_blank: float = 0.0  # XLM: probability of blanking a word
    mask_random: float = 0.1  # share of masked spans/insertions that get a random token instead of <mask>

    def check(self) -> None:
        for name, v in asdict(self).items():
            if name == "poisson_lambda":
                if v <= 0:
                    raise XlingError(f"--poisson-lambda must be positive, got {v}")
            elif name == "word_shuffle":
                if v < 0:
                    raise XlingError(f"--word-shuffle must be >= 0 (a distance in words), got {v}")
            elif not 0.0 <= v <= 1.0:
                raise XlingError(f"--{name.replace('_', '-')} must be within [0, 1], got {v}")

    def args(self) -> list[str]:
        return ["--mask", str(self.mask), "--mask-length", "span-poisson", "--replace-length", "1",
                "--poisson-lambda", str(self.poisson_lambda), "--mask-random", str(self.mask_random),
                "--permute-sentences", str(self.permute_sentences), "--insert", str(self.insert),
                "--rotate", str(self.rotate), "--word-shuffle", str(self.word_shuffle),
                "--word-dropout", str(self.word_dropout), "--word-blank", str(self.word_blank)]


def check(opts: lib.PretrainOptions, noise: NoiseOptions) -> lib.DataInfo:
    """Validate every input before anything runs (data via :func:`xling.pretrain.check`)."""
    if opts.tasks and any(t not in TASKS for t in opts.tasks):
        raise XlingError(f"--arch seq2seq trains {', '.join(TASKS)}, not "
                         f"{', '.join(t for t in opts.tasks if t not in TASKS)}",
                         fix="use --tasks xdae with --arch seq2seq (mlm, tlm, ... train an encoder: --arch encoder)")
    if opts.tlm or opts.pairs or opts.tlm_ratio:
        raise XlingError("--tlm / --pairs / --tlm-ratio are encoder options; --arch seq2seq denoises monolingual data")
    if opts.lang_embeddings or opts.mask_span_p:
        raise XlingError("--lang-embeddings / --mask-span-p are encoder options",
                         fix="with --arch seq2seq the language token and --mask/--poisson-lambda do that")
    noise.check()
    # the data checks are the encoder's; its objectives (--tasks) do not apply here
    plain = replace(opts, tasks=None, task_weights=None)
    info = lib.check(plain, resume_check=False)
    lib.check_resume(opts, vocab_rows(info), f"{info.dict_size} entries of dict.txt + 4 specials + "
                     f"{len(info.langs)} language tokens + <mask>", PRESETS[opts.preset]["arch"])
    return info


def vocab_rows(info: lib.DataInfo) -> int:
    """Embedding rows of the model: fairseq's 4 specials, dict.txt, one [lang] per language, <mask>."""
    return info.dict_size + 4 + len(info.langs) + 1


def build_command(opts: lib.PretrainOptions, info: lib.DataInfo, noise: NoiseOptions) -> list[str]:
    p = PRESETS[opts.preset]
    cmd = [
        sys.executable, "-m", "xling.xlmplug.train", str(Path(opts.data).resolve()),
        "--task", "xling_dae", "--langs", ",".join(info.langs), "--multilang-sampling-alpha", str(opts.alpha),
        "--sample-break-mode", "complete", "--tokens-per-sample", str(p["tokens_per_sample"]),
        *noise.args(),
        "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1", "--arch", p["arch"],
        *lib.trainer_args(opts, p),
    ]
    return cmd + lib.launch_args(opts, info.validate)


ENCODER_SHAPE = {"encoder_layers": "layers", "encoder_embed_dim": "embed_dim",
                 "encoder_ffn_embed_dim": "ffn_embed_dim", "encoder_attention_heads": "attention_heads"}


def init_args(shape: dict) -> list[str]:
    """Model size options copied from the --init encoder, applied to both encoder and decoder."""
    out = []
    for key, suffix in ENCODER_SHAPE.items():
        if key in shape:
            out += [f"--encoder-{suffix.replace('_', '-')}", str(shape[key]),
                    f"--decoder-{suffix.replace('_', '-')}", str(shape[key])]
    return out


def encoder_key(name: str) -> Optional[str]:
    """The xling/RoBERTa encoder parameter that initialises the seq2seq parameter ``name`` (or None)."""
    if not name.startswith("encoder."):
        return None
    return "encoder.sentence_encoder." + name[len("encoder."):]


def _prepare_init(opts: lib.PretrainOptions, info: lib.DataInfo, cmd: list[str], state: dict) -> dict:
    """Write OUT/init/model.pt: a fresh encoder-decoder whose encoder (layers, positions, embedding
    LayerNorm, token embeddings shared with the decoder) comes from the --init MLM/TLM model."""
    import torch
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    import xling.xlmplug  # noqa: F401

    dest = Path(opts.out) / "init" / "model.pt"
    args = options.parse_args_and_arch(options.get_training_parser(), cmd[3:])
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    torch.manual_seed(opts.seed)
    fresh = task.build_model(cfg.model).state_dict()
    src = state["model"]
    n_base = info.dict_size + 4
    merged, copied = dict(fresh), []
    emb_src = src.get("encoder.sentence_encoder.embed_tokens.weight")
    for k, v in fresh.items():
        if k.endswith("embed_tokens.weight") or k == "decoder.output_projection.weight":
            if emb_src is None or emb_src.shape[1] != v.shape[1]:
                raise XlingError("the --init model's token embeddings do not fit this model",
                                 file=Path(opts.init) / "model.pt")
            w = v.clone()
            w[:n_base] = emb_src[:n_base]
            if emb_src.shape[0] == n_base + 1:  # the MLM model's <mask> row
                w[task.mask_idx] = emb_src[n_base]
            merged[k] = w
            copied.append(k)
            continue
        sk = encoder_key(k)
        w = src.get(sk) if sk else None
        if w is None:
            continue
        if k.endswith("embed_positions.weight"):
            n = min(w.shape[0], v.shape[0])
            merged[k] = torch.cat([w[:n], v[n:]]) if w.shape[1:] == v.shape[1:] else v
        elif tuple(w.shape) != tuple(v.shape):
            raise XlingError(f"--init weight {sk} has shape {tuple(w.shape)}, this model needs {tuple(v.shape)}",
                             file=Path(opts.init) / "model.pt")
        else:
            merged[k] = w
        copied.append(k)
    n_layers = sum(1 for k in copied if k.startswith("encoder.layers."))
    if n_layers == 0:
        raise XlingError("no encoder layer of the --init model matches this encoder-decoder",
                         file=Path(opts.init) / "model.pt", fix="give an xling MLM/TLM (RoBERTa-layout) model")
    out_state = {"cfg": state.get("cfg"), "args": None, "model": merged,
                 "optimizer_history": [{"criterion_name": "LabelSmoothedCrossEntropyCriterion",
                                        "optimizer_name": "none", "lr_scheduler_state": {}, "num_updates": 0}],
                 "extra_state": {"init_copied": len(copied)}}
    if not dest.exists():
        with atomic_path(dest) as tmp:
            torch.save(out_state, tmp)
    return {"copied": len(copied), "encoder_layer_tensors": n_layers}


def command_for(opts: lib.PretrainOptions, noise: NoiseOptions) -> tuple[lib.DataInfo, list[str], Optional[dict]]:
    """Checked inputs, the fairseq command, and the --init state (loaded, not yet written)."""
    info = check(opts, noise)
    cmd = build_command(opts, info, noise)
    init_state = None
    if opts.init:
        init_state, shape = lib._load_init(opts, info)
        i = cmd.index("--finetune-from-model")
        cmd = cmd[:i] + init_args(shape) + cmd[i:]
    return info, cmd, init_state


def pretrain(opts: lib.PretrainOptions, noise: NoiseOptions,
             on_stats: Optional[Callable[[str, dict], None]] = None) -> dict:
    """Run (or resume, or skip when finished) a denoising pretraining run; return the summary written
    to ``OUT/pretrain.json`` (same keys as the encoder's, plus ``arch`` and ``noise``)."""
    info, cmd, init_state = command_for(opts, noise)
    out = Path(opts.out)
    summary_path = out / "pretrain.json"
    fp = lib._fingerprint(opts, cmd, info)
    max_updates = opts.max_updates or PRESETS[opts.preset]["max_updates"]
    old = read_json(summary_path, "pretrain summary") if summary_path.exists() else None
    if old and old.get("fingerprint") == fp and (out / "model" / "model.pt").exists() \
            and old.get("num_updates", 0) >= max_updates:
        old["skipped"] = True
        return old
    init_info = _prepare_init(opts, info, cmd, init_state) if init_state is not None else None
    curve, valid, last_train = lib.run_ranks(opts, cmd, on_stats)
    last = opts.checkpoint_dir / "checkpoint_last.pt"
    if not last.exists():
        raise XlingError("fairseq finished without writing checkpoint_last.pt", file=opts.checkpoint_dir)
    num_updates = lib._checkpoint_updates(last)
    if old and old.get("fingerprint") == fp and curve:
        first = curve[0]["num_updates"]
        curve = [c for c in old.get("curve", []) if c["num_updates"] < first] + curve
        valid = [v for v in old.get("valid", []) if v.get("valid_num_updates", 0) < first] + valid
    model_dir = lib.write_model_dir(opts, info)
    summary = {
        "kind": "xling-pretrain", "arch": "seq2seq", "tasks": list(TASKS), "task_weights": [1.0], "fingerprint": fp,
        "preset": opts.preset, "langs": info.langs, "pairs": [], "tlm_ratio": 0.0, "alpha": opts.alpha,
        "noise": asdict(noise), "init": init_info, "num_updates": num_updates, "command": shlex.join(cmd),
        "curve": curve, "valid": valid, "last_epoch": last_train, "model_dir": str(model_dir), "skipped": False,
    }
    write_json_atomic(summary_path, summary)
    return summary
