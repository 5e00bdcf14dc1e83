"""Head of ``rtd`` and ``trtd``: replaced-token detection (ELECTRA, Clark et al. 2020; on packed translation
pairs: XLM-E's TRTD, Chi et al. 2022).

On a masked-LM batch (15 % of the tokens chosen, 80/10/10 corrupted, spans or whole words as the task masks):

1. the generator (:class:`~xling.xlmplug.heads.rtd_generator.RtdGenerator`, narrow, sharing the discriminator's
   embeddings) predicts the chosen tokens: masked-LM cross-entropy, logged as ``{objective}_gen_loss``;
2. a token is sampled from its softmax at each chosen position (no gradient flows through the sample) and put
   there in the original sentence;
3. the discriminator (the encoder being trained: its states through this head's dense + GELU + 1-way output)
   tells for every real token whether it was replaced; a sampled token equal to the original counts as original
   (ELECTRA). Its binary cross-entropy per token is the objective's logged loss, its accuracy ``{objective}_acc``.

The objective is ``gen_mean + --rtd-weight · disc_mean`` (ELECTRA: 50), returned as a sum over the real tokens
so that the criterion's mean per token is exactly that. The generator and this classifier are criterion
parameters; the model's state dict stays the discriminator, the encoder that evaluation and export read.
One head serves both rtd and trtd in a run (one generator), as XLM-E shares it.
"""
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from xling.xlmplug.heads.rtd_generator import RtdGenerator, RtdGeneratorConfig


@dataclass
class RtdConfig(RtdGeneratorConfig):
    rtd_weight: float = field(default=50.0, metadata={
        "help": "rtd/trtd: weight of the discriminator's per-token loss against the generator's MLM loss "
                "(ELECTRA: 50)"})
    rtd_temperature: float = field(default=1.0, metadata={
        "help": "rtd/trtd: temperature of the generator's softmax that replacements are sampled from"})


def encoder_of(model):
    """The RoBERTa encoder of ``model`` (possibly wrapped for data-parallel training)."""
    return getattr(model, "encoder", None) or model.module.encoder


class RtdHead(nn.Module):
    """``forward(states B×T×C)``: the discriminator's replaced-or-not logits (B×T)."""

    shared = True  # one instance for rtd and trtd

    def __init__(self, dim: int, generator: RtdGenerator, pad: int, never_sampled: tuple[int, ...],
                 weight: float = 50.0, temperature: float = 1.0):
        super().__init__()
        self.generator = generator
        self.rtd_dense = nn.Linear(dim, dim)
        self.rtd_out = nn.Linear(dim, 1)
        self.pad, self.weight, self.temperature = pad, weight, temperature
        self.register_buffer("never_sampled", torch.tensor(never_sampled, dtype=torch.long), persistent=False)

    @classmethod
    def build_for_task(cls, cfg, task):
        d = task.source_dictionary
        dim, layers = task.model_dim, task.model_layers
        generator = RtdGenerator.build(cfg, dim, layers, len(d))
        return cls(dim, generator, d.pad(), (d.pad(), d.bos(), d.eos(), d.unk(), task.mask_idx),
                   float(getattr(cfg, "rtd_weight", 50.0)), float(getattr(cfg, "rtd_temperature", 1.0)))

    def forward(self, states):
        return self.rtd_out(F.gelu(self.rtd_dense(states))).squeeze(-1)

    def replace(self, logits, src, index):
        """The discriminator's input (``src`` with samples at ``index``) and which samples differ from
        ``original``; drawn without gradient, never a special token."""
        with torch.no_grad():
            scores = logits.detach().float() / self.temperature
            scores[:, self.never_sampled] = float("-inf")
            sampled = torch.multinomial(F.softmax(scores, dim=-1), 1).squeeze(1)
            corrupted = src.reshape(-1).clone()
            corrupted[index] = sampled
        return corrupted.view_as(src), sampled

    def loss(self, model, sample):
        net, index, original = sample["net_input"], sample["masked_index"], sample["masked_target"]
        src = net["src_tokens"]
        padding = src.eq(self.pad)
        enc = encoder_of(model).sentence_encoder
        embedded, _ = enc.forward_embedding(src, positions=net.get("positions"), lang_ids=net.get("lang_ids"))
        gen_logits = self.generator(embedded, padding, index, enc.embed_tokens.weight)
        gen_nll = F.cross_entropy(gen_logits.float(), original, reduction="sum")
        corrupted, sampled = self.replace(gen_logits, src, index)
        replaced = torch.zeros(src.numel(), dtype=torch.bool, device=src.device)
        replaced[index] = sampled.ne(original)
        replaced = replaced.view_as(src)
        states = model(**{**net, "src_tokens": corrupted}, features_only=True)[0]
        real = ~padding
        logits = self(states)[real].float()
        labels = replaced[real]
        disc = F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="sum")
        n_tokens, n_masked = int(real.sum()), max(int(index.numel()), 1)
        total = self.weight * disc + gen_nll * (n_tokens / n_masked)
        stats = {"correct": (logits > 0).eq(labels).sum().detach(), "logged_loss": disc.detach(),
                 "parts": {"gen": (gen_nll.detach(), int(index.numel()))}}
        return total, n_tokens, stats
