"""Batches for fine-tuning and prediction: length-bucketed index batches and the torch ``DataLoader``
that pads them (``runner.collate``) in worker processes and pins them for the GPU.

Training batches are bucketed as Hugging Face's ``group_by_length`` does: the epoch's shuffled order is
cut into mega-batches of 50 batches, each sorted by length, cut into batches, and the batches shuffled
(the longest first, so that a too-large batch runs out of memory at the first step, not hours later).
Batches then hold similar lengths and carry little padding, which is most of a GPU's wasted work on
sentence-level tasks. Prediction sorts the whole set by length (longest first) and gives every
prediction its original position back.

In a data-parallel run every process draws the same global batch (same seed) and pads only its share
(every ``world``-th item); the share's loss weight ``len(share) * world / len(batch)`` makes DDP's
gradient average equal the gradient of the global batch's mean loss (exactly for per-example losses).
A share left empty by a short last batch gets one item with weight 0, because every process must run
the same number of backward passes.

With a micro-batch size, a share is padded as parts of at most that many items, each weighted by its part of
the share, whose gradients accumulate into one update (:func:`parts`): the same update in less memory.
"""
from __future__ import annotations

import random

MEGA = 50  # batches per sorted mega-batch (Hugging Face's group_by_length uses 50)


def epoch_batches(sizes: list[int], batch_size: int, rng: random.Random, bucket: bool) -> list[list[int]]:
    """One epoch of index batches over items of ``sizes`` (shuffled with ``rng``)."""
    order = list(range(len(sizes)))
    rng.shuffle(order)
    if bucket:
        mega = batch_size * MEGA
        order = [i for k in range(0, len(order), mega)
                 for i in sorted(order[k:k + mega], key=lambda j: -sizes[j])]
    batches = [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
    if bucket and batches:
        rng.shuffle(batches)
        longest = max(range(len(batches)), key=lambda b: max(sizes[i] for i in batches[b]))
        batches[0], batches[longest] = batches[longest], batches[0]
    return batches


def sorted_batches(sizes: list[int], batch_size: int) -> list[list[int]]:
    """Prediction batches: every index once, by decreasing size."""
    order = sorted(range(len(sizes)), key=lambda i: -sizes[i])
    return [order[k:k + batch_size] for k in range(0, len(order), batch_size)]


class EpochSampler:
    """A ``batch_sampler`` drawing a fresh epoch of bucketed batches each time it is iterated (so a
    DataLoader with persistent workers serves every epoch)."""

    def __init__(self, sizes, batch_size, seed, bucket):
        self.sizes, self.batch_size, self.bucket = sizes, batch_size, bucket
        self.rng = random.Random(seed)

    def __len__(self):
        return (len(self.sizes) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        return iter(epoch_batches(self.sizes, self.batch_size, self.rng, self.bucket))


def share(batch: list[int], rank: int, world: int) -> tuple[list[int], float]:
    """This process's items of a global batch and its loss weight (see the module's doc)."""
    if world == 1:
        return batch, 1.0
    mine = batch[rank::world]
    if not mine:
        return batch[:1], 0.0
    return mine, len(mine) * world / len(batch)


def parts(runner, items: list, mine: list[int], weight: float, micro: int) -> list[tuple[float, object]]:
    """``(weight, padded batch)`` of each part of at most ``micro`` items of a share (0: one part) whose
    weighted losses add up to the share's."""
    size = micro or len(mine)
    chunks = [mine[k:k + size] for k in range(0, len(mine), size)]
    return [(weight * len(c) / len(mine), runner.collate([items[i] for i in c])) for c in chunks]


class _Collate:
    """Picklable collate function: (indices, weight, parts) of one index batch (:func:`parts`)."""

    def __init__(self, runner, items, rank, world, micro=0):
        self.runner, self.items, self.rank, self.world, self.micro = runner, items, rank, world, micro

    def __call__(self, batch):
        mine, weight = share(list(batch), self.rank, self.world)
        return mine, weight, parts(self.runner, self.items, mine, weight, self.micro)


class _Items:
    """The dataset a DataLoader indexes: index i stands for item i (collate looks items up)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


def loader(runner, items: list, batch_sampler, device, workers: int, rank: int = 0, world: int = 1, micro: int = 0):
    """A DataLoader yielding ``(indices, weight, parts)``: index batches from ``batch_sampler`` padded by
    ``runner.collate`` in parts of at most ``micro`` items (in ``workers`` processes; pinned when ``device`` is a
    GPU)."""
    from torch.utils.data import DataLoader

    collate = _Collate(runner, items, rank, world, micro)
    return DataLoader(_Items(len(items)), batch_sampler=batch_sampler, collate_fn=collate,
                      num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                      prefetch_factor=4 if workers > 0 else None)
