"""Criterion ``xling_mlm_tlm``: masked-token cross-entropy, logged as a whole and per MLM / TLM rows."""

import functools
import math
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.criterions.masked_lm import MaskedLmConfig


def summed(logging_outputs, key):
    """``key`` summed over the workers' logging outputs (0 where absent); device tensors stay on the device
    (fairseq's meters average them lazily, so logging every update adds no host sync)."""
    return sum(log.get(key, 0) for log in logging_outputs)


@dataclass
class MlmTlmLossConfig(MaskedLmConfig):
    """fairseq's ``masked_lm`` criterion options, and ``--compile-loss``."""
    compile_loss: bool = field(default=False, metadata={
        "help": "torch.compile the masked tokens' cross-entropy (one fused pass over the bf16 logits instead "
                "of an fp32 copy, log-softmax and gather; dynamic number of masked tokens)"})


def token_nll(logits, target):
    """Cross-entropy of each row of ``logits`` (N×V, any float type, computed in fp32) against ``target``."""
    return F.cross_entropy(logits.float(), target, reduction="none")


@functools.cache
def compiled_token_nll():
    """:func:`token_nll` through :func:`torch.compile` (built once per process, dynamic N)."""
    return torch.compile(token_nll, dynamic=True)


@register_criterion("xling_mlm_tlm", dataclass=MlmTlmLossConfig)
class MlmTlmLoss(FairseqCriterion):
    def __init__(self, cfg: MlmTlmLossConfig, task):
        super().__init__(task)
        self.tpu = cfg.tpu
        self.nll = compiled_token_nll() if cfg.compile_loss else token_nll

    def forward(self, model, sample, reduce=True):
        if "masked_index" in sample and sample["sample_size"] > 0 and getattr(model, "takes_masked_index", False):
            return self.forward_indexed(model, sample)
        return self.forward_masked(model, sample)

    def forward_indexed(self, model, sample):
        """A batch of :class:`~xling.xlmplug.data.MaskedExamples`: the collater listed the masked positions and
        counted them, so nothing here waits for the GPU (no boolean indexing, no ``.any()``)."""
        logits = model(**sample["net_input"], masked_index=sample["masked_index"])[0]
        nll = self.nll(logits, sample["masked_target"])
        n, n_tlm = sample["sample_size"], sample["tlm_sample_size"]
        loss = nll.sum()
        tlm_loss = (nll * sample["masked_tlm"]).sum() if n_tlm else torch.zeros_like(loss)
        return loss, n, self.logging_output(sample, loss, tlm_loss, n, n_tlm)

    def forward_masked(self, model, sample):
        """Any masked-LM batch (``target`` is pad except at masked positions), e.g. fairseq's own datasets;
        finds the masked positions on the GPU."""
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
        return loss, sample_size, self.logging_output(sample, loss, tlm_loss, sample_size, n_tlm)

    @staticmethod
    def logging_output(sample, loss, tlm_loss, n, n_tlm) -> dict:
        detach = (lambda x: x.detach() if torch.is_tensor(x) else x)
        return {"loss": loss.detach(), "mlm_loss": (loss - tlm_loss).detach(), "tlm_loss": tlm_loss.detach(),
                "mlm_sample_size": detach(n - n_tlm), "tlm_sample_size": detach(n_tlm),
                "ntokens": sample["ntokens"], "nsentences": sample["nsentences"], "sample_size": n}

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
