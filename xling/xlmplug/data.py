"""Datasets of the xling plugin: MLM segments, TLM pairs, and the masking/collating top layer.

Built on fairseq's own pieces (``TokenBlockDataset``, ``PrependTokenDataset``, ``ResamplingDataset``,
``ConcatDataset``); the three small classes below add what fairseq lacks: per-token language ids
and positions that restart at the target side of a TLM pair (XLM), and one collater for both kinds.

An example is a dict ``{"tokens", "pos", "lang", "tlm"}``: token ids, 0-based positions, language
index per token, and whether it is a TLM pair.
"""
from __future__ import annotations

import numpy as np
import torch
from fairseq.data import FairseqDataset, data_utils

from xling.xlmplug.masking import apply_mask, choose_spans, word_start_table


def sampling_probs(sizes, alpha: float) -> np.ndarray:
    """Exponentially smoothed sampling probabilities ``q_i ∝ (n_i / Σn)^alpha`` (XLM, XLM-R)."""
    p = np.asarray(sizes, dtype=np.float64)
    p = p / p.sum()
    q = p ** alpha
    return q / q.sum()


class MonoSegments(FairseqDataset):
    """MLM examples of one language: blocks of ``<s> sentence(s) </s>`` cut to ``max_tokens``."""

    def __init__(self, blocks, lang: int, eos: int, max_tokens: int):
        self.blocks, self.lang, self.eos, self.max_tokens = blocks, lang, eos, max_tokens
        self.sizes = np.minimum(np.asarray(blocks.sizes), max_tokens)

    def __getitem__(self, i):
        t = self.blocks[i]
        if len(t) > self.max_tokens:  # one sentence longer than a block
            t = torch.cat([t[: self.max_tokens - 1], t.new_tensor([self.eos])])
        n = len(t)
        return {"tokens": t, "pos": torch.arange(n), "lang": torch.full((n,), self.lang),
                "tlm": False}

    def __len__(self):
        return len(self.blocks)

    def num_tokens(self, i):
        return int(self.sizes[i])

    def size(self, i):
        return int(self.sizes[i])

    def set_epoch(self, epoch):
        if hasattr(self.blocks, "set_epoch"):
            self.blocks.set_epoch(epoch)


class PairSegments(FairseqDataset):
    """TLM examples ``<s> src </s> tgt </s>``; positions restart at ``tgt``; each side at most ``half``."""

    def __init__(self, src, tgt, src_lang: int, tgt_lang: int, bos: int, eos: int, max_tokens: int):
        assert len(src) == len(tgt), "parallel datasets must have the same number of lines"
        self.src, self.tgt, self.src_lang, self.tgt_lang = src, tgt, src_lang, tgt_lang
        self.bos, self.eos = bos, eos
        self.half = (max_tokens - 1) // 2
        self.sizes = 1 + np.minimum(src.sizes, self.half) + np.minimum(tgt.sizes, self.half)

    def _cut(self, t):
        if len(t) <= self.half:
            return t
        return torch.cat([t[: self.half - 1], t.new_tensor([self.eos])])

    def __getitem__(self, i):
        s, t = self._cut(self.src[i]), self._cut(self.tgt[i])
        ns, nt = len(s) + 1, len(t)
        tokens = torch.cat([s.new_tensor([self.bos]), s, t])
        pos = torch.cat([torch.arange(ns), torch.arange(nt)])
        lang = torch.cat([torch.full((ns,), self.src_lang), torch.full((nt,), self.tgt_lang)])
        return {"tokens": tokens, "pos": pos, "lang": lang, "tlm": True}

    def __len__(self):
        return len(self.src)

    def num_tokens(self, i):
        return int(self.sizes[i])

    def size(self, i):
        return int(self.sizes[i])


class MaskedExamples(FairseqDataset):
    """Masks the examples of ``dataset`` (deterministically per seed, epoch, index) and collates them.

    A batch: ``net_input = {src_tokens, src_lengths, positions, lang_ids, padded}`` (``padded``: whether any row
    is shorter than the batch, known here on the host: else the model runs attention without a mask), ``target``
    (pad except at masked positions), ``tlm`` (bool per row), ``lang`` (language of each row's first segment) and
    the masked positions of :func:`masked_batch`.
    """

    def __init__(self, dataset, dictionary, mask_idx: int, seed: int, *, mask_prob=0.15,
                 leave_unmasked_prob=0.1, random_token_prob=0.1, span_p=0.0, max_span=10,
                 whole_words=False, shuffle=True, resampled=False):
        self.dataset, self.dictionary, self.mask_idx, self.seed = dataset, dictionary, mask_idx, seed
        self.mask_prob, self.leave_unmasked_prob = mask_prob, leave_unmasked_prob
        self.random_token_prob, self.span_p, self.max_span = random_token_prob, span_p, max_span
        self.shuffle, self.resampled = shuffle, resampled
        self.pad, self.epoch = dictionary.pad(), 1
        self.special = torch.tensor([dictionary.bos(), dictionary.eos(), dictionary.pad()])
        # whole-word masking: which dictionary entries begin a word (SentencePiece's ▁)
        self.word_starts = word_start_table(dictionary.symbols) if whole_words else None

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return not self.resampled  # resampled data changes every epoch

    def set_epoch(self, epoch):
        self.epoch = epoch
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __getitem__(self, index):
        ex = self.dataset[index]
        tokens = ex["tokens"].numpy()
        rng = np.random.default_rng((self.seed, self.epoch, index))
        maskable = ~np.isin(tokens, self.special.numpy())
        word_start = self.word_starts[tokens] if self.word_starts is not None else None
        spans = choose_spans(maskable, rng, self.mask_prob, self.span_p, self.max_span, word_start)
        # spans and words: one 80/10/10 decision per span; single tokens: one per token
        chosen = spans if self.span_p > 0 or word_start is not None else spans >= 0
        src, tgt = apply_mask(tokens, chosen, rng, mask_idx=self.mask_idx, pad_idx=self.pad,
                              random_low=self.dictionary.nspecial, random_high=self.mask_idx,
                              leave_unmasked_prob=self.leave_unmasked_prob,
                              random_token_prob=self.random_token_prob)
        return {"id": index, "source": torch.from_numpy(src), "target": torch.from_numpy(tgt),
                "pos": ex["pos"], "lang": ex["lang"], "tlm": ex["tlm"]}

    def __len__(self):
        return len(self.dataset)

    @property
    def sizes(self):
        return self.dataset.sizes

    def num_tokens(self, index):
        return self.dataset.num_tokens(index)

    def size(self, index):
        return self.dataset.size(index)

    def ordered_indices(self):
        sizes = self.dataset.sizes
        if self.shuffle:
            with data_utils.numpy_seed(self.seed, self.epoch):
                order = np.random.permutation(len(sizes))
        else:
            order = np.arange(len(sizes))
        return order[np.argsort(sizes[order], kind="mergesort")]

    def collater(self, samples):
        if not samples:
            return {}
        pad = self.pad
        src = data_utils.collate_tokens([s["source"] for s in samples], pad)
        tgt = data_utils.collate_tokens([s["target"] for s in samples], pad)
        pos = data_utils.collate_tokens([s["pos"] for s in samples], 0)
        lang = data_utils.collate_tokens([s["lang"] for s in samples], 0)
        lengths = torch.tensor([len(s["source"]) for s in samples])
        tlm = torch.tensor([bool(s["tlm"]) for s in samples])
        return {
            "id": torch.tensor([s["id"] for s in samples]),
            "nsentences": len(samples),
            "ntokens": int(lengths.sum()),
            "net_input": {"src_tokens": src, "src_lengths": lengths, "positions": pos, "lang_ids": lang,
                          "padded": bool(lengths.min() < src.size(1))},
            "target": tgt,
            "tlm": tlm,
            "lang": lang[:, 0].clone(),
            **masked_batch(tgt, tlm, pad),
        }


def masked_batch(target: torch.Tensor, tlm_rows: torch.Tensor, pad: int) -> dict:
    """What the loss needs about the masked positions, worked out on the host while collating, so that the
    training step never waits for the GPU to count them: ``masked_index`` (flat B·T positions, row-major, the
    order of ``target[target != pad]``), ``masked_target`` (their tokens), ``masked_tlm`` (whether each sits in
    a TLM row) and the counts ``sample_size`` and ``tlm_sample_size`` as Python ints."""
    flat = target.reshape(-1)
    index = flat.ne(pad).nonzero().squeeze(1)
    in_tlm = tlm_rows[index // target.size(1)] if index.numel() else tlm_rows.new_zeros(0)  # row of each position
    return {"masked_index": index, "masked_target": flat[index], "masked_tlm": in_tlm,
            "sample_size": int(index.numel()), "tlm_sample_size": int(in_tlm.sum())}
