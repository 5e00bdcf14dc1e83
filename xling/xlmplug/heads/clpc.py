"""Head of ``clpc``: cross-lingual paraphrase classification (Unicoder, §3.2).

A packed pair ``<s> X </s> Y' </s>`` is classified from the ``<s>`` state as translation (1) or not (0)
by a small head (dense, tanh, dropout, 2-way linear: RoBERTa's sentence-classification head shape).
"""
from dataclasses import dataclass, field

import torch.nn as nn
import torch.nn.functional as F
from fairseq.dataclass import FairseqDataclass


@dataclass
class ClpcConfig(FairseqDataclass):
    clpc_dropout: float = field(default=0.1, metadata={"help": "clpc: dropout before the classifier's output layer"})


class ClpcHead(nn.Module):
    """``forward(cls_states)``: 2-way logits (B×2) from the ``<s>`` states (B×C)."""

    def __init__(self, dim: int, dropout: float = 0.1):
        super().__init__()
        # name kept: checkpoints' criterion keys (clpc_head.0 dense, clpc_head.3 output)
        self.clpc_head = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Dropout(dropout), nn.Linear(dim, 2))

    @classmethod
    def build(cls, cfg, dim: int, dictionary):
        return cls(dim, float(getattr(cfg, "clpc_dropout", 0.1)))

    def forward(self, cls_states):
        return self.clpc_head(cls_states)

    def logits(self, model, sample):
        """Logits of a clpc batch ``{"net_input", "label"}``."""
        return self(model(**sample["net_input"], features_only=True)[0][:, 0, :])

    def loss(self, model, sample):
        """Summed cross-entropy, the number of pairs, and how many were classified right."""
        logits = self.logits(model, sample).float()
        label = sample["label"]
        loss = F.cross_entropy(logits, label, reduction="sum")
        return loss, label.numel(), {"correct": logits.argmax(-1).eq(label).sum().detach()}
