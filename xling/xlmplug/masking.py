"""BERT-style masking of one example: 80% ``<mask>`` / 10% random / 10% unchanged, token or span level.

Written by hand because fairseq's ``MaskTokensDataset`` only offers Gaussian span lengths and masks
whole sequences without knowing which positions are segment separators; XLM/SpanBERT spans are
geometric. One small function serves MLM rows and TLM rows alike, so both share a single code path.
"""
from __future__ import annotations

import numpy as np


def mask_positions(maskable: np.ndarray, rng: np.random.Generator, mask_prob: float,
                   span_p: float = 0.0, max_span: int = 10) -> np.ndarray:
    """Pick about ``mask_prob`` of the ``maskable`` positions (bool array); return a bool mask.

    With ``span_p > 0`` positions come in contiguous spans whose lengths follow a geometric
    distribution with success probability ``span_p`` (mean ``1/span_p``), clipped to ``max_span``.
    """
    cand = np.flatnonzero(maskable)
    n = len(cand)
    out = np.zeros(len(maskable), dtype=bool)
    if n == 0:
        return out
    want = int(mask_prob * n + rng.random())  # probabilistic rounding, as fairseq does
    if want == 0:
        return out
    if span_p <= 0:
        out[rng.choice(cand, want, replace=False)] = True
        return out
    got = 0
    for _ in range(4 * want):  # bounded: spans may overlap
        length = min(int(rng.geometric(span_p)), max_span, want - got)
        start = int(rng.integers(len(maskable)))
        stop = min(start + length, len(maskable))
        new = maskable[start:stop] & ~out[start:stop]
        out[start:stop] |= maskable[start:stop]
        got += int(new.sum())
        if got >= want:
            break
    return out


def apply_mask(tokens: np.ndarray, chosen: np.ndarray, rng: np.random.Generator, *, mask_idx: int,
               pad_idx: int, random_low: int, random_high: int, leave_unmasked_prob: float = 0.1,
               random_token_prob: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt ``tokens`` at ``chosen``; return ``(source, target)``.

    ``target`` is ``pad_idx`` everywhere except at chosen positions, where it holds the original
    token. Random replacements are drawn uniformly from ``[random_low, random_high)``.
    """
    source = tokens.copy()
    target = np.full_like(tokens, pad_idx)
    idx = np.flatnonzero(chosen)
    target[idx] = tokens[idx]
    u = rng.random(len(idx))
    to_mask = idx[u >= leave_unmasked_prob + random_token_prob]
    to_rand = idx[(u >= leave_unmasked_prob) & (u < leave_unmasked_prob + random_token_prob)]
    source[to_mask] = mask_idx
    if len(to_rand):
        source[to_rand] = rng.integers(random_low, random_high, len(to_rand))
    return source, target
