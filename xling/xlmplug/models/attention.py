"""Self-attention through :func:`torch.nn.functional.scaled_dot_product_attention` (FlashAttention /
memory-efficient kernels on GPUs) in fairseq's own :class:`MultiheadAttention` module.

:class:`SdpaSelfAttention` *is* fairseq's module (same constructor, same parameters ``q_proj``, ``k_proj``,
``v_proj``, ``out_proj``, same initialisation and random-number use), so checkpoints keep fairseq's
state-dict names and load in plain fairseq RoBERTa. Only the forward of an encoder's self-attention without
attention weights is replaced: the padding mask goes to the kernel as a boolean ``B×1×1×S`` mask (never
expanded to ``B·H×T×S`` floats), and the heads are ``B×H×T×D`` views of the projections. Anything else
(incremental decoding, attention weights, bias_kv, xformers) falls back to fairseq's forward.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from fairseq.modules import MultiheadAttention
from torch import Tensor


class SdpaSelfAttention(MultiheadAttention):
    """fairseq's multi-head attention whose encoder self-attention runs in one fused SDPA call."""

    def fast_path(self, key, value, incremental_state, need_weights, static_kv, before_softmax,
                  need_head_weights) -> bool:
        return (self.self_attention and not (need_weights or need_head_weights or before_softmax or static_kv)
                and incremental_state is None and self.bias_k is None and not self.add_zero_attn
                and not self.use_xformers and not self.onnx_trace)

    def forward(self, query: Tensor, key: Optional[Tensor], value: Optional[Tensor],
                key_padding_mask: Optional[Tensor] = None, incremental_state=None, need_weights: bool = True,
                static_kv: bool = False, attn_mask: Optional[Tensor] = None, before_softmax: bool = False,
                need_head_weights: bool = False):
        if not self.fast_path(key, value, incremental_state, need_weights, static_kv, before_softmax,
                              need_head_weights):
            return super().forward(query, key, value, key_padding_mask, incremental_state, need_weights,
                                   static_kv, attn_mask, before_softmax, need_head_weights)
        tgt_len, bsz, dim = query.shape

        def heads(x: Tensor) -> Tensor:  # T×B×C -> B×H×T×D
            return x.view(tgt_len, bsz, self.num_heads, self.head_dim).permute(1, 2, 0, 3)

        q, k, v = heads(self.q_proj(query)), heads(self.k_proj(query)), heads(self.v_proj(query))
        mask = None
        if key_padding_mask is not None:  # True at pads -> True where a key may be attended
            mask = ~key_padding_mask.to(torch.bool)[:, None, None, :]
        if attn_mask is not None:  # fairseq: additive float T×S mask, or boolean with True = excluded
            extra = attn_mask.to(q.dtype) if attn_mask.is_floating_point() else \
                torch.zeros(attn_mask.shape, dtype=q.dtype, device=q.device).masked_fill(attn_mask, float("-inf"))
            mask = extra if mask is None else extra.masked_fill(~mask, float("-inf"))
        drop = self.dropout_module
        p = drop.p if (self.training or drop.apply_during_inference) else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return self.out_proj(out.permute(2, 0, 1, 3).reshape(tgt_len, bsz, dim)), None
