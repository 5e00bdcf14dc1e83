"""``XlingDenoisingDataset``: fairseq's ``DenoisingDataset`` (BART/mBART noise: sentence permutation,
Poisson span infilling, token insertion, document rotation) plus the XLM word noise of
:mod:`xling.xlmplug.noise` (local word shuffle, word dropout, word blanking), applied to the source
after fairseq's noise, seeded per example like it. Both are functions of (seed, epoch, index) alone: the same
example gets the same noise in every run and after a resume.
"""
from __future__ import annotations

import torch
from fairseq.data import DenoisingDataset, data_utils

from xling.xlmplug.noise import word_blank, word_dropout, word_shuffle


def word_start_table(dictionary, extra_starts=()) -> torch.Tensor:
    """A byte per vocabulary entry: 1 where the symbol begins a word (SentencePiece ``▁`` pieces, the
    specials, and ``extra_starts`` such as language tokens and ``<mask>``), as fairseq's
    ``get_whole_word_mask`` does for a sentencepiece BPE."""
    extra = set(extra_starts)
    flags = [i < dictionary.nspecial or i in extra or dictionary[i].startswith("\u2581")
             for i in range(len(dictionary))]
    return torch.ByteTensor(flags)


class XlingDenoisingDataset(DenoisingDataset):
    def __init__(self, *args, word_shuffle: float = 0.0, word_dropout: float = 0.0, word_blank: float = 0.0,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.word_shuffle, self.word_dropout, self.word_blank = word_shuffle, word_dropout, word_blank

    def xlm_noise(self, source: torch.Tensor) -> torch.Tensor:
        """Word shuffle, then word dropout, then word blanking (each skipped at rate 0)."""
        if self.word_shuffle > 1:
            source = word_shuffle(source, self.word_flags(source), self.word_shuffle)
        if self.word_dropout > 0:
            source = word_dropout(source, self.word_flags(source), self.word_dropout)
        if self.word_blank > 0:
            source = word_blank(source, self.word_flags(source), self.word_blank, self.mask_idx)
        return source

    def word_flags(self, source):
        if self.mask_whole_word is None:  # no word segmentation: every piece is a word
            return torch.ones(source.size(), dtype=torch.uint8)
        return self.mask_whole_word.gather(0, source)

    def __getitem__(self, index):
        # fairseq's noise draws from torch's global generator (its numpy_seed covers numpy only), so an example's
        # noise depended on what had drawn before it: runs with one seed differed, and a resumed run did not see
        # the noise the uninterrupted one saw. Seeded here per (seed, epoch, index) on torch's CPU generator,
        # whose state is restored afterwards (CUDA generators untouched).
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(hash((self.seed, self.epoch, index, 2)) % (1 << 63))
            item = super().__getitem__(index)
        if self.word_shuffle > 1 or self.word_dropout > 0 or self.word_blank > 0:
            with data_utils.numpy_seed(self.seed, self.epoch, index, 1):
                item["source"] = self.xlm_noise(item["source"])
        return item
