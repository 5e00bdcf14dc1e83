"""Criterion ``xling_ngram_loss``: ProphetNet's future n-gram loss over the streams of ``xling_prophetnet``.

Stream j (j = 0: the main stream) at position i predicts target token i + j; its label-smoothed cross-entropy
(fairseq's ``label_smoothed_nll_loss``) is weighted by ``alpha_j = decay^j / sum_k decay^k`` (ProphetNet's
decaying weights; they sum to 1), so with ``--ngram 1`` the loss is exactly fairseq's
``label_smoothed_cross_entropy`` of the main stream. Logged: ``loss`` and ``nll_loss`` (bits per target token,
as fairseq's criterion logs them) and ``stream{j}_loss`` (each stream's nll).
"""
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import label_smoothed_nll_loss
from fairseq.dataclass import FairseqDataclass

from xling.xlmplug.criterions.mlm_tlm import summed


@dataclass
class NgramLossConfig(FairseqDataclass):
    label_smoothing: float = field(default=0.1, metadata={"help": "epsilon of label smoothing, every stream"})
    ngram_decay: float = field(default=0.5, metadata={
        "help": "stream j's loss weight is decay^j, normalised to sum 1 (1: all streams alike)"})


def stream_weights(n: int, decay: float) -> list[float]:
    w = [decay ** j for j in range(n)]
    return [x / sum(w) for x in w]


def shifted(target: torch.Tensor, j: int, pad: int) -> torch.Tensor:
    """The targets of stream j: ``target`` moved j positions left, padded at the end."""
    if j == 0:
        return target
    return torch.cat([target[:, j:], target.new_full((target.size(0), min(j, target.size(1))), pad)], dim=1)[
        :, : target.size(1)]


@register_criterion("xling_ngram_loss", dataclass=NgramLossConfig)
class NgramLoss(FairseqCriterion):
    def __init__(self, task, label_smoothing=0.1, ngram_decay=0.5):
        super().__init__(task)
        self.eps, self.decay = float(label_smoothing), float(ngram_decay)

    def forward(self, model, sample, reduce=True):
        logits, extra = model(**sample["net_input"])
        streams = [logits, *extra.get("ngram_logits", [])]
        weights = stream_weights(len(streams), self.decay)
        target = sample["target"]
        loss = nll = 0.0
        log = {}
        for j, (w, x) in enumerate(zip(weights, streams)):
            lprobs = F.log_softmax(x.float(), dim=-1)
            tj = shifted(target, j, self.padding_idx)
            lj, nj = label_smoothed_nll_loss(lprobs.view(-1, lprobs.size(-1)), tj.reshape(-1), self.eps,
                                             ignore_index=self.padding_idx, reduce=True)
            loss, nll = loss + w * lj, (nll + nj if j == 0 else nll)
            log[f"stream{j}_loss"], log[f"stream{j}_n"] = nj.detach(), int(tj.ne(self.padding_idx).sum())
        n = sample["ntokens"]
        log.update({"loss": loss.detach(), "nll_loss": nll.detach(), "ntokens": n,
                    "nsentences": sample["target"].size(0), "sample_size": n})
        return loss, n, log

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        total = lambda key: summed(logging_outputs, key)  # noqa: E731
        n = total("sample_size")
        metrics.log_scalar("loss", total("loss") / max(n, 1) / math.log(2), n, round=3)
        metrics.log_scalar("nll_loss", total("nll_loss") / max(total("ntokens"), 1) / math.log(2), n, round=3)
        metrics.log_derived("ppl", lambda meters: 2 ** meters["nll_loss"].avg)
        keys = sorted({k[: -len("_n")] for log in logging_outputs for k in log if k.startswith("stream")
                       and k.endswith("_n")})
        for key in keys:
            m = total(f"{key}_n")
            if m > 0:
                metrics.log_scalar(f"{key}_loss", total(f"{key}_loss") / m / math.log(2), m, round=3)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
