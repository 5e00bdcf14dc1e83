"""One training example per objective for every index: the batch of an update holds a sub-batch per objective.

``MultiObjectiveDataset({"mlm": ds, "clwr": ds2, ...})``: item ``i`` is ``{name: ds_name[map_name[i]]}``
where ``map_name`` cycles through a per-epoch permutation of that objective's examples, so every
objective sees all of its data once per ``len(self)`` examples, whatever its size. The collater calls
each objective dataset's own collater. Hand-written: fairseq's ``MultiCorpusDataset`` and
``RoundRobinZipDatasets`` either pick one corpus per batch or require a dict of
equally indexed datasets without per-objective cycling; an update here must see every objective.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from fairseq.data import FairseqDataset, data_utils


class MultiObjectiveDataset(FairseqDataset):
    def __init__(self, datasets: dict, seed: int, shuffle: bool = True, size: int | None = None):
        assert datasets, "at least one objective"
        self.datasets, self.seed, self.shuffle = dict(datasets), seed, shuffle
        self.names = list(self.datasets)
        self.n = int(size or max(len(d) for d in self.datasets.values()))
        self.epoch = 1
        self._build_maps()

    def _build_maps(self):
        self.maps, sizes = {}, np.zeros(self.n, dtype=np.int64)
        self.max_sizes = np.zeros(self.n, dtype=np.int64)
        for k, (name, ds) in enumerate(self.datasets.items()):
            m = len(ds)
            if self.shuffle:
                with data_utils.numpy_seed(self.seed, self.epoch, k):
                    reps = -(-self.n // m)
                    order = np.concatenate([np.random.permutation(m) for _ in range(reps)])[: self.n]
            else:
                order = np.arange(self.n) % m
            self.maps[name] = order
            sub = np.asarray(ds.sizes)[order]
            sizes += sub
            self.max_sizes = np.maximum(self.max_sizes, sub)
        self._sizes = sizes

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return False  # the per-objective maps change every epoch

    def set_epoch(self, epoch):
        self.epoch = epoch
        for ds in self.datasets.values():
            if hasattr(ds, "set_epoch"):
                ds.set_epoch(epoch)
        self._build_maps()

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return {"id": index, **{name: ds[int(self.maps[name][index])] for name, ds in self.datasets.items()}}

    @property
    def sizes(self):
        # what fairseq filters against --max-positions: the longest of the index's examples (each is one
        # forward pass); num_tokens counts them all
        return self.max_sizes

    def num_tokens(self, index):
        return int(self._sizes[index])

    def size(self, index):
        return int(self.max_sizes[index])  # each objective's example is within the model's positions

    def ordered_indices(self):
        if self.shuffle:
            with data_utils.numpy_seed(self.seed, self.epoch):
                return np.random.permutation(self.n)
        return np.arange(self.n)

    def collater(self, samples):
        if not samples:
            return {}
        out = {"id": torch.tensor([s["id"] for s in samples]), "nsentences": len(samples)}
        ntokens = 0
        for name, ds in self.datasets.items():
            sub = ds.collater([s[name] for s in samples])
            out[name] = sub
            ntokens += int(sub.get("ntokens", 0))
        out["ntokens"] = ntokens
        return out


class Repeat(FairseqDataset):
    """``dataset`` listed ``reps`` times (index ``i`` reads item ``i % len(dataset)``), so a wrapper that
    draws randomness per index (masking) draws anew for every repetition."""

    def __init__(self, dataset, reps: int):
        self.dataset, self.reps, self.m = dataset, max(1, int(reps)), len(dataset)
        self.sizes = np.tile(np.asarray(dataset.sizes), self.reps)

    def __len__(self):
        return self.m * self.reps

    def __getitem__(self, index):
        return self.dataset[index % self.m]

    def num_tokens(self, index):
        return int(self.sizes[index])

    def size(self, index):
        return int(self.sizes[index])

    def collater(self, samples):
        return self.dataset.collater(samples)

    def set_epoch(self, epoch):
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


class Repeatable:
    """Mixin of the objective datasets that draw randomness per index: ``with_reps(r)`` is the same data
    listed ``r`` times, each repetition with its own draws (their ``__getitem__`` reads item ``index % m``)."""

    def with_reps(self, reps: int):
        out = copy.copy(self)
        out.reps = max(1, int(reps))
        out.sizes = np.tile(np.asarray(self.sizes)[: self.m], out.reps)
        return out
