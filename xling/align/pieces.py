"""Map word alignments onto SentencePiece pieces.

Hand-written mapping: each word of :func:`xling.align.tokenize.tokenize` is located in the raw line
(character offsets), each spm piece gets the character span it covers (via ``encode`` with
``return_type="proto"``, SentencePiece's own offsets), and a word link ``i-j`` becomes every
link between a piece overlapping word ``i`` and a piece overlapping word ``j``.
"""
from __future__ import annotations

from xling.align.tokenize import tokenize


def word_spans(line: str, words: list[str], lowercase: bool = False) -> list[tuple[int, int]]:
    """Character span of each word in ``line`` (words come from ``tokenize`` in order)."""
    hay = line.lower() if lowercase else line
    spans, pos = [], 0
    for w in words:
        k = hay.find(w, pos)
        if k < 0:  # lowercasing changed the length (rare: e.g. 'İ'); fall back to the cursor
            k = pos
        spans.append((k, k + len(w)))
        pos = k + len(w)
    return spans


def piece_spans(sp, line: str) -> list[tuple[int, int]]:
    """Character span in ``line`` covered by each piece of ``sp.encode(line)``."""
    try:  # sentencepiece >= 0.2.1
        proto = sp.encode(line, return_type="proto")
    except TypeError:  # older releases
        proto = sp.encode(line, out_type="immutable_proto")
    return [(p.begin, p.end) for p in proto.pieces]


def _word_to_pieces(wspans, pspans):
    out = []
    for b, e in wspans:
        out.append([k for k, (pb, pe) in enumerate(pspans) if pb < e and pe > b])
    return out


def word_to_piece_alignment(sp, src_line: str, tgt_line: str, links, *, tokenizer: str = "unicode",
                            lowercase: bool = True) -> list[tuple[int, int]]:
    """Turn word links over ``tokenize(line)`` into links over the spm pieces of each raw line.

    ``sp`` is a ``sentencepiece.SentencePieceProcessor``; piece indices count from 0 over
    ``sp.encode(line)`` (no BOS/EOS).
    """
    sw = tokenize(src_line, tokenizer, lowercase)
    tw = tokenize(tgt_line, tokenizer, lowercase)
    s_map = _word_to_pieces(word_spans(src_line, sw, lowercase), piece_spans(sp, src_line))
    t_map = _word_to_pieces(word_spans(tgt_line, tw, lowercase), piece_spans(sp, tgt_line))
    out = set()
    for i, j in links:
        for a in s_map[i]:
            for b in t_map[j]:
                out.add((a, b))
    return sorted(out)
