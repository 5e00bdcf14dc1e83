"""``xling export hf`` / ``xling import hf``: xling model directories <-> Hugging Face.

Export writes ``config.json`` + ``model.safetensors`` (``XLMRobertaForMaskedLM``) and the tokenizer
files, all through ``transformers`` (an optional extra: ``pip install xling[hf]``); the tokenizer is
``XLMRobertaTokenizer`` converted by transformers from our ``sentencepiece.bpe.model``. Import needs
only ``safetensors``: it reads ``config.json``, the weights and the SentencePiece tokenizer
(``sentencepiece.bpe.model``, or a Unigram ``tokenizer.json`` rebuilt into one) of an XLM-R or
BERT-family (XLM-R-vocabulary, e.g. multilingual-e5) model. The name table lives in
:mod:`xling.convert.layout`.
"""
from __future__ import annotations

import base64
import shutil
import time
from pathlib import Path

from xling.convert import layout
from xling.errors import XlingError
from xling.io import atomic_dir, read_json, write_json_atomic
from xling.outputs import needing

CONVERTER = "xling.convert.hf/1"


def _finished(record: Path, fingerprint: dict) -> dict | None:
    """The record of an earlier run with this exact fingerprint (marked skipped), else None."""
    if not record.is_file():
        return None
    info = read_json(record)
    if info.get("fingerprint") != fingerprint:
        return None
    info["skipped"] = True
    return info


def _need_transformers():
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise XlingError("exporting to Hugging Face needs the `transformers` package",
                         fix="pip install 'xling[hf]' (transformers, safetensors; no torch reinstall: "
                             "add --no-deps if your pip wants to change torch)") from None
    return transformers


def _claim(out: Path, command: str, source: Path, source_what: str, force: bool) -> dict:
    """Check that ``command`` may write ``out`` (see :func:`xling.outputs.claim_dir`); its identity."""
    from xling.outputs import claim_dir

    identity = {"source": str(source.resolve())}
    claim_dir(out, command=command, identity=identity, force=force, protect={source_what: source},
              what="Hugging Face directory" if command == "export hf" else "model directory")
    return identity


def export_hf(model_dir: str | Path, out: str | Path, force: bool = False) -> dict:
    """Write ``model_dir`` (xling / fairseq XLM-R layout) as a Hugging Face model directory. ``out`` may hold
    an earlier export of the same model (files added there are kept); ``force`` replaces another's."""
    import torch

    model_dir, out = Path(model_dir), Path(out)
    layout.check_model_dir(model_dir)
    transformers = _need_transformers()
    from xling.io import sha256_file

    fingerprint = {"converter": CONVERTER, "model_sha256": sha256_file(model_dir / "model.pt"),
                   "spm_sha256": sha256_file(model_dir / "sentencepiece.bpe.model")}
    done = out / "xling_convert.json"
    info = _finished(done, fingerprint)
    if info is not None:
        return info
    identity = _claim(out, "export hf", model_dir, "model directory", force)
    state, margs, _ = layout.load_checkpoint(model_dir)
    arch = getattr(margs, "arch", getattr(margs, "_name", None))
    checks = {"encoder_normalize_before": False, "layernorm_embedding": True, "activation_fn": "gelu",
              "encoder_learned_pos": True, "no_scale_embedding": True, "untie_weights_roberta": False}
    for key, want in checks.items():
        have = getattr(margs, key, want)
        if have != want:
            raise XlingError(f"{key}={have} has no Hugging Face XLM-R equivalent (needs {want})",
                             file=model_dir / "model.pt",
                             fix="only post-LN XLM-R-shaped models (fairseq arch roberta*) can be exported")
    if not str(arch).startswith(("roberta", "xlm", "xling_xlm")):
        raise XlingError(f"model architecture {arch!r} is not a fairseq roberta model", file=model_dir / "model.pt",
                         fix="export a model written by `xling import` or `xling pretrain` (roberta arch)")
    layers = int(margs.encoder_layers)
    hf = layout.fairseq_to_hf(state, layers)
    emb = hf["roberta.embeddings.word_embeddings.weight"]
    t0 = time.time()
    cfg = transformers.XLMRobertaConfig(
        vocab_size=emb.shape[0], hidden_size=emb.shape[1], num_hidden_layers=layers,
        num_attention_heads=int(margs.encoder_attention_heads), intermediate_size=int(margs.encoder_ffn_embed_dim),
        hidden_act="gelu", max_position_embeddings=hf["roberta.embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=layout.PAD, bos_token_id=0, eos_token_id=2,
        hidden_dropout_prob=float(getattr(margs, "dropout", 0.1)),
        attention_probs_dropout_prob=float(getattr(margs, "attention_dropout", 0.1)),
        architectures=["XLMRobertaForMaskedLM"], tie_word_embeddings=True)
    with torch.device("meta"):
        model = transformers.XLMRobertaForMaskedLM(cfg)
    want = set(model.state_dict())
    extra = sorted(set(hf) - want)
    if extra:
        raise XlingError(f"converted weights unknown to transformers: {', '.join(extra[:5])}",
                         fix="report this as a bug in the converter")
    hf["lm_head.decoder.bias"] = hf["lm_head.bias"]
    missing = [k for k in want if k not in hf]
    if missing:
        raise XlingError(f"weights missing for transformers: {', '.join(missing[:5])}",
                         fix="report this as a bug in the converter")
    model.load_state_dict({k: v.contiguous() for k, v in hf.items() if k in want}, strict=True, assign=True)
    model.tie_weights()
    # what save_pretrained writes: each tensor once (the tied LM head shares the embeddings' storage)
    weights = sum({t.data_ptr(): t.numel() * t.element_size() for t in model.state_dict().values()}.values())
    with needing(weights), atomic_dir(out, command="export hf", identity=identity, force=force) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        shutil.copyfile(model_dir / "sentencepiece.bpe.model", tmp / "sentencepiece.bpe.model")
        tok = transformers.XLMRobertaTokenizer.from_pretrained(str(tmp), model_max_length=cfg.max_position_embeddings - 2)
        if len(tok) != emb.shape[0]:
            raise XlingError(f"the tokenizer has {len(tok)} entries but the model {emb.shape[0]} rows",
                             file=model_dir / "dict.txt",
                             fix="dict.txt must hold the SentencePiece pieces from id 3 on, then <mask>")
        tok.save_pretrained(str(tmp))
        for extra_file in ("LICENSE", "provenance.json"):
            if (model_dir / extra_file).is_file():
                shutil.copyfile(model_dir / extra_file, tmp / extra_file)
        info = {"kind": "xling-hf-export", "source": str(model_dir), "transformers": transformers.__version__,
                "class": "XLMRobertaForMaskedLM", "vocab": int(emb.shape[0]), "layers": layers,
                "hidden": int(emb.shape[1]), "seconds": round(time.time() - t0, 1), "fingerprint": fingerprint}
        write_json_atomic(tmp / "xling_convert.json", info)
    info["skipped"] = False
    return info


def _load_hf_weights(d: Path) -> dict:
    import torch

    if (d / "model.safetensors").is_file() or (d / "model.safetensors.index.json").is_file():
        from safetensors.torch import load_file

        files = [d / "model.safetensors"]
        if (d / "model.safetensors.index.json").is_file():
            idx = read_json(d / "model.safetensors.index.json", "safetensors index")
            files = [d / f for f in sorted(set(idx.get("weight_map", {}).values()))]
        out = {}
        for f in files:
            try:
                out.update(load_file(str(f)))
            except Exception as e:
                raise XlingError(f"cannot read the weights ({type(e).__name__}: {str(e)[:200]})", file=f,
                                 fix="the file is truncated or corrupt; download it again") from None
        return out
    if (d / "pytorch_model.bin").is_file():
        try:
            return torch.load(d / "pytorch_model.bin", map_location="cpu", weights_only=True)
        except Exception as e:
            raise XlingError(f"cannot read the weights ({type(e).__name__}: {str(e)[:200]})",
                             file=d / "pytorch_model.bin", fix="the file is truncated or corrupt") from None
    raise XlingError("no weights: neither model.safetensors nor pytorch_model.bin", file=d,
                     fix="pass a Hugging Face model directory (config.json + model.safetensors + tokenizer)")


def _tokenizer_from_hf(d: Path) -> tuple[list[str], bytes]:
    """(ordinary pieces in id order, sentencepiece model bytes) from an HF model directory."""
    import sentencepiece as spm

    spm_path = d / "sentencepiece.bpe.model"
    if spm_path.is_file():
        sp = spm.SentencePieceProcessor()
        try:
            sp.Load(str(spm_path))
        except Exception as e:
            raise XlingError(f"cannot load the SentencePiece model ({e})", file=spm_path,
                             fix="the file is corrupt") from None
        if [sp.IdToPiece(i) for i in range(3)] != ["<unk>", "<s>", "</s>"]:
            raise XlingError("SentencePiece model is not in XLM-R's layout (<unk> <s> </s> first)", file=spm_path,
                             fix="only XLM-R-vocabulary models can be imported")
        return [sp.IdToPiece(i) for i in range(3, sp.GetPieceSize())], spm_path.read_bytes()
    tj = d / "tokenizer.json"
    if not tj.is_file():
        raise XlingError("no SentencePiece tokenizer: neither sentencepiece.bpe.model nor tokenizer.json", file=d,
                         fix="xling model directories need an XLM-R SentencePiece vocabulary")
    data = read_json(tj, "tokenizer.json")
    model = data.get("model") or {}
    if model.get("type") != "Unigram":
        raise XlingError(f"tokenizer model is {model.get('type')!r}, not a SentencePiece Unigram", file=tj,
                         fix="WordPiece/BPE vocabularies cannot become a fairseq sentencepiece model directory")
    vocab = model["vocab"]
    if [v[0] for v in vocab[:4]] != layout.SPECIALS or vocab[-1][0] != "<mask>":
        raise XlingError("tokenizer.json vocabulary is not in XLM-R's layout (<s> <pad> </s> <unk> ... <mask>)",
                         file=tj, fix="only XLM-R-vocabulary models can be imported")

    def find_charsmap(n):
        if not n:
            return None
        if n.get("type") == "Precompiled":
            return n.get("precompiled_charsmap")
        for sub in n.get("normalizers", []) or []:
            found = find_charsmap(sub)
            if found:
                return found
        return None

    from xling.convert.spm_build import _pb, build_unigram_model

    charsmap = find_charsmap(data.get("normalizer"))
    pb = _pb()
    spec = pb.NormalizerSpec(name="nmt_nfkc", add_dummy_prefix=True, remove_extra_whitespaces=True,
                             escape_whitespaces=True)
    if charsmap:
        spec.precompiled_charsmap = base64.b64decode(charsmap)
    pieces = [v[0] for v in vocab[4:-1]]
    return pieces, build_unigram_model(pieces, [float(v[1]) for v in vocab[4:-1]], spec.SerializeToString())


def import_hf(hf_dir: str | Path, out: str | Path, force: bool = False) -> dict:
    """Import a Hugging Face XLM-R / BERT-family model directory into an xling model directory (``force``:
    replace another import in ``out``)."""
    from xling.io import sha256_file

    hf_dir, out = Path(hf_dir), Path(out)
    if not hf_dir.is_dir():
        raise XlingError("Hugging Face model directory does not exist", file=hf_dir, fix="check the path")
    if not (hf_dir / "config.json").is_file():
        raise XlingError("not a Hugging Face model directory: missing config.json", file=hf_dir,
                         fix="pass a directory holding config.json, model.safetensors and the tokenizer files")
    cfg = read_json(hf_dir / "config.json", "config.json")
    weight_files = [p for p in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
                    if (hf_dir / p).is_file()]
    fingerprint = {"converter": CONVERTER, "config": cfg,
                   "weights": {p: sha256_file(hf_dir / p) for p in weight_files}}
    prov_path = out / "provenance.json"
    prov = _finished(prov_path, fingerprint)
    if prov is not None:
        return prov
    identity = _claim(out, "import hf", hf_dir, "Hugging Face directory", force)
    mtype = cfg.get("model_type")
    if mtype not in ("xlm-roberta", "bert", "roberta", "camembert"):
        raise XlingError(f"model_type {mtype!r} is not a BERT-family encoder", file=hf_dir / "config.json",
                         fix="import XLM-R or BERT-family (XLM-R vocabulary) models")
    for key, ok in (("hidden_act", ("gelu",)), ("position_embedding_type", ("absolute", None))):
        if cfg.get(key) not in ok:
            raise XlingError(f"{key}={cfg.get(key)!r} has no fairseq roberta equivalent", file=hf_dir / "config.json",
                             fix=f"supported: {ok}")
    weights = _load_hf_weights(hf_dir)
    prefix = ""
    for p in ("roberta.", "bert.", "xlm_roberta.", ""):
        if p + "embeddings.word_embeddings.weight" in weights:
            prefix = p
            break
    else:
        raise XlingError("no embeddings.word_embeddings.weight among the weights", file=hf_dir,
                         fix="pass a BERT / XLM-R checkpoint")
    pieces, spm_model = _tokenizer_from_hf(hf_dir)
    vocab = len(pieces) + 5
    bert_positions = mtype == "bert"
    layers = int(cfg["num_hidden_layers"])
    tensors = layout.hf_to_fairseq(weights, layers, bert_positions=bert_positions, vocab=vocab, prefix=prefix)
    n_pos = tensors[layout.ENC + "embed_positions.weight"].shape[0] - layout.POS_OFFSET
    dims = layout.Dims(layers=layers, hidden=int(cfg["hidden_size"]), heads=int(cfg["num_attention_heads"]),
                       ffn=int(cfg["intermediate_size"]), max_positions=n_pos)
    t0 = time.time()
    with atomic_dir(out, command="import hf", identity=identity, force=force) as tmp:
        summary = layout.write_model_dir(tmp, tensors, dims, pieces, spm_model)
        for extra in ("LICENSE", "LICENSE.txt", "README.md"):
            if (hf_dir / extra).is_file():
                shutil.copyfile(hf_dir / extra, tmp / ("HF_" + extra))
        prov = {"kind": "xling-model", "source": {"huggingface_dir": str(hf_dir.resolve()), "model_type": mtype,
                                                  "architectures": cfg.get("architectures")},
                "license": cfg.get("license") or "see the source model's licence (copied as HF_LICENSE when present)",
                "notes": (["positions shifted by fairseq's padding offset (2)"] if bert_positions else [])
                + ["token type 0 folded into positions",
                   f"LayerNorm eps is fairseq's 1e-5 (source: {cfg.get('layer_norm_eps')})"],
                "summary": summary, "seconds": round(time.time() - t0, 1), "fingerprint": fingerprint}
        write_json_atomic(tmp / "provenance.json", prov)
    prov["skipped"] = False
    return prov
