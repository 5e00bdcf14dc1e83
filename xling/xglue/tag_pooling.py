"""Word representations for tagging (POS, NER): which of a word's pieces its label is predicted from.

``--word-pooling`` (the run's ``EvalConfig.word_pooling``; in the signature of tagging tasks):

* ``first``: the word's first piece (BERT/XTREME's first-subword labelling).
* ``first-content``: its first piece that is not a bare ``▁``. SentencePiece starts every word with
  ``▁``; when the vocabulary has no piece for ``▁`` + the word's start, the word begins with ``▁`` alone,
  a piece with no content (XLM-R's vocabulary: 86 % of Chinese and 43 % of Thai UD words), and
  first-piece labelling then predicts every such word's tag from a piece that carries no content.
* ``mean``: the mean of all the word's pieces.

The default, ``first-content``, is the measured best (``benchmarks/xglue/pos_e5.py``, see :data:`DEFAULT`).

A word's pieces run from its first piece to the next kept word's first piece (or ``</s>``):
:func:`word_spans` turns the runner's first-piece positions into ``(start, length)`` per word, and
:func:`pool` averages hidden states over such spans inside the network (``first``/``first-content``
are gathers of one position, as in :class:`xling.xglue.heads.WordHead`).
"""
from __future__ import annotations

from xling.errors import XlingError

POOLINGS = ("first", "first-content", "mean")
# benchmarks/xglue/pos_e5.py --slice (e5-small, 400 en sentences, test precision, avg of en + 10 languages):
# first 64.1 (zh 12.0), first-content 67.9 (zh 47.7, no language more than 0.3 below first), mean 65.9
# (zh 24.4, fr 3.7 below first)
DEFAULT = "first-content"
BARE = "\u2581"  # SentencePiece's word-start symbol


def check(mode: str) -> str:
    if mode not in POOLINGS:
        raise XlingError(f"unknown word pooling {mode!r}", fix="--word-pooling " + " or ".join(POOLINGS))
    return mode


def bare_id(dictionary) -> int | None:
    """The id of the bare ``▁`` piece, or None when the dictionary has none (no piece is then bare)."""
    return dictionary.indices.get(BARE)


def word_spans(ids: list[int], first: list, mode: str, bare: int | None) -> list:
    """``(start, length)`` of the pieces that represent each word of ``ids`` (``first``: the position of
    each word's first piece, None for a word cut off; those stay None). ``ids`` ends with ``</s>``."""
    kept = [p for p in first if p is not None]
    ends = dict(zip(kept, kept[1:] + [len(ids) - 1]))
    out = []
    for p in first:
        if p is None:
            out.append(None)
        elif mode == "mean":
            out.append((p, ends[p] - p))
        elif mode == "first-content":
            s = p
            while s < ends[p] - 1 and ids[s] == bare:
                s += 1
            out.append((s, 1))
        else:
            out.append((p, 1))
    return out


def pool(x, start, length):
    """B x W x C: the mean of ``x`` (B x T x C) over positions ``start .. start + length - 1`` of each
    word (``start``, ``length``: B x W; padding words any valid span)."""
    import torch

    pos = torch.arange(x.size(1), device=x.device)
    inside = (pos >= start.unsqueeze(-1)) & (pos < (start + length).unsqueeze(-1))  # B x W x T
    weights = inside.to(x.dtype) / length.clamp(min=1).unsqueeze(-1).to(x.dtype)
    return torch.bmm(weights, x)
