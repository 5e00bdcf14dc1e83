"""Criterion ``xling_clpc``: cross-lingual paraphrase classification (Unicoder, §3.2).

A packed pair ``<s> X </s> Y' </s>`` is classified from the ``<s>`` state as translation (1) or not (0)
by a small head (dense, tanh, dropout, 2-way linear: RoBERTa's sentence-classification head shape).
The head lives in the criterion, so the encoder's weights are untouched by its presence. Logs
``clpc_loss`` and ``clpc_acc`` (accuracy in %).
"""
from dataclasses import dataclass, field

import torch.nn as nn
import torch.nn.functional as F
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

from xling.xlmplug.criterions.clwr import model_dim


@dataclass
class ClpcConfig(FairseqDataclass):
    clpc_dropout: float = field(default=0.1, metadata={"help": "clpc: dropout before the classifier's output layer"})


@register_criterion("xling_clpc", dataclass=ClpcConfig)
class ClpcLoss(FairseqCriterion):
    """``forward(model, sample)`` on a clpc batch ``{"net_input", "label"}``: summed cross-entropy,
    the number of pairs, and ``clpc_loss`` / ``clpc_n`` / ``clpc_correct`` for the logs."""

    def __init__(self, cfg: ClpcConfig, task):
        super().__init__(task)
        dim = model_dim(task)
        self.clpc_head = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Dropout(getattr(cfg, "clpc_dropout", 0.1)),
                                       nn.Linear(dim, 2))

    def logits(self, model, sample):
        feats = model(**sample["net_input"], features_only=True)[0]
        return self.clpc_head(feats[:, 0, :])

    def forward(self, model, sample, reduce=True):
        logits = self.logits(model, sample).float()
        label = sample["label"]
        loss = F.cross_entropy(logits, label, reduction="sum")
        correct = logits.argmax(-1).eq(label).sum()
        return loss, label.numel(), {"clpc_loss": loss.detach(), "clpc_n": label.numel(),
                                     "clpc_correct": correct.detach()}
