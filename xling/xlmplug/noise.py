"""XLM-style word noise for denoising pretraining (Lample et al. 2018, "Unsupervised machine translation
using monolingual corpora only"): local word shuffle, word dropout and word blanking.

fairseq's ``DenoisingDataset`` brings the BART/mBART noise (sentence permutation, Poisson span
infilling, token insertion, document rotation) but none of these three, so they are written here,
a few lines each. They work on whole words: a word is a piece flagged in ``word_start`` (SentencePiece
``▁`` pieces, specials, language tokens) and the pieces after it up to the next such piece. The first
and the last position of an example (``<s>`` and the language token / ``</s>``) are never touched.
Randomness comes from numpy's global generator, which ``DenoisingDataset`` seeds per example
(``data_utils.numpy_seed(seed, epoch, index)``), so an example's noise is reproducible.
"""
from __future__ import annotations

import numpy as np
import torch


def words(word_start: torch.Tensor) -> list[tuple[int, int]]:
    """``(start, stop)`` position ranges of the words strictly inside the example (first and last
    positions excluded); a run of pieces before the first flagged piece counts as one word."""
    n = len(word_start)
    if n <= 2:
        return []
    starts = [i for i in range(1, n - 1) if bool(word_start[i]) or i == 1]
    return [(a, b) for a, b in zip(starts, starts[1:] + [n - 1])]


def _rebuild(tokens: torch.Tensor, spans: list[tuple[int, int]]) -> torch.Tensor:
    parts = [tokens[:1]] + [tokens[a:b] for a, b in spans] + [tokens[-1:]]
    return torch.cat(parts)


def word_shuffle(tokens: torch.Tensor, word_start: torch.Tensor, k: float) -> torch.Tensor:
    """Shuffle words locally: word ``i`` moves to the rank of ``i + U(0, k)``, so no word ends up more
    than ``k`` positions away from where it was (``k`` <= 1: unchanged)."""
    spans = words(word_start)
    if k <= 1 or len(spans) < 2:
        return tokens
    keys = np.arange(len(spans)) + np.random.uniform(0, k, size=len(spans))
    return _rebuild(tokens, [spans[i] for i in np.argsort(keys, kind="stable")])


def word_dropout(tokens: torch.Tensor, word_start: torch.Tensor, p: float) -> torch.Tensor:
    """Drop each word with probability ``p`` (at least one word is kept)."""
    spans = words(word_start)
    if p <= 0 or not spans:
        return tokens
    keep = np.random.random(len(spans)) >= p
    if not keep.any():
        keep[np.random.randint(len(spans))] = True
    return _rebuild(tokens, [s for s, k in zip(spans, keep) if k])


def word_blank(tokens: torch.Tensor, word_start: torch.Tensor, p: float, blank_idx: int) -> torch.Tensor:
    """Replace every piece of each word, with probability ``p``, by ``blank_idx`` (length unchanged)."""
    spans = words(word_start)
    if p <= 0 or not spans:
        return tokens
    out = tokens.clone()
    for (a, b), hit in zip(spans, np.random.random(len(spans)) < p):
        if hit:
            out[a:b] = blank_idx
    return out
