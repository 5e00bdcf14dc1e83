"""Criterion ``xling_unicoder``: the weighted sum of the objectives of task ``xling_unicoder``, every update.

An update's batch holds one sub-batch per objective (see :mod:`xling.xlmplug.unicoder.multi`); this
criterion runs each objective's own criterion on its sub-batch, turns its loss into a mean (per masked
token for the masked-LM family mlm / tlm / clmlm / cs-mlm, per recovered token for clwr, per pair for
clpc and xlco) and returns ``Σ_k w_k · mean_k`` with ``sample_size`` 1 (so data-parallel workers average).
Summing weighted losses in one update (rather than sampling one objective per update) keeps fairseq's
trainer, gradient accumulation and checkpointing as they are: one sample, one criterion call, one
backward. Every objective is logged on its own: ``{mlm,tlm,clwr,clpc,clmlm,cs_mlm,xlco}_loss`` (bits
for the token losses, like fairseq's ``loss``), ``clpc_acc`` and ``xlco_acc`` (%).

The heads (clwr's bilinear matrix, clpc's classifier, xlco's projection) are parameters of this
criterion: fairseq's trainer optimises and checkpoints criterion parameters (``state["criterion"]``),
and the model's state dict, the encoder, stays exactly the one ``xling_mlm_tlm`` trains.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion

from xling.xlmplug.criterions.clpc import ClpcConfig, ClpcLoss
from xling.xlmplug.criterions.clwr import ClwrConfig, ClwrLoss
from xling.xlmplug.criterions.mlm_tlm import MlmTlmLoss, MlmTlmLossConfig
from xling.xlmplug.criterions.xlco import XlcoConfig, XlcoLoss

MASKED = ("mlm", "tlm", "clmlm", "cs-mlm")
ACCURACY = ("clpc", "xlco")


def log_key(objective: str) -> str:
    return objective.replace("-", "_")


@dataclass
class UnicoderLossConfig(MlmTlmLossConfig, ClwrConfig, ClpcConfig, XlcoConfig):
    """The options of every objective's criterion (masked LM, clwr, clpc, xlco)."""


@register_criterion("xling_unicoder", dataclass=UnicoderLossConfig)
class UnicoderLoss(FairseqCriterion):
    def __init__(self, cfg: UnicoderLossConfig, task):
        super().__init__(task)
        self.objectives = list(task.objectives)
        self.weights = dict(zip(self.objectives, task.objective_weights))
        kinds = {"clwr": ClwrLoss, "clpc": ClpcLoss, "xlco": XlcoLoss}
        self.heads = nn.ModuleDict({name: kinds[name](cfg, task) for name in self.objectives if name in kinds})
        self.masked = MlmTlmLoss(cfg, task)

    def forward(self, model, sample, reduce=True):
        total, log = 0.0, {"ntokens": sample["ntokens"], "nsentences": sample["nsentences"], "sample_size": 1,
                           "nbatches": 1}
        for name in self.objectives:
            sub = sample[name]
            key = log_key(name)
            if name in MASKED:
                loss, n, _ = self.masked(model, sub)
                log[f"{key}_loss"], log[f"{key}_n"] = loss.detach(), n.detach()
            else:
                loss, n, sub_log = self.heads[name](model, sub)
                log.update(sub_log)
            w = self.weights[name]
            if w:
                total = total + w * loss / max(float(n), 1.0)
        if not torch.is_tensor(total):
            raise ValueError("every objective has weight 0")
        log["loss"] = total.detach()
        return total, 1, log

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        def total(key):
            return sum(float(log.get(key, 0)) for log in logging_outputs)

        batches = total("nbatches")
        metrics.log_scalar("loss", total("loss") / max(batches, 1) / math.log(2), batches, round=3)
        keys = sorted({k[: -len("_n")] for log in logging_outputs for k in log if k.endswith("_n")})
        for key in keys:
            n = total(f"{key}_n")
            if n <= 0:
                continue
            metrics.log_scalar(f"{key}_loss", total(f"{key}_loss") / n / math.log(2), n, round=3)
            if any(f"{key}_correct" in log for log in logging_outputs):
                metrics.log_scalar(f"{key}_acc", 100.0 * total(f"{key}_correct") / n, n, round=2)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
