"""BERT / XLM-R tensors <-> xling's model directory (fairseq ``roberta`` checkpoint + dict + spm).

The checkpoint is made by fairseq itself: the arguments come from fairseq's own parser
(``--task masked_lm --arch roberta``), fairseq builds the model, and the converted tensors are
loaded into it with ``strict=True`` before it is saved, so a name or shape slip fails here, not in
a user's later run. The only hand-written part is the name table between the Hugging Face
BERT/XLM-R layout and fairseq's (no maintained converter exists: fairseq#1354,
transformers#13389) and the two layout differences it must bridge:

- positions: fairseq (like HF XLM-R) numbers them from ``padding_idx + 1 = 2``; BERT from 0.
- token types: fairseq has none; token type 0 is folded into the position table.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from xling.errors import XlingError

PAD = 1                       # fairseq padding_idx, also HF XLM-R's pad_token_id
POS_OFFSET = PAD + 1          # fairseq learned positions start here
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]

# HF layer name -> fairseq layer name (weight and bias alike)
_LAYER = {
    "attention.self.query": "self_attn.q_proj",
    "attention.self.key": "self_attn.k_proj",
    "attention.self.value": "self_attn.v_proj",
    "attention.output.dense": "self_attn.out_proj",
    "attention.output.LayerNorm": "self_attn_layer_norm",
    "intermediate.dense": "fc1",
    "output.dense": "fc2",
    "output.LayerNorm": "final_layer_norm",
}
_HEAD = {"dense": "dense", "layer_norm": "layer_norm"}
ENC = "encoder.sentence_encoder."


@dataclass
class Dims:
    layers: int
    hidden: int
    heads: int
    ffn: int
    max_positions: int      # usable token positions (512 for XLM-R / BERT base)


def fairseq_args(dims: Dims, data: str | Path) -> argparse.Namespace:
    """A complete fairseq argument namespace for a post-LN ``roberta`` masked-LM model."""
    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    from fairseq import options

    parser = options.get_training_parser()
    argv = [str(data), "--task", "masked_lm", "--criterion", "masked_lm", "--arch", "roberta",
            "--encoder-layers", str(dims.layers), "--encoder-embed-dim", str(dims.hidden),
            "--encoder-attention-heads", str(dims.heads), "--encoder-ffn-embed-dim", str(dims.ffn),
            "--max-positions", str(dims.max_positions), "--tokens-per-sample", str(dims.max_positions),
            "--activation-fn", "gelu"]
    args = options.parse_args_and_arch(parser, argv)
    args.encoder_normalize_before = False
    args.layernorm_embedding = True
    return args


def hf_to_fairseq(hf: dict, layers: int, *, bert_positions: bool, vocab: int, prefix: str = "") -> dict:
    """Map HF BERT/XLM-R tensors (torch) to fairseq ``roberta`` names.

    ``bert_positions``: positions numbered from 0 (BERT) and so shifted by :data:`POS_OFFSET`;
    otherwise they are already XLM-R-numbered. Word embeddings are cut to ``vocab`` rows. An MLM head
    (HF ``lm_head.*`` or BERT ``cls.predictions.*``) is carried over when present.
    """
    import torch

    def get(name, required=True):
        key = prefix + name
        if key not in hf:
            if required:
                raise XlingError(f"weight {key!r} is missing", fix="pass a complete BERT / XLM-R checkpoint")
            return None
        return hf[key].float()

    out = {}
    word = get("embeddings.word_embeddings.weight")
    if word.shape[0] < vocab:
        raise XlingError(f"the embedding has {word.shape[0]} rows but the vocabulary has {vocab} entries",
                         fix="the tokenizer does not belong to these weights")
    out[ENC + "embed_tokens.weight"] = word[:vocab].clone()
    pos = get("embeddings.position_embeddings.weight")
    ttype = get("embeddings.token_type_embeddings.weight", required=False)
    hidden = word.shape[1]
    if bert_positions:
        table = torch.zeros(pos.shape[0] + POS_OFFSET, hidden)
        table[POS_OFFSET:] = pos
    else:
        table = pos.clone()
    if ttype is not None:
        table[POS_OFFSET:] += ttype[0]
    out[ENC + "embed_positions.weight"] = table
    out[ENC + "layernorm_embedding.weight"] = get("embeddings.LayerNorm.weight")
    out[ENC + "layernorm_embedding.bias"] = get("embeddings.LayerNorm.bias")
    for i in range(layers):
        for src, dst in _LAYER.items():
            for p in ("weight", "bias"):
                out[f"{ENC}layers.{i}.{dst}.{p}"] = get(f"encoder.layer.{i}.{src}.{p}")
    head = {}
    if "lm_head.dense.weight" in hf:
        head = {"dense": "lm_head.dense", "layer_norm": "lm_head.layer_norm", "bias": "lm_head.bias",
                "decoder": "lm_head.decoder.weight"}
    elif "cls.predictions.transform.dense.weight" in hf:
        head = {"dense": "cls.predictions.transform.dense", "layer_norm": "cls.predictions.transform.LayerNorm",
                "bias": "cls.predictions.bias", "decoder": "cls.predictions.decoder.weight"}
    if head:
        for part in ("dense", "layer_norm"):
            for p in ("weight", "bias"):
                out[f"encoder.lm_head.{part}.{p}"] = hf[f"{head[part]}.{p}"].float()
        bias = hf.get(head["bias"], hf.get("lm_head.decoder.bias"))
        if bias is None:
            raise XlingError("the MLM head has no output bias", fix="pass a complete masked-LM checkpoint")
        out["encoder.lm_head.bias"] = bias.float()[:vocab].clone()
        if head["decoder"] in hf:
            out["encoder.lm_head.weight"] = hf[head["decoder"]].float()[:vocab].clone()
    return out


def fairseq_to_hf(state: dict, layers: int) -> dict:
    """Map fairseq ``roberta`` tensors to HF ``XLMRobertaForMaskedLM`` names."""
    import torch

    used = set()

    def get(key):
        if key not in state:
            raise XlingError(f"weight {key!r} is missing from the checkpoint",
                             fix="export a fairseq roberta (XLM-R layout) model")
        used.add(key)
        return state[key]

    emb = get(ENC + "embed_tokens.weight")
    out = {
        "roberta.embeddings.word_embeddings.weight": emb,
        "roberta.embeddings.position_embeddings.weight": get(ENC + "embed_positions.weight"),
        "roberta.embeddings.token_type_embeddings.weight": torch.zeros(1, emb.shape[1], dtype=emb.dtype),
        "roberta.embeddings.LayerNorm.weight": get(ENC + "layernorm_embedding.weight"),
        "roberta.embeddings.LayerNorm.bias": get(ENC + "layernorm_embedding.bias"),
    }
    for i in range(layers):
        for src, dst in _LAYER.items():
            for p in ("weight", "bias"):
                out[f"roberta.encoder.layer.{i}.{src}.{p}"] = get(f"{ENC}layers.{i}.{dst}.{p}")
    for part in ("dense", "layer_norm"):
        for p in ("weight", "bias"):
            out[f"lm_head.{part}.{p}"] = get(f"encoder.lm_head.{part}.{p}")
    out["lm_head.bias"] = get("encoder.lm_head.bias")
    out["lm_head.decoder.weight"] = get("encoder.lm_head.weight")
    if ENC + "embed_langs.weight" in state:
        raise XlingError("the model has XLM language embeddings (--lang-embeddings); Hugging Face XLM-R has none",
                         fix="export a model pretrained without --lang-embeddings")
    left = sorted(k for k in state if k not in used and not k.endswith(".version")
                  and not k.startswith("classification_heads."))
    if left:
        raise XlingError(f"weights with no Hugging Face XLM-R place: {', '.join(left[:5])}",
                         fix="export a plain encoder (XLM-R layout) model")
    return out


def write_dict(path: Path, pieces: list[str]) -> None:
    """fairseq ``dict.txt``: one ``piece count`` line per ordinary piece (count unknown: 1)."""
    for p in pieces:
        if not p or any(ch in p for ch in " \n\r\t") or p in SPECIALS or p == "<mask>":
            raise XlingError(f"vocabulary piece {p!r} cannot be written to a fairseq dict.txt",
                             fix="the source vocabulary is corrupt")
    path.write_text("".join(f"{p} 1\n" for p in pieces), encoding="utf-8")


def write_model_dir(tmp: Path, tensors: dict, dims: Dims, pieces: list[str], spm_model: bytes, *,
                    seed: int = 0) -> dict:
    """Write ``model.pt``, ``dict.txt``, ``sentencepiece.bpe.model`` into ``tmp``.

    ``tensors`` are fairseq-named; what they lack of the LM head is freshly initialized by fairseq
    (seeded). Returns a summary: parameter count and which tensors were freshly initialized.
    """
    import torch

    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    from fairseq import tasks

    write_dict(tmp / "dict.txt", pieces)
    (tmp / "sentencepiece.bpe.model").write_bytes(spm_model)
    args = fairseq_args(dims, tmp)
    task = tasks.setup_task(args)
    torch.manual_seed(seed)
    model = task.build_model(args)
    full = model.state_dict()
    for k, v in tensors.items():
        if k not in full:
            raise XlingError(f"converted weight {k!r} has no place in a fairseq roberta model",
                             fix="report this as a bug in the converter")
        if tuple(v.shape) != tuple(full[k].shape):
            raise XlingError(f"weight {k!r} has shape {tuple(v.shape)}, the model expects "
                             f"{tuple(full[k].shape)}", fix="the config and the weights disagree")
    fresh = sorted(k for k in full if k not in tensors and not k.endswith(".version"))
    bad = [k for k in fresh if not k.startswith("encoder.lm_head.")]
    if bad:
        raise XlingError(f"weights missing from the source: {', '.join(bad[:5])}",
                         fix="pass a complete encoder checkpoint")
    merged = dict(full)
    merged.update(tensors)
    if not args.untie_weights_roberta and "encoder.lm_head.weight" not in tensors:
        merged["encoder.lm_head.weight"] = merged[ENC + "embed_tokens.weight"]
    if "encoder.lm_head.weight" in tensors and not torch.equal(tensors["encoder.lm_head.weight"],
                                                                merged[ENC + "embed_tokens.weight"]):
        raise XlingError("the source's LM decoder is not tied to its word embeddings",
                         fix="xling model directories use tied (XLM-R style) output embeddings")
    model.load_state_dict(merged, strict=True)
    args.data = "."
    import warnings

    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from omegaconf import OmegaConf

    with warnings.catch_warnings():   # hydra deprecation noise
        warnings.simplefilter("ignore")
        cfg = convert_namespace_to_omegaconf(args)
    # what fairseq-train itself stores: a plain-dict "cfg" (legacy model args as a Namespace in it)
    ckpt = {"args": None, "cfg": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
            "model": model.state_dict(), "extra_state": {"train_iterator": None},
            "optimizer_history": [{"criterion_name": "MaskedLmLoss", "optimizer_name": "none",
                                   "lr_scheduler_state": {"best": None}, "num_updates": 0}],
            "last_optimizer_state": None}
    torch.save(ckpt, tmp / "model.pt")
    n_params = sum(p.numel() for p in model.parameters())
    return {"parameters": n_params, "vocab": len(task.source_dictionary), "fresh": [k for k in fresh
            if not (k == "encoder.lm_head.weight" and not args.untie_weights_roberta)]}


def load_checkpoint(model_dir: Path):
    """(state_dict, fairseq cfg.model namespace) of a model directory, with clear errors."""
    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    from fairseq import checkpoint_utils

    check_model_dir(model_dir)
    import importlib
    import warnings

    for plugin in ("xling.xlmplug", "xling.fairseq_plugin"):   # models written by `xling pretrain`
        try:
            importlib.import_module(plugin)
        except ImportError:
            pass

    try:
        with warnings.catch_warnings():   # hydra deprecation noise from fairseq's config upgrade
            warnings.simplefilter("ignore")
            state = checkpoint_utils.load_checkpoint_to_cpu(str(model_dir / "model.pt"),
                                                            arg_overrides={"data": str(model_dir)})
    except XlingError:
        raise
    except Exception as e:  # truncated zip, pickle errors, ...
        raise XlingError(f"cannot read the checkpoint ({type(e).__name__}: {str(e)[:200]})",
                         file=model_dir / "model.pt",
                         fix="the file is truncated or not a fairseq checkpoint; re-create it") from None
    cfg = state["cfg"]
    return upgrade_names(state["model"]), cfg.model, cfg


def upgrade_names(sd: dict) -> dict:
    """Older fairseq RoBERTa / XLM-R checkpoints (the published XLM-R ones among them) name the
    encoder ``decoder.*`` and the embedding LayerNorm ``emb_layer_norm``; fairseq renames them only
    when it builds the model (``RobertaModel.upgrade_state_dict_named``), so do the same here."""
    out = {}
    for k, v in sd.items():
        if k.startswith("decoder."):
            k = "encoder." + k[len("decoder."):]
        out[k.replace(".emb_layer_norm.", ".layernorm_embedding.")] = v
    return out


def check_model_dir(model_dir: Path) -> None:
    """Raise an XlingError naming every file a model directory lacks."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise XlingError("model directory does not exist", file=model_dir,
                         fix="pass a directory written by `xling import` or `xling pretrain`")
    from xling.modeling import REQUIRED

    missing = [n for n in REQUIRED if not (model_dir / n).is_file()]
    if missing:
        raise XlingError(f"not a model directory: missing {', '.join(missing)}", file=model_dir,
                         fix="a model directory holds model.pt, dict.txt and sentencepiece.bpe.model "
                             "(fairseq XLM-R layout); create one with `xling import`")
