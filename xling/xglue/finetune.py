"""The one fine-tuning loop, shared by every task family (each a :class:`xling.xglue.runner.Runner`).

Why not fairseq's trainer: each XGLUE family needs its own head and input format (word-level tags,
sentence pairs, query groups, QA windows), and fairseq would need a registered task + dataset +
criterion per format; the eval suite fine-tunes small heads for a few epochs, where fairseq's
distributed machinery buys nothing and its per-format registration costs a lot of code. The loop is
plain AdamW with linear warm-up/decay, gradient clipping, and model selection on the train
language's dev set only (zero-shot rule): the best state is kept in memory. It is the one place that
decides where and how the runner's network trains (device, precision, data parallelism): runners only
form batches (``collate``) and compute ``loss(model, batch)`` / predictions with the model given.

``freeze_embeddings`` keeps the token embedding table fixed: with XLM-R's 250k-piece vocabulary it
holds most of a small model's parameters (e5-small: 96M of 118M), so freezing it removes most of the
optimizer's time and memory (AdamW keeps two more copies) while the transformer layers still adapt;
pieces unseen in the English training data then also keep their pretrained vectors.
``max_length`` caps the input length in pieces (0: the model's maximum), for tags and classification
by truncation, for QA by shorter sliding windows.
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from typing import Callable


@dataclass
class FinetuneConfig:
    lr: float = 5e-4
    epochs: int = 3
    batch_size: int = 16
    warmup: float = 0.1
    weight_decay: float = 0.01
    clip: float = 1.0
    seed: int = 1
    freeze_embeddings: bool = False
    max_length: int = 0

    def __post_init__(self):
        from xling.errors import XlingError

        if self.max_length and self.max_length < 64:
            raise XlingError(f"--max-length {self.max_length} is too short", fix="0 (the model's maximum) or >= 64")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise XlingError("--epochs and --batch-size must be at least 1 and --lr positive")

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def set_seed(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(runner, items: list, dev_score: Callable[[object], float], cfg: FinetuneConfig,
          on_step: Callable[[], None] | None = None) -> dict:
    """Train ``runner.module`` on ``items`` (``runner.train_items(...)``; batches formed here with
    ``runner.collate``, loss from ``runner.loss``); after each epoch ``dev_score(model)`` selects. Return
    the dev history; the module ends with the weights of its best dev epoch, in eval mode."""
    import torch

    set_seed(cfg.seed)
    module = runner.module
    if cfg.freeze_embeddings:
        for name, sub in module.named_modules():
            if name.endswith("embed_tokens"):
                sub.weight.requires_grad_(False)
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = max(1, cfg.epochs * ((len(items) + cfg.batch_size - 1) // cfg.batch_size))
    warm = max(1, int(cfg.warmup * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    rng = random.Random(cfg.seed)
    best, best_state, history = -1.0, None, []
    for _epoch in range(cfg.epochs):
        module.train()
        order = list(range(len(items)))
        rng.shuffle(order)
        for i in range(0, len(order), cfg.batch_size):
            batch = runner.collate([items[j] for j in order[i:i + cfg.batch_size]])
            loss = runner.loss(module, batch)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.clip)
            opt.step()
            sched.step()
            if on_step:
                on_step()
        module.eval()
        with torch.no_grad():
            score = float(dev_score(module))
        history.append(score)
        if score > best:
            best, best_state = score, copy.deepcopy(module.state_dict())
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return {"dev_history": history, "best_dev": best, "steps": steps}
