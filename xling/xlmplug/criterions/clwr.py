"""Criterion ``xling_clwr``: cross-lingual word recovery (Unicoder, Huang et al. 2019, §3.1).

For a translation pair (X, Y) encoded apart, each position i of X gets a representation made only of
Y's encoder states: ``r_i = Σ_j softmax_j(h^X_i W h^Y_j / √d) h^Y_j`` with a trainable bilinear ``W``;
X's token at i is then predicted from ``r_i`` by the model's own LM head (cross-entropy over the
vocabulary). The tokens to recover are hidden from X (the dataset puts ``<mask>`` there and lists them
in ``target``): were X's own token in the query, the attention pattern alone could spell it and the loss
would fall without any use of Y (measured: a held-out loss equal with the true Y and with another
sentence). Without ``target`` every real token of X is recovered, unmasked. ``W`` lives in the
criterion, not in the model, so the encoder's weights and names are the same whatever objectives
trained it.
"""
import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass


@dataclass
class ClwrConfig(FairseqDataclass):
    clwr_init_identity: bool = field(default=True, metadata={
        "help": "clwr: start the bilinear attention matrix W at the identity (scaled dot-product attention); "
                "off: Xavier-random"})


def model_dim(task) -> int:
    dim = getattr(task, "model_dim", None)
    if not dim:
        raise ValueError("the task must build the model before this criterion (it needs the model width)")
    return int(dim)


@register_criterion("xling_clwr", dataclass=ClwrConfig)
class ClwrLoss(FairseqCriterion):
    """``forward(model, sample)`` on a clwr batch ``{"x": net_input, "y": net_input}``; returns the summed
    token cross-entropy, the number of recovered tokens, and ``clwr_loss`` / ``clwr_n`` for the logs."""

    def __init__(self, cfg: ClwrConfig, task):
        super().__init__(task)
        dim = model_dim(task)
        self.clwr_bilinear = nn.Parameter(torch.empty(dim, dim))
        if getattr(cfg, "clwr_init_identity", True):
            nn.init.eye_(self.clwr_bilinear)
        else:
            nn.init.xavier_uniform_(self.clwr_bilinear)
        d = task.source_dictionary
        self.special = (d.bos(), d.eos(), d.pad())

    def recover(self, model, sample):
        """Logits over the vocabulary for X's real tokens (N×V) and those tokens (N)."""
        x_in, y_in = sample["x"], sample["y"]
        hx = model(**x_in, features_only=True)[0]
        hy = model(**y_in, features_only=True)[0]
        scores = torch.einsum("bic,cd,bjd->bij", hx, self.clwr_bilinear.to(hx.dtype), hy) / math.sqrt(hx.size(-1))
        scores = scores.masked_fill(y_in["src_tokens"].eq(self.padding_idx)[:, None, :], float("-inf"))
        rep = torch.bmm(torch.softmax(scores.float(), dim=-1).to(hy.dtype), hy)
        if sample.get("target") is not None:
            tokens = sample["target"]
            real = tokens.ne(self.padding_idx)
        else:
            tokens = x_in["src_tokens"]
            real = torch.ones_like(tokens, dtype=torch.bool)
            for s in self.special:
                real &= tokens.ne(s)
        encoder = getattr(model, "encoder", None) or model.module.encoder
        return encoder.output_layer(rep[real]), tokens[real]

    def forward(self, model, sample, reduce=True):
        logits, target = self.recover(model, sample)
        loss = F.cross_entropy(logits.float(), target, reduction="sum")
        n = target.numel()
        return loss, n, {"clwr_loss": loss.detach(), "clwr_n": n}
