"""The generator of ``rtd``/``trtd`` (ELECTRA, Clark et al. 2020): a small masked LM whose samples replace the
masked tokens that the discriminator (the encoder being trained) then has to find.

It has no embeddings of its own: it reads the discriminator's embedding output (token, position and language
embeddings, their layer norm: ELECTRA shares the embeddings), projects it to its own, narrower width
(``--rtd-generator-width``, a fraction of the discriminator's: ELECTRA found a quarter to a third best),
runs its transformer layers (fairseq's encoder layer) and scores the vocabulary through the shared token
embedding matrix (a dense + GELU + layer norm back to the embedding width, then the tied projection + bias,
as RoBERTa's LM head does).
"""
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.dataclass import FairseqDataclass
from fairseq.models.transformer import TransformerConfig
from fairseq.modules import LayerNorm
from fairseq.modules.transformer_layer import TransformerEncoderLayerBase


@dataclass
class RtdGeneratorConfig(FairseqDataclass):
    rtd_generator_width: float = field(default=0.25, metadata={
        "help": "rtd/trtd: the generator's hidden size as a fraction of the discriminator's (ELECTRA: 1/4-1/3)"})
    rtd_generator_layers: int = field(default=0, metadata={
        "help": "rtd/trtd: the generator's transformer layers (0: as many as the discriminator)"})
    rtd_generator_heads: int = field(default=0, metadata={
        "help": "rtd/trtd: the generator's attention heads (0: one per 64 dimensions, at least 1)"})


class RtdGenerator(nn.Module):
    """``forward(embedded B×T×D, padding B×T, index N, embed_weight V×D)``: logits (N×V) at the flat positions
    ``index`` of the batch."""

    def __init__(self, dim: int, width: int, layers: int, heads: int, vocab: int, dropout: float = 0.1):
        super().__init__()
        cfg = TransformerConfig()
        cfg.encoder.embed_dim, cfg.encoder.ffn_embed_dim, cfg.encoder.attention_heads = width, 4 * width, heads
        cfg.activation_fn, cfg.dropout, cfg.attention_dropout = "gelu", dropout, dropout
        self.embed_proj = nn.Linear(dim, width)
        self.layers = nn.ModuleList(TransformerEncoderLayerBase(cfg) for _ in range(layers))
        self.lm_dense = nn.Linear(width, dim)
        self.lm_norm = LayerNorm(dim)
        self.lm_bias = nn.Parameter(torch.zeros(vocab))

    @classmethod
    def build(cls, cfg, dim: int, layers: int, vocab: int):
        width = max(8, int(round(dim * float(getattr(cfg, "rtd_generator_width", 0.25)))))
        heads = int(getattr(cfg, "rtd_generator_heads", 0)) or max(1, width // 64)
        if width % heads:
            raise ValueError(f"--rtd-generator-heads {heads} does not divide the generator width {width}")
        if not 0 < float(getattr(cfg, "rtd_generator_width", 0.25)) <= 1:
            raise ValueError("--rtd-generator-width must be within (0, 1]: a fraction of the discriminator's width")
        return cls(dim, width, int(getattr(cfg, "rtd_generator_layers", 0)) or layers, heads, vocab)

    def forward(self, embedded, padding, index, embed_weight):
        x = self.embed_proj(embedded).transpose(0, 1)  # T x B x W
        mask = padding if padding.any() else None
        for layer in self.layers:
            x = layer(x, encoder_padding_mask=mask)
        h = x.transpose(0, 1).reshape(-1, x.size(-1)).index_select(0, index)
        h = self.lm_norm(F.gelu(self.lm_dense(h)))
        return F.linear(h, embed_weight) + self.lm_bias
