"""Head of ``clwr``: cross-lingual word recovery (Unicoder, Huang et al. 2019, §3.1).

For a translation pair (X, Y) encoded apart, each position i of X gets a representation made only of
Y's encoder states: ``r_i = Σ_j softmax_j(h^X_i W h^Y_j / √d) h^Y_j`` with a trainable bilinear ``W``;
X's token at i is then predicted from ``r_i`` by the model's own LM head (cross-entropy over the
vocabulary). The tokens to recover are hidden from X (the dataset puts ``<mask>`` there and lists them
in ``target``): were X's own token in the query, the attention pattern alone could spell it and the loss
would fall without any use of Y (measured: a held-out loss equal with the true Y and with another
sentence). Without ``target`` every real token of X is recovered, unmasked.
"""
import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.dataclass import FairseqDataclass


@dataclass
class ClwrConfig(FairseqDataclass):
    clwr_init_identity: bool = field(default=True, metadata={
        "help": "clwr: start the bilinear attention matrix W at the identity (scaled dot-product attention); "
                "off: Xavier-random"})


def lm_output_layer(model):
    """The model's LM head (``model`` possibly wrapped for data-parallel training)."""
    encoder = getattr(model, "encoder", None) or model.module.encoder
    return encoder.output_layer


class ClwrHead(nn.Module):
    """``forward(hx, hy, y_padding)``: X's positions re-represented from Y's states (B×Tx×C)."""

    def __init__(self, dim: int, pad: int, special: tuple[int, ...], init_identity: bool = True):
        super().__init__()
        self.clwr_bilinear = nn.Parameter(torch.empty(dim, dim))  # name kept: checkpoints' criterion keys
        if init_identity:
            nn.init.eye_(self.clwr_bilinear)
        else:
            nn.init.xavier_uniform_(self.clwr_bilinear)
        self.pad, self.special = pad, special

    @classmethod
    def build(cls, cfg, dim: int, dictionary):
        d = dictionary
        return cls(dim, d.pad(), (d.bos(), d.eos(), d.pad()), bool(getattr(cfg, "clwr_init_identity", True)))

    def forward(self, hx, hy, y_padding):
        scores = torch.einsum("bic,cd,bjd->bij", hx, self.clwr_bilinear.to(hx.dtype), hy) / math.sqrt(hx.size(-1))
        scores = scores.masked_fill(y_padding[:, None, :], float("-inf"))
        return torch.bmm(torch.softmax(scores.float(), dim=-1).to(hy.dtype), hy)

    def recover(self, model, sample):
        """Logits over the vocabulary for X's tokens to recover (N×V) and those tokens (N), on a clwr
        batch ``{"x": net_input, "y": net_input[, "target"]}``."""
        x_in, y_in = sample["x"], sample["y"]
        hx = model(**x_in, features_only=True)[0]
        hy = model(**y_in, features_only=True)[0]
        rep = self(hx, hy, y_in["src_tokens"].eq(self.pad))
        if sample.get("target") is not None:
            tokens = sample["target"]
            real = tokens.ne(self.pad)
        else:
            tokens = x_in["src_tokens"]
            real = torch.ones_like(tokens, dtype=torch.bool)
            for s in self.special:
                real &= tokens.ne(s)
        return lm_output_layer(model)(rep[real]), tokens[real]

    def loss(self, model, sample):
        """Summed token cross-entropy and the number of recovered tokens."""
        logits, target = self.recover(model, sample)
        return F.cross_entropy(logits.float(), target, reduction="sum"), target.numel(), {}
