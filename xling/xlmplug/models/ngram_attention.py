"""ProphetNet's n-stream self-attention (Qi et al. 2020), with its relative position buckets.

One set of projections serves every stream. The **main stream** is a causal decoder stream: position i attends to
main positions j <= i. Each **predicting stream** s (s = 1 .. ngram-1) at position i attends to the main stream's
positions j <= i and to itself, and predicts the token s places beyond the main stream's next token; its relative
distances are counted from i + s, the position it stands for. The attention bias is ProphetNet's: the distance
i - j falls into one of ``num_buckets`` buckets (exact up to half of them, then logarithmic up to
``max_distance``), and each query state projects to one bias per bucket and head (so the bias depends on the
query, as in ProphetNet).

Incremental decoding (fairseq's beam search) runs the main stream only: the past keys and values are kept in the
incremental state and reordered with the beams.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.incremental_decoding_utils import with_incremental_state


def relative_buckets(distance: torch.Tensor, num_buckets: int, max_distance: int) -> torch.Tensor:
    """Bucket of each distance i - j (keys in the future count as distance 0; they are masked anyway)."""
    n = distance.clamp(min=0)
    exact = num_buckets // 2
    log_part = torch.log(n.float().clamp(min=1) / exact) / math.log(max_distance / exact) * (num_buckets - exact)
    large = (exact + log_part.long()).clamp(max=num_buckets - 1)
    return torch.where(n < exact, n, large)


@with_incremental_state
class NgramSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, num_buckets: int = 32, max_distance: int = 128, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"embedding dim {dim} is not a multiple of {heads} heads")
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.num_buckets, self.max_distance, self.dropout = num_buckets, max_distance, dropout
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))
        self.relative_proj = nn.Linear(dim, num_buckets * heads)

    def _split(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_dim).transpose(1, 2)  # B H T D

    def _merge(self, x):
        b, _, t, _ = x.shape
        return x.transpose(1, 2).reshape(b, t, self.dim)

    def _bias(self, x, distance):
        """B H Tq Tk bias of queries ``x`` (B Tq C) at ``distance`` (Tq Tk)."""
        b, tq, _ = x.shape
        per_bucket = self.relative_proj(x).view(b, tq, self.heads, self.num_buckets).transpose(1, 2)
        idx = relative_buckets(distance, self.num_buckets, self.max_distance)
        return per_bucket.gather(3, idx.expand(b, self.heads, *idx.shape))

    def _attend(self, scores):
        probs = F.softmax(scores.float(), dim=-1).type_as(scores)
        return F.dropout(probs, p=self.dropout, training=self.training)

    def forward(self, main, streams=(), incremental_state: Optional[dict] = None):
        """``main`` and each of ``streams``: B T C. Returns ``(main output, [stream outputs])``."""
        scale = self.head_dim ** -0.5
        q, k, v = self._split(self.q_proj(main) * scale), self._split(self.k_proj(main)), self._split(self.v_proj(main))
        if incremental_state is not None:
            saved = self.get_incremental_state(incremental_state, "ngram_attn")
            if saved is not None:
                k, v = torch.cat([saved["k"], k], dim=2), torch.cat([saved["v"], v], dim=2)
            self.set_incremental_state(incremental_state, "ngram_attn", {"k": k, "v": v})
        t, tk = q.size(2), k.size(2)
        pos_k = torch.arange(tk, device=main.device)
        distance = (pos_k[tk - t:, None] - pos_k[None, :])  # Tq Tk: i - j
        future = distance < 0
        scores = q @ k.transpose(2, 3) + self._bias(main, distance)
        out = self.out_proj(self._merge(self._attend(scores.masked_fill(future, float("-inf"))) @ v))
        outs = []
        for s, h in enumerate(streams, start=1):
            qs = self._split(self.q_proj(h) * scale)
            ks, vs = self._split(self.k_proj(h)), self._split(self.v_proj(h))
            to_main = (qs @ k.transpose(2, 3) + self._bias(h, distance + s)).masked_fill(future, float("-inf"))
            to_self = (qs * ks).sum(-1, keepdim=True) + self._bias(h, torch.zeros_like(distance[:, :1]))
            a = self._attend(torch.cat([to_main, to_self], dim=-1))
            outs.append(self.out_proj(self._merge(a[..., :tk] @ v + a[..., tk:] * vs)))
        return out, outs

    def reorder_incremental_state(self, incremental_state, new_order):
        saved = self.get_incremental_state(incremental_state, "ngram_attn")
        if saved is not None:
            self.set_incremental_state(incremental_state, "ngram_attn",
                                       {k: v.index_select(0, new_order) for k, v in saved.items()})
        return incremental_state
