"""The runner protocol: what every XGLUE task family (tag, classify, rank, qa, generate) implements so
that :mod:`xling.xglue.run` fine-tunes, predicts, writes and scores them all the same way.

A runner owns the network for one task (``module``: the pretrained model plus the task's head, a plain
``nn.Module``) and everything that depends on the task's format: reading one (language, split) of the
release into examples, forming tensor batches, the loss, turning outputs into predictions, and the
official prediction-file layout. It does not own the optimisation: :func:`xling.xglue.finetune.train`
is the one loop (optimizer, schedule, model selection) and the place where devices, precision and
data parallelism belong; it calls ``collate`` and ``loss(model, batch)`` with the network it trains
(``model`` may wrap ``module``, e.g. for DDP), and runners predict through :meth:`Runner.batches`,
which sorts by length (``size``), pads, moves each batch to the runner's ``device`` and gives each
prediction its original position; :func:`xling.xglue.finetune.prepare` sets ``device``,
``precision`` and ``predict_batch_size`` (``--eval-batch-size``).

Life of a runner in :func:`xling.xglue.run.run_task`::

    r = RUNNERS[spec.family](spec, loaded_model, cfg)  # cfg: the run's EvalConfig
    r.check_inputs(data, langs)                        # optional: read every file before training
    items = r.train_items(r.load(data, train_lang, "train", limit, train=True))
    train(r, items, dev_score=lambda m: r.dev_score(m, dev, train_lang), ...)
    for each split and language:
        ex = r.load(data, lang, split, limit); pred = r.predict(r.module, ex)   # under autocast
        write r.format(pred)  (gold: r.gold_slice(ex) when the examples were capped)
        r.extra_scores(ex, pred, lang, langs)          # e.g. generation's off-target rate
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterator

from xling.xglue.tasks import TaskSpec


class Runner(ABC):
    """One task family. Subclasses set ``module`` in ``__init__`` (after the head is created, so that
    the seed decides the head's initialisation)."""

    model_kind: str = "encoder"  # what it fine-tunes: "encoder" (load_encoder) or "seq2seq" (load_seq2seq)
    module: Any  # torch.nn.Module: the pretrained network + the task head, trained as one
    predict_batch_size: int = 32
    device: Any = None  # torch.device of the module and of the batches (None: where collate made them)
    precision: str = "fp32"
    workers: int = 0  # DataLoader worker processes for prediction batches (-1: the device's default)

    def __init__(self, spec: TaskSpec):
        self.spec = spec

    # ---- examples
    def check_inputs(self, data: Path, langs: list[str]) -> None:
        """Read and check the inputs of every language before any training (default: nothing to do;
        files are then read as they are needed)."""

    @abstractmethod
    def load(self, data: Path, lang: str, split: str, limit: int | None = None, train: bool = False) -> Any:
        """The examples of one (language, split) of the release under ``data`` (the first ``limit``);
        ``train``: for training (a runner may drop examples that cannot teach anything)."""

    def train_items(self, loaded) -> list:
        """The units that training shuffles and batches (default: the loaded examples themselves)."""
        return loaded

    # ---- batches and loss
    @abstractmethod
    def collate(self, items: list) -> dict:
        """One batch: tensors under ``net_input`` (the arguments of ``module.forward``), targets and
        whatever ``loss`` / ``predict`` need besides."""

    @abstractmethod
    def loss(self, model, batch: dict):
        """Mean loss of ``batch`` (a scalar tensor) under ``model`` (``module`` or a wrapper of it)."""

    @abstractmethod
    def size(self, item) -> int:
        """The length of one item in pieces (length-bucketed batches)."""

    def batches(self, items: list, batch_size: int | None = None) -> Iterator[tuple[list[int], list, dict]]:
        """(positions of the items in ``items``, the items, their batch on ``device``) for prediction,
        longest items first (similar lengths share a batch: little padding)."""
        import torch

        from xling.xglue.batching import loader, sorted_batches
        from xling.xglue.device import default_workers, to_device

        device = self.device or torch.device("cpu")
        workers = default_workers(device) if self.workers < 0 else self.workers
        order = sorted_batches([self.size(it) for it in items], batch_size or self.predict_batch_size)
        for idx, _weight, [(_, batch)] in loader(self, items, order, device, workers if len(order) > 1 else 0):
            yield idx, [items[i] for i in idx], to_device(batch, device)

    # ---- predictions
    @abstractmethod
    def predict(self, model, loaded) -> Any:
        """Predictions for ``loaded`` (no gradients, ``model`` in eval mode)."""

    @abstractmethod
    def score(self, loaded, predictions, lang: str) -> float:
        """The task's metric of ``predictions`` against the gold of ``loaded`` (in memory)."""

    def dev_score(self, model, loaded, lang: str) -> float:
        """What model selection maximises on the train language's dev set (default: the metric)."""
        return self.score(loaded, self.predict(model, loaded), lang)

    @abstractmethod
    def format(self, predictions) -> str:
        """The text of the official prediction file (``TASK/lang.prediction``)."""

    @abstractmethod
    def gold_slice(self, loaded) -> str:
        """The gold of ``loaded`` in its file format (scoring capped runs against the same slice)."""

    def extra_scores(self, loaded, predictions, lang: str, langs: list[str]) -> dict:
        """Further per-language measurements besides the metric ({name: value}; default none)."""
        return {}

    def signature(self) -> str | None:
        """A metric signature to report with the task (generation: sacrebleu's), or None."""
        return None
