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
by truncation (tagging: cut words start another window), for QA by shorter sliding windows
(``doc_stride`` pieces apart).

``micro_batch_size`` (0: none) pads and runs each process's share of a batch in parts of at most that many
examples, whose gradients accumulate into the batch's one update (less memory, the same update up to float
sums and dropout draws). When a step runs out of memory in a one-process run whose micro-batch size xling chose,
the step is retried in parts half as large (down to one example) and the run goes on with them: the first
batch of a bucketed epoch is its longest, so that this happens at once.

Devices and precision (:mod:`xling.xglue.device`): the network and every batch go to ``device``;
``precision`` bf16/fp16 runs forward passes under autocast (fp16 with a GradScaler). Batches come
from a DataLoader over length-bucketed index batches (:mod:`xling.xglue.batching`; padding in worker
processes, pinned memory on GPUs). Under torchrun (:mod:`xling.xglue.distributed`) the network is a
DDP replica, each process trains on its share of the same global batch and process 0 selects.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable

# FinetuneConfig fields that do not change what is learned: left out of the run's signature
RUNTIME = ("seed", "device", "workers", "micro_batch_size")


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
    doc_stride: int = 0
    eval_batch_size: int = 64
    precision: str = "fp32"
    bucket: bool = False  # length-bucketed batches: faster, but noisier updates on short runs
    device: str = "auto"
    workers: int = -1  # DataLoader worker processes; -1: xling.xglue.device.default_workers
    micro_batch_size: int = 0  # most examples per forward/backward pass and process; 0: the whole share

    def __post_init__(self):
        from xling.errors import XlingError

        if self.max_length and self.max_length < 64:
            raise XlingError(f"--max-length {self.max_length} is too short", fix="0 (the model's maximum) or >= 64")
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1 or self.lr <= 0:
            raise XlingError("--epochs, --batch-size and --eval-batch-size must be at least 1 and --lr positive")
        if self.micro_batch_size < 0:
            raise XlingError(f"--micro-batch-size must be >= 0 (0: whole batches), got {self.micro_batch_size}")
        if self.doc_stride < 0:
            raise XlingError(f"--doc-stride must be >= 0 (0: half a window), got {self.doc_stride}")

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def hparams(self) -> dict:
        """What decides the fine-tuned weights (the signature's part)."""
        return {k: v for k, v in self.__dict__.items() if k not in RUNTIME}


def set_seed(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare(runner, cfg: FinetuneConfig):
    """Resolve the device and precision, move ``runner.module`` there and set the runner's prediction
    device, precision and batch size. Returns the device."""
    from xling.xglue import distributed
    from xling.xglue.device import check_precision, resolve_device

    device = resolve_device(cfg.device)
    check_precision(cfg.precision, device)
    distributed.init(device)
    runner.module.to(device)
    runner.device, runner.precision, runner.predict_batch_size = device, cfg.precision, cfg.eval_batch_size
    runner.workers = cfg.workers
    return device


def _best_copy(module) -> dict:
    """The weights to keep, on the CPU (a copy on the GPU would double the model's memory there)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def train(runner, items: list, dev_score: Callable[[object], float], cfg: FinetuneConfig,
          on_step: Callable[[], None] | None = None) -> dict:
    """Train ``runner.module`` on ``items`` (``runner.train_items(...)``; batches formed here with
    ``runner.collate``, loss from ``runner.loss``); after each epoch ``dev_score(model)`` selects (on
    process 0). Return the dev history and training time; the module ends with the weights of its best
    dev epoch, in eval mode."""
    import torch

    from xling.xglue import distributed
    from xling.xglue.batching import EpochSampler, loader, parts
    from xling.xglue.device import autocast, default_workers, grad_scaler

    set_seed(cfg.seed)
    device = prepare(runner, cfg)
    rank, world = distributed.world()
    module = runner.module
    if cfg.freeze_embeddings:
        for name, sub in module.named_modules():
            if name.endswith("embed_tokens"):
                sub.weight.requires_grad_(False)
    params = [p for p in module.parameters() if p.requires_grad]
    model = distributed.wrap(module, device)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sampler = EpochSampler([runner.size(it) for it in items], cfg.batch_size, cfg.seed, cfg.bucket)
    steps = max(1, cfg.epochs * len(sampler))
    warm = max(1, int(cfg.warmup * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    scaler = grad_scaler(cfg.precision, device)
    workers = default_workers(device) if cfg.workers < 0 else cfg.workers
    micro, batches = cfg.micro_batch_size, None
    best, best_state, history, seconds = -1.0, None, [], 0.0
    for _epoch in range(cfg.epochs):
        if batches is None or batches.collate_fn.micro != micro:  # a step ran out of memory: smaller parts from now
            batches = loader(runner, items, sampler, device, workers, rank, world, micro)
        model.train()
        t0 = time.perf_counter()
        for mine, weight, batch_parts in batches:
            if batches.collate_fn.micro != micro:  # padded before a step ran out of memory: again, in smaller parts
                batch_parts = parts(runner, items, mine, weight, micro)
            while True:
                try:
                    accumulate(runner, model, batch_parts, device, cfg.precision, scaler)
                    break
                except torch.OutOfMemoryError as e:
                    opt.zero_grad(set_to_none=True)
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    micro = smaller(micro, len(mine), cfg, world, e)
                    batch_parts = parts(runner, items, mine, weight, micro)
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, cfg.clip)
            scaler.step(opt)
            scaler.update()
            sched.step()
            opt.zero_grad(set_to_none=True)
            if on_step:
                on_step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds += time.perf_counter() - t0
        module.eval()
        score = None
        if rank == 0:
            with torch.no_grad(), autocast(cfg.precision, device):
                score = float(dev_score(module))
        score = distributed.broadcast(score)
        history.append(score)
        if score > best:
            best = score
            best_state = _best_copy(module) if rank == 0 else None
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return {"dev_history": history, "best_dev": best, "steps": steps, "train_seconds": round(seconds, 3),
            "train_examples": cfg.epochs * len(items), "world_size": world, "micro_batch_size": micro}


def accumulate(runner, model, batch_parts: list, device, precision: str, scaler) -> None:
    """Forward and backward passes of a batch's parts; their gradients add up (a data-parallel replica
    all-reduces after the last part only)."""
    import contextlib

    from xling.xglue.device import autocast, to_device

    for k, (weight, part) in enumerate(batch_parts):
        last = k == len(batch_parts) - 1
        with (contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()):
            with autocast(precision, device):
                loss = runner.loss(model, to_device(part, device))
            scaler.scale(loss * weight if weight != 1.0 else loss).backward()


def smaller(micro: int, share: int, cfg: FinetuneConfig, world: int, error: Exception) -> int:
    """The micro-batch size to retry a step that ran out of memory with: half the current one, when xling chose it
    in a one-process run; else :class:`XlingError` with the size to use."""
    import logging

    from xling.errors import XlingError

    now = micro or share
    if cfg.micro_batch_size or world > 1 or now <= 1:
        fix = (f"--micro-batch-size {now // 2} (examples per forward/backward pass; the update keeps --batch-size)"
               if now > 1 else "a shorter --max-length, a smaller model, or a device with more memory")
        raise XlingError(f"fine-tuning ran out of memory on a micro-batch of {now} examples"
                         + (f" in one of {world} processes" if world > 1 else "") + f": {str(error)[:200]}", fix=fix)
    logging.getLogger("xling.xglue").warning(
        f"fine-tuning ran out of memory on {now} examples at once; going on in micro-batches of {now // 2} "
        f"(the same updates, gradients accumulated)")
    return now // 2
