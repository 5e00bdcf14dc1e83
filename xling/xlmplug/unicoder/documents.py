"""clmlm examples: multilingual "documents" of consecutive parallel sentences, each sentence taken at
random from either side of the pair (Unicoder's cross-lingual MLM), so masked-token context crosses
languages.

Documents are cut greedily over consecutive lines so that whichever side is drawn for each sentence,
``<s>`` plus the sentences fit ``max_tokens``. The side of each sentence is drawn from
``default_rng((seed, epoch, index))``: a new mix every epoch, reproducible on resume.
"""
from __future__ import annotations

import numpy as np
import torch
from fairseq.data import FairseqDataset

from xling.xlmplug.unicoder.multi import Repeatable


class CrossLingualDocuments(Repeatable, FairseqDataset):
    """Item: ``{"tokens": <s> s1 </s> s2 </s> ..., "pos", "lang", "tlm": False}`` (what ``MaskedExamples`` masks)."""

    def __init__(self, src, tgt, src_lang: int, tgt_lang: int, bos: int, eos: int, max_tokens: int, seed: int,
                 reps: int = 1):
        assert len(src) == len(tgt), "parallel datasets must have the same number of lines"
        self.src, self.tgt, self.src_lang, self.tgt_lang = src, tgt, src_lang, tgt_lang
        self.bos, self.eos, self.max_tokens, self.seed, self.epoch = bos, eos, max_tokens, seed, 1
        cost = np.minimum(np.maximum(src.sizes, tgt.sizes), max_tokens - 1)
        self.docs, start, used = [], 0, 0
        for i, c in enumerate(cost):
            if used + c > max_tokens - 1 and i > start:
                self.docs.append((start, i))
                start, used = i, 0
            used += int(c)
        if len(cost):
            self.docs.append((start, len(cost)))
        self.m, self.reps = len(self.docs), max(1, int(reps))  # reps: listed reps times, fresh draws each
        self.sizes = np.tile(np.array([1 + int(cost[a:b].sum()) for a, b in self.docs], dtype=np.int64), self.reps)

    def __len__(self):
        return self.m * self.reps

    def set_epoch(self, epoch):
        self.epoch = epoch

    def sides(self, index) -> np.ndarray:
        """For each sentence of document ``index``: True when it is taken from the target side."""
        a, b = self.docs[index % self.m]
        return np.random.default_rng((self.seed, self.epoch, index)).random(b - a) < 0.5

    def __getitem__(self, index):
        a, b = self.docs[index % self.m]
        parts, langs = [torch.tensor([self.bos])], [self.src_lang]
        for line, from_tgt in zip(range(a, b), self.sides(index)):
            t = (self.tgt if from_tgt else self.src)[line]
            if len(t) > self.max_tokens - 1:
                t = torch.cat([t[: self.max_tokens - 2], t.new_tensor([self.eos])])
            parts.append(t)
            langs += [self.tgt_lang if from_tgt else self.src_lang] * len(t)
        tokens = torch.cat(parts)[: self.max_tokens]
        n = len(tokens)
        return {"tokens": tokens, "pos": torch.arange(n), "lang": torch.tensor(langs[:n]), "tlm": False}

    def num_tokens(self, index):
        return int(self.sizes[index])

    def size(self, index):
        return int(self.sizes[index])
