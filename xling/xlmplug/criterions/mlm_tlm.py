"""Criterion ``xling_mlm_tlm``: masked-token cross-entropy, logged as a whole and per MLM / TLM rows."""

import math
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.criterions.masked_lm import MaskedLmConfig


def summed(logging_outputs, key) -> float:
    """``key`` summed over the workers' logging outputs (0 where absent)."""
    return sum(float(log.get(key, 0)) for log in logging_outputs)


@dataclass
class MlmTlmLossConfig(MaskedLmConfig):
    """Same options as fairseq's ``masked_lm`` criterion."""


@register_criterion("xling_mlm_tlm", dataclass=MlmTlmLossConfig)
class MlmTlmLoss(FairseqCriterion):
    def __init__(self, cfg: MlmTlmLossConfig, task):
        super().__init__(task)
        self.tpu = cfg.tpu

    def forward(self, model, sample, reduce=True):
        target = sample["target"]
        masked = target.ne(self.padding_idx)
        sample_size = masked.int().sum()
        rows_tlm = sample.get("tlm")
        if rows_tlm is None:
            rows_tlm = torch.zeros(target.size(0), dtype=torch.bool, device=target.device)
        if not self.tpu and not masked.any():
            masked_arg = None  # keep the graph alive on an all-unmasked batch, as masked_lm does
        else:
            masked_arg = masked
        logits = model(**sample["net_input"], masked_tokens=masked_arg)[0]
        if masked_arg is None:
            targets, tlm = target.view(-1), rows_tlm[:, None].expand_as(target).reshape(-1)
        else:
            targets, tlm = target[masked], rows_tlm[:, None].expand_as(target)[masked]
        nll = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.view(-1), reduction="none",
                              ignore_index=self.padding_idx)
        loss = nll.sum()
        tlm_loss = (nll * tlm).sum()
        n_tlm = (tlm & targets.ne(self.padding_idx)).int().sum()
        logging_output = {
            "loss": loss.detach(),
            "mlm_loss": (loss - tlm_loss).detach(),
            "tlm_loss": tlm_loss.detach(),
            "mlm_sample_size": (sample_size - n_tlm).detach(),
            "tlm_sample_size": n_tlm.detach(),
            "ntokens": sample["ntokens"],
            "nsentences": sample["nsentences"],
            "sample_size": sample_size,
        }
        return loss, sample_size, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        total = partial(summed, logging_outputs)
        n = total("sample_size")
        metrics.log_scalar("loss", total("loss") / max(n, 1) / math.log(2), n, round=3)
        metrics.log_derived("ppl", lambda meters: 2 ** meters["loss"].avg)
        for kind in ("mlm", "tlm"):
            k = total(f"{kind}_sample_size")
            if k > 0:
                metrics.log_scalar(f"{kind}_loss", total(f"{kind}_loss") / k / math.log(2), k, round=3)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
