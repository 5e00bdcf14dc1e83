"""What a fairseq checkpoint holds (architecture, vocabulary, languages, updates, losses): `xling inspect`.

Reads the checkpoint with torch's safe loader (:func:`xling.fairseq_compat.ensure_fairseq`); no model
is built, so it works for any fairseq RoBERTa-style checkpoint, ours or XLM-R's.
"""
from __future__ import annotations

from pathlib import Path

from xling.errors import XlingError


def resolve_checkpoint(path: str | Path) -> Path:
    """A .pt file as is; a model directory's ``model.pt``; a pretrain run's last checkpoint."""
    p = Path(path)
    if p.is_file():
        return p
    for cand in (p / "model.pt", p / "checkpoints" / "checkpoint_last.pt", p / "checkpoint_last.pt"):
        if cand.is_file():
            return cand
    if not p.exists():
        raise XlingError("checkpoint does not exist", file=p, fix="pass a .pt file or a model directory")
    raise XlingError("no checkpoint found here (looked for model.pt, checkpoints/checkpoint_last.pt)", file=p,
                     fix="pass a .pt file, a model directory, or the --out of `xling pretrain`")


def _get(cfg, key, default=None):
    if cfg is None:
        return default
    if isinstance(cfg, dict):
        return cfg.get(key, default)
    return getattr(cfg, key, default)


def _meter(metrics_state: dict, group: str, name: str):
    """The average of meter ``name`` in the saved fairseq metrics aggregator ``group``, if any."""
    agg = (metrics_state or {}).get(group)
    if not agg:
        return None
    # fairseq saves an aggregator as [(priority, name, meter type, meter state), ...]
    entries = {e[1]: e[3] for e in agg if isinstance(e, (list, tuple)) and len(e) == 4}
    state = entries.get(name)
    if not isinstance(state, dict):
        return None
    if state.get("count"):
        return round(float(state["sum"]) / float(state["count"]), 4)
    return None


def count_parameters(weights: dict, untied: bool = False) -> int:
    """Parameters of a state dict, each tensor once: tensors sharing storage (fairseq's tied LM head is
    the token embedding) count once, and so does an LM-head weight saved as an equal copy of the token
    embedding in a checkpoint that ties them (``untie_weights_roberta`` off). fairseq's ``version``
    buffers are not parameters."""
    seen, total = set(), 0
    emb = next((v for k, v in weights.items() if k.endswith("embed_tokens.weight")), None)
    for k, v in weights.items():
        if not hasattr(v, "numel") or k.endswith((".version", "_float_tensor")):  # fairseq bookkeeping buffers
            continue
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape)) if v.numel() else None
        if key is not None and key in seen:
            continue
        if (not untied and k.endswith("lm_head.weight") and emb is not None and v is not emb
                and v.shape == emb.shape and bool((v == emb).all())):
            continue
        seen.add(key)
        total += v.numel()
    return int(total)


def trained_tasks(task_cfg) -> tuple[list[str], list[float] | None]:
    """The pretraining objectives of a checkpoint's task config, and their weights when weighted."""
    objectives = _get(task_cfg, "objectives", None)
    if objectives:
        names = [x for x in str(objectives).split(",") if x]
        weights = [float(x) for x in str(_get(task_cfg, "objective_weights", "") or "").split(",") if x]
        return names, weights or [1.0] * len(names)
    if _get(task_cfg, "_name", None) == "xling_dae":
        return ["xdae"], None
    ratio = float(_get(task_cfg, "tlm_ratio", 0.0) or 0.0)
    return (["mlm"] if ratio < 1 else []) + (["tlm"] if ratio > 0 else []), None


def masking(task_cfg) -> str:
    """How the masked-LM objectives chose their positions: ``tokens``, ``spans geometric p=.. max=..``, ``whole
    words`` (or both)."""
    p = float(_get(task_cfg, "mask_span_p", 0.0) or 0.0)
    parts = [f"spans geometric p={p:g} max={_get(task_cfg, 'max_span_len', 10)}"] if p > 0 else []
    if _get(task_cfg, "mask_whole_words", False):
        parts.append("whole words")
    return ", ".join(parts) or "tokens"


def inspect_checkpoint(path: str | Path) -> dict:
    from xling.pretrain.checkpoints import load_state

    ck = resolve_checkpoint(path)
    state = load_state(ck)  # a truncated or corrupt file is an XlingError naming it
    cfg = state.get("cfg") or {}
    model_cfg = _get(cfg, "model") or state.get("args")
    task_cfg = _get(cfg, "task") or state.get("args")
    weights = state["model"]
    emb = next((v for k, v in weights.items() if k.endswith("embed_tokens.weight")), None)
    layers = {int(k.split(".layers.")[1].split(".")[0]) for k in weights if ".layers." in k}
    hist = state.get("optimizer_history") or [{}]
    extra = state.get("extra_state") or {}
    metrics_state = extra.get("metrics") or {}
    langs = _get(task_cfg, "langs", "") or ""
    report = {
        "checkpoint": str(ck),
        "model": str(_get(model_cfg, "_name", None) or _get(model_cfg, "arch", "?")),
        "arch": str(_get(model_cfg, "arch", None) or _get(model_cfg, "_name", "?")),
        "task": str(_get(task_cfg, "_name", None) or _get(task_cfg, "task", "?")),
        "layers": len(layers),
        "embed_dim": int(emb.shape[1]) if emb is not None else None,
        "ffn_dim": _get(model_cfg, "encoder_ffn_embed_dim"),
        "heads": _get(model_cfg, "encoder_attention_heads"),
        "vocab_size": int(emb.shape[0]) if emb is not None else None,
        "parameters": count_parameters(weights, bool(_get(model_cfg, "untie_weights_roberta", False))),
        "lang_embeddings": any("embed_langs" in k for k in weights),
        "langs": [x for x in str(langs).split(",") if x],
        "pairs": [x for x in str(_get(task_cfg, "pairs", "") or "").split(",") if x],
        "tlm_ratio": _get(task_cfg, "tlm_ratio"),
        "masking": masking(task_cfg),
        "updates": int(hist[-1].get("num_updates", 0)),
        "epoch": _get(extra.get("train_iterator"), "epoch"),
        "train_loss": _meter(metrics_state, "train", "loss"),
        "train_mlm_loss": _meter(metrics_state, "train", "mlm_loss"),
        "train_tlm_loss": _meter(metrics_state, "train", "tlm_loss"),
        "valid_loss": (round(float(extra["val_loss"]), 4) if extra.get("val_loss") is not None else None),
        "has_optimizer_state": bool(state.get("last_optimizer_state")),
    }
    if report["arch"].startswith("xling_prophetnet"):  # the encoder-decoder's decoder
        report["decoder"] = f"prophetnet (ngram {_get(model_cfg, 'ngram', 2)})"
    elif report["model"] == "bart" or report["arch"].startswith("xling_dae"):
        report["decoder"] = "transformer"
    # an imported model (no update made here) was not trained with this task's objectives
    tasks, task_weights = trained_tasks(task_cfg) if report["updates"] else ([], None)
    report["tasks"] = tasks
    report["task_weights"] = task_weights
    from xling.xlmplug.objectives import OBJECTIVES  # which objectives log an accuracy

    for name in tasks:
        key = name.replace("-", "_")
        report[f"train_{key}_loss"] = _meter(metrics_state, "train", f"{key}_loss")
        if name in OBJECTIVES and OBJECTIVES[name].loss_kind.accuracy:
            report[f"train_{key}_acc"] = _meter(metrics_state, "train", f"{key}_acc")
    heads = state.get("criterion") or {}
    report["head_parameters"] = int(sum(v.numel() for k, v in heads.items()
                                        if hasattr(v, "numel") and not k.endswith(("_queue", "_queue_filled"))))
    return report
