"""Head of ``xlco``: cross-lingual contrast (InfoXLM, Chi et al. 2021), InfoNCE between the two sides of
translation pairs.

Each side is encoded apart, pooled (``<s>`` state, or the mean over real tokens), projected by a linear
head and L2-normalised; for every X the other Ys of the batch are the negatives, and symmetrically
(loss averaged over both directions). With ``--xlco-queue-size K`` the last K projected keys of each
side (detached, from earlier updates) are extra negatives: a memory queue, without InfoXLM's
momentum encoder copy. Its accuracy is the in-batch top-1 retrieval of the translation.
"""
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.dataclass import ChoiceEnum, FairseqDataclass

POOLING = ChoiceEnum(["cls", "mean"])


@dataclass
class XlcoConfig(FairseqDataclass):
    xlco_temperature: float = field(default=0.1, metadata={"help": "xlco: softmax temperature of the contrast"})
    xlco_pool: POOLING = field(default="cls", metadata={
        "help": "xlco: sentence vector: the <s> state (InfoXLM) or the mean over real tokens"})
    xlco_queue_size: int = field(default=0, metadata={
        "help": "xlco: keep this many past keys per side as extra negatives (0: in-batch negatives only)"})


class XlcoHead(nn.Module):
    """``forward(features, padding)``: pooled, projected, L2-normalised sentence vectors (B×C, float32)."""

    def __init__(self, dim: int, pad: int, temperature: float = 0.1, pool: str = "cls", queue_size: int = 0):
        super().__init__()
        self.xlco_proj = nn.Linear(dim, dim)  # names kept: checkpoints' criterion keys
        self.pad, self.temperature, self.pool, self.queue_size = pad, temperature, pool, queue_size
        self.register_buffer("xlco_queue", torch.zeros(2, queue_size, dim))
        self.register_buffer("xlco_queue_filled", torch.zeros((), dtype=torch.long))

    @classmethod
    def build(cls, cfg, dim: int, dictionary):
        return cls(dim, dictionary.pad(), float(getattr(cfg, "xlco_temperature", 0.1)),
                   str(getattr(cfg, "xlco_pool", "cls")), int(getattr(cfg, "xlco_queue_size", 0)))

    def forward(self, h, padding):
        if self.pool == "mean":
            real = (~padding).unsqueeze(-1).to(h.dtype)
            v = (h * real).sum(1) / real.sum(1).clamp(min=1)
        else:
            v = h[:, 0, :]
        return F.normalize(self.xlco_proj(v).float(), dim=-1)

    def embed(self, model, net_input):
        h = model(**net_input, features_only=True)[0]
        return self(h, net_input["src_tokens"].eq(self.pad))

    def loss(self, model, sample):
        """On a pair batch ``{"x": net_input, "y": net_input}``: the InfoNCE loss summed over the batch
        (mean of both directions), the batch size, and the in-batch retrievals right (mean of both)."""
        qx, qy = self.embed(model, sample["x"]), self.embed(model, sample["y"])
        n = qx.size(0)
        label = torch.arange(n, device=qx.device)
        k = int(self.xlco_queue_filled) if self.queue_size else 0
        losses, correct = [], 0
        for side, (q, keys) in enumerate(((qx, qy), (qy, qx))):
            logits = q @ keys.t()
            if k:
                logits = torch.cat([logits, q @ self.xlco_queue[1 - side, :k].clone().t().to(q.dtype)], dim=1)
            logits = logits / self.temperature
            losses.append(F.cross_entropy(logits, label, reduction="sum"))
            correct += int(logits[:, :n].argmax(-1).eq(label).sum())
        if self.queue_size and self.training:
            self._enqueue(qx.detach(), qy.detach())
        return (losses[0] + losses[1]) / 2, n, {"correct": correct / 2}

    @torch.no_grad()
    def _enqueue(self, qx, qy):
        """Newest keys first; the oldest fall off the end."""
        m = min(qx.size(0), self.queue_size)
        new = torch.stack([qx[:m], qy[:m]]).to(self.xlco_queue.dtype)
        self.xlco_queue.copy_(torch.cat([new, self.xlco_queue[:, : self.queue_size - m]], dim=1))
        self.xlco_queue_filled.fill_(min(self.queue_size, int(self.xlco_queue_filled) + m))
