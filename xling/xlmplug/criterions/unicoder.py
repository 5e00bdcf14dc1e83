"""Criterion ``xling_unicoder``: the weighted sum of the objectives of task ``xling_unicoder``, every update.

An update's batch holds one sub-batch per objective (see :mod:`xling.xlmplug.unicoder.multi`). The
registry (:mod:`xling.xlmplug.objectives`) says how each is scored: the masked-LM family (mlm / tlm /
clmlm / cs-mlm) by :class:`MlmTlmLoss` through the model's own LM head, the others by their head
(:mod:`xling.xlmplug.heads`). Each loss is turned into a mean over its unit (masked token, recovered
token, pair) and the criterion returns ``Σ_k w_k · mean_k`` with ``sample_size`` 1 (so data-parallel
workers average). Summing weighted losses in one update (rather than sampling one objective per update)
keeps fairseq's trainer, gradient accumulation and checkpointing as they are: one sample, one criterion
call, one backward. Every objective is logged on its own: ``{mlm,tlm,clwr,clpc,clmlm,cs_mlm,xlco,rtd,trtd}_loss``
(bits per unit, like fairseq's ``loss``), and ``{clpc,xlco,rtd,trtd}_acc`` (%) for the losses that count right
answers; rtd/trtd also log their generator's masked-LM loss, ``{rtd,trtd}_gen_loss``.

The heads are submodules of this criterion (``heads.{objective}.…``): fairseq's trainer optimises and
checkpoints criterion parameters (``state["criterion"]``), and the model's state dict, the encoder, stays
exactly the one ``xling_mlm_tlm`` trains.
"""
import math
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn as nn
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion

from xling.xlmplug.criterions.mlm_tlm import MlmTlmLoss, MlmTlmLossConfig, summed
from xling.xlmplug.heads.clpc import ClpcConfig
from xling.xlmplug.heads.clwr import ClwrConfig
from xling.xlmplug.heads.rtd import RtdConfig
from xling.xlmplug.heads.xlco import XlcoConfig
from xling.xlmplug.objectives import OBJECTIVES


@dataclass
class UnicoderLossConfig(MlmTlmLossConfig, ClwrConfig, ClpcConfig, XlcoConfig, RtdConfig):
    """The options of the masked-LM loss and of every head (clwr, clpc, xlco, rtd/trtd)."""


def model_dim(task) -> int:
    dim = getattr(task, "model_dim", None)
    if not dim:
        raise ValueError("the task must build the model before this criterion (it needs the model width)")
    return int(dim)


@register_criterion("xling_unicoder", dataclass=UnicoderLossConfig)
class UnicoderLoss(FairseqCriterion):
    def __init__(self, cfg: UnicoderLossConfig, task):
        super().__init__(task)
        self.objectives = [OBJECTIVES[name] for name in task.objectives]
        self.weights = dict(zip(task.objectives, task.objective_weights))
        heads = {o.name: o.head_class() for o in self.objectives if o.head}
        dim = model_dim(task) if heads else 0
        built = {}  # a head class marked ``shared`` (rtd's generator) is one instance for all its objectives
        for name, cls in heads.items():
            if cls in built and getattr(cls, "shared", False):
                continue
            built[cls] = cls.build_for_task(cfg, task) if hasattr(cls, "build_for_task") else \
                cls.build(cfg, dim, task.source_dictionary)
        self.heads = nn.ModuleDict({name: built[cls] for name, cls in heads.items()})
        self.masked = MlmTlmLoss(cfg, task)

    def score(self, objective, model, sub):
        """``(summed loss, count, stats)`` of one objective's sub-batch."""
        if objective.head:
            return self.heads[objective.name].loss(model, sub)
        loss, n, _log = self.masked(model, sub)
        return loss, n, {}

    def forward(self, model, sample, reduce=True):
        total, log = 0.0, {"ntokens": sample["ntokens"], "nsentences": sample["nsentences"], "sample_size": 1,
                           "nbatches": 1}
        for objective in self.objectives:
            loss, n, stats = self.score(objective, model, sample[objective.name])
            key = objective.log_key
            # a head may log another loss than the one it optimises (rtd: the discriminator's) and parts of it
            logged = stats.get("logged_loss", loss)
            log[f"{key}_loss"], log[f"{key}_n"] = logged.detach(), n.detach() if torch.is_tensor(n) else n
            if "correct" in stats:
                log[f"{key}_correct"] = stats["correct"]
            for part, (part_loss, part_n) in stats.get("parts", {}).items():
                log[f"{key}_{part}_loss"], log[f"{key}_{part}_n"] = part_loss, part_n
            w = self.weights[objective.name]
            if w:
                total = total + w * loss / max(float(n), 1.0)
        if not torch.is_tensor(total):
            raise ValueError("every objective has weight 0")
        log["loss"] = total.detach()
        return total, 1, log

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        total = partial(summed, logging_outputs)
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
