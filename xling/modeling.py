"""Load a model directory (fairseq RoBERTa / XLM-R layout) as an encoder for downstream tasks.

``load_encoder(DIR)`` reads ``DIR/model.pt`` with fairseq's ``load_model_ensemble_and_task`` (after
importing ``xling.xlmplug`` when present, so xling checkpoints load too), ``DIR/dict.txt`` and
``DIR/sentencepiece.bpe.model``. Text encoding is written by hand (a few lines) because the id mapping
is fixed by docs/CONTRACTS.md: spm pieces looked up in the fairseq dictionary, ``<s> ... </s>``.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xling.errors import XlingError

REQUIRED = ("model.pt", "dict.txt", "sentencepiece.bpe.model")


@dataclass
class Encoder:
    model: Any
    dictionary: Any
    spm: Any
    embed_dim: int
    max_positions: int
    path: Path

    def pieces(self, text: str) -> list[str]:
        return self.spm.encode(text, out_type=str)

    def piece_ids(self, pieces: list[str]) -> list[int]:
        return [self.dictionary.index(p) for p in pieces]

    def encode(self, text: str, pair: str | None = None, max_len: int | None = None) -> list[int]:
        """fairseq ids ``<s> a </s> [</s> b </s>]`` truncated to ``max_len`` (default: max positions)."""
        max_len = max_len or self.max_positions
        a = self.piece_ids(self.pieces(text))
        if pair is None:
            return [self.dictionary.bos()] + a[: max_len - 2] + [self.dictionary.eos()]
        b = self.piece_ids(self.pieces(pair))
        room = max_len - 4
        while len(a) + len(b) > room:
            if len(a) >= len(b):
                a = a[:-1]
            else:
                b = b[:-1]
        eos = self.dictionary.eos()
        return [self.dictionary.bos()] + a + [eos, eos] + b + [eos]

    def collate(self, seqs: list[list[int]]):
        import torch

        n = max(len(s) for s in seqs)
        out = torch.full((len(seqs), n), self.dictionary.pad(), dtype=torch.long)
        for i, s in enumerate(seqs):
            out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        return out

    def features(self, src_tokens):
        """Hidden states B x T x C of the last layer."""
        x, _ = self.model(src_tokens, features_only=True)
        return x

    def fingerprint(self) -> str:
        from xling.io import sha256_file

        return sha256_file(self.path / "model.pt")[:12]


def load_encoder(path: str | Path) -> Encoder:
    path = Path(path)
    missing = [f for f in REQUIRED if not (path / f).is_file()]
    if missing:
        raise XlingError(f"model directory lacks {', '.join(missing)}", file=path,
                         fix="give a directory with model.pt, dict.txt and sentencepiece.bpe.model "
                             "(what `xling pretrain` writes under OUT/model/)")
    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    if importlib.util.find_spec("xling.xlmplug") is not None:
        import xling.xlmplug  # noqa: F401  registers xling's task/model/arch
    import sentencepiece as spm
    from fairseq import checkpoint_utils

    try:
        models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task(
            [str(path / "model.pt")], arg_overrides={"data": str(path)})
    except XlingError:
        raise
    except Exception as e:  # noqa: BLE001  fairseq raises many kinds for a bad checkpoint
        if "size mismatch" in str(e) and "embed_tokens" in str(e):
            raise XlingError("dict.txt does not match the checkpoint's embedding table (size mismatch)",
                             file=path / "dict.txt",
                             fix="use the dict.txt the model was trained with") from None
        raise XlingError(f"cannot load checkpoint: {type(e).__name__}: {e}", file=path / "model.pt",
                         fix="give a fairseq RoBERTa/XLM-R or xling checkpoint") from None
    model = models[0]
    model.eval()
    dictionary = task.source_dictionary
    emb = model.encoder.sentence_encoder.embed_tokens
    if emb.num_embeddings != len(dictionary):
        raise XlingError(f"model has {emb.num_embeddings} embeddings but dict.txt gives {len(dictionary)} "
                         "symbols", file=path / "dict.txt", fix="use the dict.txt the model was trained with")
    sp = spm.SentencePieceProcessor(model_file=str(path / "sentencepiece.bpe.model"))
    maxpos = int(model.max_positions()) if hasattr(model, "max_positions") else 512
    return Encoder(model=model, dictionary=dictionary, spm=sp, embed_dim=emb.embedding_dim,
                   max_positions=maxpos, path=path)
