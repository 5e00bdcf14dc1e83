"""``--init``: continue pretraining from a model directory. :func:`load_init` checks the model against the
data's vocabulary and reads its shape; the encoder's and the encoder-decoder's ``prepare_*`` functions write
``OUT/init/model.pt``, the run's fresh model with the ``--init`` weights put in, which fairseq loads with
``--finetune-from-model`` on the first launch."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from xling.errors import XlingError
from xling.io import atomic_path, read_json, write_json_atomic
from xling.pretrain.checkpoints import embedding_rows, load_state, model_option, model_options
from xling.pretrain.checks import dict_pieces
from xling.pretrain.command import init_checkpoint, parse_train_args, with_init_args
from xling.pretrain.options import DataInfo, PretrainOptions

INIT_SHAPE_KEYS = ("encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim", "encoder_attention_heads",
                   "max_positions", "activation_fn", "encoder_normalize_before", "layernorm_embedding",
                   "untie_weights_roberta")


def load_init(opts: PretrainOptions, info: DataInfo) -> tuple[dict, dict]:
    """The --init model's checkpoint state and its architecture options; checks its vocabulary."""
    init = Path(opts.init)
    ck = init / "model.pt"
    if not ck.is_file():
        raise XlingError("--init must be a model directory holding model.pt and dict.txt", file=init,
                         fix="pass the directory written by `xling pretrain` (OUT/model) or `xling import`")
    if not (init / "dict.txt").is_file():
        raise XlingError("the --init model directory has no dict.txt", file=init)
    pieces = [dict_pieces(d / "dict.txt") for d in (init, Path(opts.data))]
    init_size, data_size = len(pieces[0]), info.dict_size
    if init_size != data_size:
        raise XlingError(f"vocabulary mismatch: the --init model's dict.txt has {init_size} entries, the data's "
                         f"dict.txt has {data_size}", file=Path(opts.data) / "dict.txt",
                         fix="prepare the data with the model's vocabulary: `xling prep-data --vocab` on a "
                             "directory holding the model's sentencepiece.bpe.model (as spm.model) and dict.txt")
    if pieces[0] != pieces[1]:
        raise XlingError("the --init model's dict.txt and the data's dict.txt list different pieces",
                         file=Path(opts.data) / "dict.txt", fix="prepare the data with the model's vocabulary")
    state = load_state(ck)
    model_cfg = model_options(state)
    shape = {k: model_option(model_cfg, k) for k in INIT_SHAPE_KEYS if model_option(model_cfg, k) is not None}
    rows = embedding_rows(state)
    if rows is not None and rows not in (data_size + 4, data_size + 5):
        raise XlingError(f"vocabulary mismatch: the --init model has {rows} embedding rows, its "
                         f"dict.txt gives {data_size + 5}", file=ck)
    return state, shape


def add_init(opts: PretrainOptions, info: DataInfo, cmd: list[str], to_args: Callable[[dict], list[str]]
             ) -> tuple[list[str], Optional[dict]]:
    """With ``--init``: ``cmd`` with the model's shape as flags (``to_args(shape)``) and the model's state
    (loaded and checked, not yet written); without: ``(cmd, None)``."""
    if not opts.init:
        return cmd, None
    state, shape = load_init(opts, info)
    return with_init_args(cmd, to_args(shape)), state


def init_is_current(opts: PretrainOptions) -> bool:
    """Whether ``OUT/init/model.pt`` was prepared from the ``--init`` model now given (same directory, same
    weights and dictionary): else it is prepared again."""
    from xling.pretrain.identity import init_identity

    dest, src = init_checkpoint(opts), init_checkpoint(opts).with_name("source.json")
    return dest.is_file() and src.is_file() and read_json(src, "--init record") == init_identity(opts.init)


def save_init(opts: PretrainOptions, state: dict) -> None:
    """Write ``OUT/init/model.pt`` and the record of the ``--init`` model it came from."""
    import torch

    from xling.pretrain.identity import init_identity

    dest = init_checkpoint(opts)
    with atomic_path(dest) as tmp:
        torch.save(state, tmp)
    write_json_atomic(dest.with_name("source.json"), init_identity(opts.init))


def encoder_init_args(shape: dict) -> list[str]:
    """The --init model's options (:data:`INIT_SHAPE_KEYS`) as fairseq flags for an encoder."""
    out = []
    for k, v in shape.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            out += [flag] if v else []
        else:
            out += [flag, str(v)]
    return out


def prepare_encoder_init(opts: PretrainOptions, cmd: list[str], state: dict) -> None:
    """Write OUT/init/model.pt: the --init weights in this run's model, new parts (LM head, language
    embeddings, the <mask> row) taken from a freshly initialised model."""
    import torch

    if init_is_current(opts):
        return
    cfg, task = parse_train_args(cmd)
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
    out_state = {k: v for k, v in state.items() if k not in ("last_optimizer_state", "criterion")}
    out_state["model"] = merged
    # the objectives' heads (criterion parameters: rtd's generator, clwr's matrix...): the --init model's where
    # this run has the same head, else fresh (fairseq loads them strictly whenever the criterion has any)
    heads = task.build_criterion(cfg.criterion).state_dict()
    if heads:
        old = state.get("criterion") or {}
        out_state["criterion"] = {k: old[k] if k in old and tuple(old[k].shape) == tuple(v.shape) else v
                                  for k, v in heads.items()}
    out_state["extra_state"] = {"init_added": added}
    out_state.setdefault("optimizer_history", [{"criterion_name": "MlmTlmLoss", "optimizer_name": "none",
                                                "lr_scheduler_state": {}, "num_updates": 0}])
    save_init(opts, out_state)


ENCODER_SHAPE = {"encoder_layers": "layers", "encoder_embed_dim": "embed_dim",
                 "encoder_ffn_embed_dim": "ffn_embed_dim", "encoder_attention_heads": "attention_heads"}


def seq2seq_init_args(shape: dict) -> list[str]:
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


def prepare_seq2seq_init(opts: PretrainOptions, info: DataInfo, cmd: list[str], state: dict) -> dict:
    """Write OUT/init/model.pt: a fresh encoder-decoder whose encoder (layers, positions, embedding
    LayerNorm, token embeddings shared with the decoder) comes from the --init MLM/TLM model."""
    import torch

    cfg, task = parse_train_args(cmd)
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
    if not init_is_current(opts):
        save_init(opts, out_state)
    return {"copied": len(copied), "encoder_layer_tensors": n_layers}
