"""Resuming a run on another number of data-parallel ranks without skipping or repeating data.

fairseq saves the position in an epoch as ``iterations_in_epoch``: micro-batches taken by each rank. Rank ``r`` of
``W`` takes batches ``r, r + W, r + 2W, ...`` of the epoch's batch order, which is the same for any ``W`` (fairseq's
``ShardedIterator`` over the batches shuffled by seed and epoch), so ``k`` iterations on ``W`` ranks consumed the
first ``k * W`` batches. Resumed on ``W'`` ranks, fairseq skipped ``k * W'`` batches. A run moved from 8 GPUs to 16
(a scheduler's requeue onto another allocation) passed over ``k * 8`` batches that no rank had trained on: at
update 50k of an epoch that is a whole corpus, most of the corpus. Moved to 4, it trained ``k * 4`` batches again.

Here the saved position also records the rank count (:data:`SHARDS_KEY`; plain fairseq ignores the extra keys), and a
resume on ``W'`` ranks starts at iteration ``floor(k * W / W')``: every batch not yet trained on is trained, and at
most ``W' - 1`` batches are trained twice when ``k * W`` is not a multiple of ``W'``.

xling keeps a run's sequences per update on any number of ranks (:mod:`xling.pretrain.batching`), so a move to
other ranks often changes the micro-batch too, and with it the epoch's batches: ``B`` of them before, ``B'`` now
(:data:`BATCHES_KEY`). The order is then another one, and no position in it holds exactly the examples not yet
trained; the resume starts at the same fraction of the epoch, iteration ``floor(k * W * B' / (B * W'))`` (the
formula above when ``B' = B``).
"""
from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

SHARDS_KEY = "xling_num_shards"
BATCHES_KEY = "xling_epoch_batches"


def rescaled(state: dict, num_shards: int, num_batches: int | None = None) -> dict:
    """An epoch iterator's saved ``state`` for ``num_shards`` ranks and an epoch of ``num_batches`` batches (None:
    as many as saved). Unchanged when it says nothing of its ranks, had as many ranks and batches, or is at the
    start of an epoch."""
    saved, k = state.get(SHARDS_KEY), int(state.get("iterations_in_epoch", 0) or 0)
    before = int(state.get(BATCHES_KEY) or 0) or None
    after = num_batches if before else None
    if not saved or k <= 0 or (saved == num_shards and after == before):
        return state
    if after == before:
        start = k * int(saved) // num_shards
        logger.warning(f"resuming on {num_shards} data-parallel ranks instead of {saved}: the {k * saved} batches "
                       f"of epoch {state.get('epoch')} trained so far are {k} per rank on {saved} ranks; starting "
                       f"each rank at its batch {start} (fairseq's own resume would start at {k})")
    else:
        start = min(k * int(saved) * after // (before * num_shards), max(0, -(-after // num_shards) - 1))
        logger.warning(f"resuming epoch {state.get('epoch')} in {after} batches on {num_shards} data-parallel "
                       f"rank(s) instead of {before} on {saved} (another micro-batch size): {k * saved} of its "
                       f"{before} batches ({k * saved / before:.1%}) were trained; starting each rank at its batch "
                       f"{start}, as far into the epoch" + (f" (fairseq's own resume would start at {k})"
                                                             if start != k else ""))
    return {**state, "iterations_in_epoch": start}


def install() -> None:
    """Make fairseq's ``EpochBatchIterator`` save its rank count and resume by :func:`rescaled` (idempotent)."""
    from fairseq.data.iterators import EpochBatchIterator

    save, load = EpochBatchIterator.state_dict, EpochBatchIterator.load_state_dict
    if getattr(save, "xling_shards", False):
        return

    def state_dict(self):
        batches = self._frozen_batches  # the epoch's, once drawn (drawing them here could differ from training)
        return {**save(self), SHARDS_KEY: self.num_shards,
                **({BATCHES_KEY: len(batches)} if batches is not None else {})}

    def load_state_dict(self, state_dict):
        if state_dict.get(BATCHES_KEY) and int(state_dict.get("iterations_in_epoch", 0) or 0) > 0:
            self.epoch = state_dict["epoch"]  # fairseq's load sets it too; the epoch's batches depend on it
            return load(self, rescaled(state_dict, self.num_shards, len(self.frozen_batches)))
        return load(self, rescaled(state_dict, self.num_shards))

    state_dict.xling_shards = True
    EpochBatchIterator.state_dict = state_dict
    EpochBatchIterator.load_state_dict = load_state_dict
