"""Resuming a run on another number of data-parallel ranks without skipping or repeating data.

fairseq saves the position in an epoch as ``iterations_in_epoch``: micro-batches taken by each rank. Rank ``r`` of
``W`` takes batches ``r, r + W, r + 2W, ...`` of the epoch's batch order, which is the same for any ``W`` (fairseq's
``ShardedIterator`` over the batches shuffled by seed and epoch), so ``k`` iterations on ``W`` ranks consumed the
first ``k * W`` batches. Resumed on ``W'`` ranks, fairseq skipped ``k * W'`` batches. A run moved from 8 GPUs to 16
(a scheduler's requeue onto another allocation) passed over ``k * 8`` batches that no rank had trained on: at
update 50k of an epoch that is a whole corpus, most of the corpus. Moved to 4, it trained ``k * 4`` batches again.

Here the saved position also records the rank count (:data:`SHARDS_KEY`; plain fairseq ignores the extra key), and a
resume on ``W'`` ranks starts at iteration ``floor(k * W / W')``: every batch not yet trained on is trained, and at
most ``W' - 1`` batches are trained twice when ``k * W`` is not a multiple of ``W'``.
"""
from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

SHARDS_KEY = "xling_num_shards"


def rescaled(state: dict, num_shards: int) -> dict:
    """An epoch iterator's saved ``state`` for ``num_shards`` ranks (unchanged when it says nothing of its ranks,
    had as many, or is at the start of an epoch)."""
    saved, k = state.get(SHARDS_KEY), int(state.get("iterations_in_epoch", 0) or 0)
    if not saved or saved == num_shards or k <= 0:
        return state
    start = k * int(saved) // num_shards
    logger.warning(f"resuming on {num_shards} data-parallel ranks instead of {saved}: the {k * saved} batches of "
                   f"epoch {state.get('epoch')} trained so far are {k} per rank on {saved} ranks; starting each rank "
                   f"at its batch {start} (fairseq's own resume would start at {k})")
    return {**state, "iterations_in_epoch": start}


def install() -> None:
    """Make fairseq's ``EpochBatchIterator`` save its rank count and resume by :func:`rescaled` (idempotent)."""
    from fairseq.data.iterators import EpochBatchIterator

    save, load = EpochBatchIterator.state_dict, EpochBatchIterator.load_state_dict
    if getattr(save, "xling_shards", False):
        return

    def state_dict(self):
        return {**save(self), SHARDS_KEY: self.num_shards}

    def load_state_dict(self, state_dict):
        return load(self, rescaled(state_dict, self.num_shards))

    state_dict.xling_shards = True
    EpochBatchIterator.state_dict = state_dict
    EpochBatchIterator.load_state_dict = load_state_dict
