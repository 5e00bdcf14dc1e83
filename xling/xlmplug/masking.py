"""BERT-style masking of one example: 80% ``<mask>`` / 10% random / 10% unchanged, token, span or word level.

Written by hand because fairseq's ``MaskTokensDataset`` only offers Gaussian span lengths and masks
whole sequences without knowing which positions are segment separators; XLM/SpanBERT spans are
geometric. One small function serves MLM, TLM and code-switched rows alike, so all share a single code path.

Units: a token, or with whole-word masking a word (a SentencePiece piece starting with ``▁`` and the pieces
after it up to the next such piece or special token). A span is a run of consecutive units (SpanBERT: length
in words drawn from a geometric distribution, clipped at a maximum); spans never cross a special token (the
``</s>`` between the two sides of a TLM pair). The budget is ``mask_prob`` of the maskable tokens (on average
with words); the
80/10/10 decision is drawn once per span (SpanBERT), so a span is all ``<mask>``, all random or all kept.
"""
from __future__ import annotations

import numpy as np

WORD_START = "\u2581"  # SentencePiece's word-boundary mark


def word_start_table(symbols) -> np.ndarray:
    """Per dictionary index: whether the piece starts a word (begins with ``▁``)."""
    return np.array([str(s).startswith(WORD_START) for s in symbols], dtype=bool)


def units_of(maskable: np.ndarray, word_start: np.ndarray | None = None) -> np.ndarray:
    """Unit id of each position (``-1`` where not maskable). Units are numbered in order; with ``word_start``
    (bool per position) a unit is a word: a maskable run cut before every word start."""
    out = np.full(len(maskable), -1, dtype=np.int64)
    idx = np.flatnonzero(maskable)
    if len(idx) == 0:
        return out
    new = np.ones(len(idx), dtype=bool)
    if word_start is not None:
        contiguous = np.diff(idx) == 1
        new[1:] = ~contiguous | word_start[idx[1:]]
    out[idx] = np.cumsum(new) - 1
    return out


def choose_spans(maskable: np.ndarray, rng: np.random.Generator, mask_prob: float, span_p: float = 0.0,
                 max_span: int = 10, word_start: np.ndarray | None = None) -> np.ndarray:
    """Span id of each position (``-1``: not chosen), for about ``mask_prob`` of the ``maskable`` tokens.

    Without spans (``span_p == 0``) every chosen unit is its own span; with ``span_p > 0`` span lengths (in
    units) follow a geometric distribution of success probability ``span_p`` (mean ``1/span_p``), clipped to
    ``max_span``. Token units stop exactly at the budget; a word that would run over it is taken with
    probability shortfall / its length, and masking stops there: the budget holds on average.
    """
    unit = units_of(maskable, word_start)
    n_units = int(unit.max()) + 1
    spans = np.full(len(maskable), -1, dtype=np.int64)
    n = int(maskable.sum())
    if n_units <= 0:
        return spans
    want = int(mask_prob * n + rng.random())  # probabilistic rounding, as fairseq does
    if want == 0:
        return spans
    pos = np.flatnonzero(unit >= 0)
    starts = np.searchsorted(unit[pos], np.arange(n_units))  # first position (in pos) of each unit
    ends = np.append(starts[1:], len(pos))
    size = ends - starts
    # a span may not run over a special token: the unit after a gap in positions begins a new segment
    seg = np.zeros(n_units, dtype=np.int64)
    seg[1:] = np.cumsum(pos[starts[1:]] - pos[ends[:-1] - 1] > 1)
    if span_p <= 0 and word_start is None:  # single tokens
        spans[rng.choice(pos, want, replace=False)] = np.arange(want)
        return spans
    taken = np.zeros(n_units, dtype=bool)
    got, span = 0, 0
    order = rng.permutation(n_units) if span_p <= 0 else None
    for attempt in range(n_units if order is not None else 4 * want):
        if order is not None:
            first, length = int(order[attempt]), 1
        else:
            first, length = int(rng.integers(n_units)), min(int(rng.geometric(span_p)), max_span)
        used = False
        for u in range(first, min(first + length, n_units)):
            if seg[u] != seg[first] or got >= want:
                break
            if taken[u]:
                continue
            take = size[u] if word_start is not None else min(size[u], want - got)
            if take > want - got:  # a word that runs over the budget: taken with probability shortfall / length,
                if rng.random() >= (want - got) / take:  # then no more, so that the budget holds on average
                    got = want
                    break
            spans[pos[starts[u]:starts[u] + take]] = span
            taken[u], got, used = True, got + int(take), True
        span += used
        if got >= want:
            break
    return spans


def mask_positions(maskable: np.ndarray, rng: np.random.Generator, mask_prob: float,
                   span_p: float = 0.0, max_span: int = 10, word_start: np.ndarray | None = None) -> np.ndarray:
    """The positions :func:`choose_spans` picks, as a bool mask."""
    return choose_spans(maskable, rng, mask_prob, span_p, max_span, word_start) >= 0


def apply_mask(tokens: np.ndarray, chosen: np.ndarray, rng: np.random.Generator, *, mask_idx: int,
               pad_idx: int, random_low: int, random_high: int, leave_unmasked_prob: float = 0.1,
               random_token_prob: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt ``tokens`` at ``chosen``; return ``(source, target)``.

    ``chosen`` is a bool mask (each position decided alone) or span ids from :func:`choose_spans` (``-1``: not
    chosen; one decision per span). ``target`` is ``pad_idx`` everywhere except at chosen positions, where it
    holds the original token. Random replacements are drawn uniformly from ``[random_low, random_high)``.
    """
    source = tokens.copy()
    target = np.full_like(tokens, pad_idx)
    span = np.asarray(chosen)
    if span.dtype == bool:
        idx = np.flatnonzero(span)
        u = rng.random(len(idx))
    else:
        idx = np.flatnonzero(span >= 0)
        ids, inverse = np.unique(span[idx], return_inverse=True)
        u = rng.random(len(ids))[inverse]  # one draw per span
    target[idx] = tokens[idx]
    to_mask = idx[u >= leave_unmasked_prob + random_token_prob]
    to_rand = idx[(u >= leave_unmasked_prob) & (u < leave_unmasked_prob + random_token_prob)]
    source[to_mask] = mask_idx
    if len(to_rand):
        source[to_rand] = rng.integers(random_low, random_high, len(to_rand))
    return source, target
