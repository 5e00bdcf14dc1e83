"""Load a model directory for downstream use: encoders (fairseq RoBERTa / XLM-R layout, xling's
``xling_xlm``) with :func:`load_encoder`, encoder-decoders (``xling pretrain --arch seq2seq``) with
:func:`load_seq2seq`.

Both kinds of directory hold the same three files (:data:`REQUIRED`) and load with fairseq's
``load_model_ensemble_and_task`` after importing ``xling.xlmplug`` when present (so xling checkpoints
load too). Text encoding is written by hand (a few lines) because the id mapping is fixed by
docs/CONTRACTS.md: spm pieces looked up in the fairseq dictionary, ``<s> ... </s>``; encoder-decoders
follow mBART's layout, source ``<s> x </s> [lang]``, target ``y </s>``.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xling.errors import XlingError

REQUIRED = ("model.pt", "dict.txt", "sentencepiece.bpe.model")  # every model directory, both kinds


def check_model_dir(path: Path, fix: str) -> None:
    """Raise before anything is read when ``path`` lacks one of the :data:`REQUIRED` files."""
    missing = [f for f in REQUIRED if not (Path(path) / f).is_file()]
    if missing:
        raise XlingError(f"model directory lacks {', '.join(missing)}", file=path, fix=fix)


def _load_checkpoint(path: Path):
    """(model in eval mode, fairseq task) of ``path/model.pt`` with ``path`` as its data directory."""
    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    if importlib.util.find_spec("xling.xlmplug") is not None:
        import xling.xlmplug  # noqa: F401  registers xling's tasks/models/archs
    from fairseq import checkpoint_utils

    try:
        models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task(
            [str(path / "model.pt")], arg_overrides={"data": str(path)})
    except XlingError:
        raise
    except Exception as e:  # noqa: BLE001  fairseq raises many kinds for a bad checkpoint
        if "size mismatch" in str(e) and "embed_tokens" in str(e):
            raise XlingError("dict.txt does not match the checkpoint's embedding table (size mismatch)",
                             file=path / "dict.txt", fix="use the dict.txt the model was trained with") from None
        raise XlingError(f"cannot load checkpoint: {type(e).__name__}: {e}", file=path / "model.pt",
                         fix="give a fairseq RoBERTa/XLM-R or xling checkpoint") from None
    model = models[0]
    model.eval()
    return model, task


def _spm(path: Path):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(path / "sentencepiece.bpe.model"))


def _fingerprint(path: Path) -> str:
    from xling.io import sha256_file

    return sha256_file(Path(path) / "model.pt")[:12]


# ---------------------------------------------------------------- encoders


@dataclass
class EncoderModel:
    """A loaded encoder (a fairseq RoBERTa-style model), its dictionary and SentencePiece model."""

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
        return pad_sequences(seqs, self.dictionary.pad())

    def features(self, src_tokens):
        """Hidden states B x T x C of the last layer."""
        x, _ = self.model(src_tokens, features_only=True)
        return x

    def fingerprint(self) -> str:
        return _fingerprint(self.path)


def pad_sequences(seqs: list[list[int]], pad: int):
    """A B x T long tensor of ``seqs``, right-padded with ``pad``."""
    import torch

    n = max(len(s) for s in seqs)
    out = torch.full((len(seqs), n), pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def load_encoder(path: str | Path) -> EncoderModel:
    path = Path(path)
    check_model_dir(path, "give a directory with model.pt, dict.txt and sentencepiece.bpe.model "
                          "(what `xling pretrain` writes under OUT/model/)")
    model, task = _load_checkpoint(path)
    dictionary = task.source_dictionary
    emb = model.encoder.sentence_encoder.embed_tokens
    if emb.num_embeddings != len(dictionary):
        raise XlingError(f"model has {emb.num_embeddings} embeddings but dict.txt gives {len(dictionary)} "
                         "symbols", file=path / "dict.txt", fix="use the dict.txt the model was trained with")
    maxpos = int(model.max_positions()) if hasattr(model, "max_positions") else 512
    return EncoderModel(model=model, dictionary=dictionary, spm=_spm(path), embed_dim=emb.embedding_dim,
                        max_positions=maxpos, path=path)


# ---------------------------------------------------------------- encoder-decoders


def checkpoint_task(path: Path) -> dict:
    """The fairseq task config saved in ``path/model.pt`` (read without building the model)."""
    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    import torch

    try:
        state = torch.load(Path(path) / "model.pt", map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  torch raises many kinds for a bad file
        raise XlingError(f"cannot read checkpoint: {type(e).__name__}: {e}", file=Path(path) / "model.pt") from None
    cfg = state.get("cfg") or {}
    task = cfg.get("task") if isinstance(cfg, dict) else None
    return dict(task or {})


def seq2seq_langs(model: Path) -> list[str]:
    """The languages with a ``[lang]`` token in an xling encoder-decoder model directory."""
    return [x for x in str(checkpoint_task(Path(model)).get("langs") or "").split(",") if x]


def check_seq2seq(model: Path, langs: list[str]) -> str:
    """Check that ``model`` is an xling encoder-decoder with a ``[lang]`` token for every language in
    ``langs``; return its fingerprint. Raises :class:`XlingError` before anything is written."""
    model = Path(model)
    check_model_dir(model, "give the OUT/model directory of `xling pretrain --arch seq2seq`")
    task = checkpoint_task(model)
    if task.get("_name") != "xling_dae":
        raise XlingError(f"not an xling encoder-decoder (task {task.get('_name')!r}); generation tasks need one",
                         file=model / "model.pt", fix="pretrain one with `xling pretrain --arch seq2seq --tasks xdae`")
    have = [x for x in str(task.get("langs") or "").split(",") if x]
    lacking = [lg for lg in langs if lg not in have]
    if lacking:
        raise XlingError(f"the model's dictionary has no language token for {', '.join(lacking)} "
                         f"(it has [{'], ['.join(have)}])", file=model / "model.pt",
                         fix="evaluate only those languages, or pretrain with data (and --langs) that include them")
    return _fingerprint(model)


@dataclass
class Seq2seqModel:
    """A loaded encoder-decoder (fairseq ``bart``), its dictionary with ``[lang]`` tokens and spm model."""

    model: Any
    task: Any
    dictionary: Any
    spm: Any
    langs: list[str]

    def lang_index(self, lang: str) -> int:
        idx = self.dictionary.index(f"[{lang}]")
        if idx == self.dictionary.unk():
            raise XlingError(f"the model's dictionary has no language token [{lang}]",
                             fix=f"the model knows {', '.join(self.langs)}")
        return idx

    def pieces(self, text: str) -> list[int]:
        d = self.dictionary
        return [d.index(p) for p in self.spm.encode(text, out_type=str)]

    def source(self, text: str, lang: str, max_len: int) -> list[int]:
        d = self.dictionary
        return [d.bos()] + self.pieces(text)[: max_len - 3] + [d.eos(), self.lang_index(lang)]

    def target(self, text: str, max_len: int) -> list[int]:
        return self.pieces(text)[: max_len - 1] + [self.dictionary.eos()]

    def detokenize(self, ids) -> str:
        d = self.dictionary
        skip = {d.bos(), d.eos(), d.pad(), d.unk()} | {d.index(f"[{lg}]") for lg in self.langs}
        skip.add(d.index("<mask>"))
        text = self.spm.decode_pieces([d[int(i)] for i in ids if int(i) not in skip])
        return " ".join(text.split())


def load_seq2seq(path: str | Path) -> Seq2seqModel:
    path = Path(path)
    check_seq2seq(path, [])
    model, task = _load_checkpoint(path)
    return Seq2seqModel(model=model, task=task, dictionary=task.source_dictionary, spm=_spm(path),
                        langs=list(task.langs))
