"""Translation pairs for the pair objectives: clwr / xlco (sides encoded apart) and clpc (packed, labelled).

Both read the two line-aligned sides of a ``prep-data`` pair (fairseq ids, each sentence ending in
``</s>``). Randomness (which side is X, positive or negative, which negative) is drawn from
``numpy.random.default_rng((seed, epoch, index))``, so batches are reproducible and resume exactly.
With ``reps > 1`` a dataset lists its pairs ``reps`` times (index ``i`` reads pair ``i % n``) and each
repetition draws its own randomness: a small pair corpus can keep pace with a large monolingual one
within an epoch without replaying the same draws.
"""
from __future__ import annotations

import numpy as np
import torch
from fairseq.data import FairseqDataset, data_utils

from xling.xlmplug.unicoder.multi import Repeatable

NEGATIVES = ("random", "length", "pieces")


def _cut(t, n, eos):
    """``t`` (ending in ``</s>``) at most ``n`` tokens, still ending in ``</s>``."""
    if len(t) <= n:
        return t
    return torch.cat([t[: n - 1], t.new_tensor([eos])])


class _Sides(Repeatable, FairseqDataset):
    def __init__(self, src, tgt, src_lang: int, tgt_lang: int, bos: int, eos: int, pad: int, seed: int,
                 reps: int = 1):
        assert len(src) == len(tgt), "parallel datasets must have the same number of lines"
        self.src, self.tgt, self.src_lang, self.tgt_lang = src, tgt, src_lang, tgt_lang
        self.bos, self.eos, self.pad, self.seed, self.epoch = bos, eos, pad, seed, 1
        self.m, self.reps = len(src), max(1, int(reps))

    def __len__(self):
        return self.m * self.reps

    def set_epoch(self, epoch):
        self.epoch = epoch

    def _rng(self, index):
        return np.random.default_rng((self.seed, self.epoch, index))

    def num_tokens(self, index):
        return int(self.sizes[index])

    def size(self, index):
        return int(self.sizes[index])


class SeparatePairs(_Sides):
    """Item: ``{"x": <s> X </s>, "y": <s> Y </s>, "x_lang", "y_lang"}``; with ``swap`` the sides trade
    places at random (so both languages get recovered / contrasted). With ``mask_idx`` (clwr), about
    ``mask_prob`` of X's real tokens (at least one) are replaced by ``<mask>`` and ``target`` holds them
    (pad elsewhere): the words to recover are hidden from X. Batch: ``{"x": net_input, "y": net_input,
    ["target",] "ntokens", "nsentences"}`` where a net_input is ``{src_tokens, src_lengths, lang_ids}``."""

    def __init__(self, src, tgt, src_lang, tgt_lang, bos, eos, pad, seed, max_tokens: int, swap: bool = True,
                 reps: int = 1, mask_idx: int | None = None, mask_prob: float = 0.5):
        super().__init__(src, tgt, src_lang, tgt_lang, bos, eos, pad, seed, reps)
        self.max_tokens, self.swap, self.mask_idx, self.mask_prob = max_tokens, swap, mask_idx, mask_prob
        self.sizes = np.tile(1 + np.minimum(np.maximum(src.sizes, tgt.sizes), max_tokens - 1), self.reps)

    def __getitem__(self, index):
        i = index % self.m
        a = _cut(self.src[i], self.max_tokens - 1, self.eos)
        b = _cut(self.tgt[i], self.max_tokens - 1, self.eos)
        la, lb = self.src_lang, self.tgt_lang
        rng = self._rng(index)
        if self.swap and rng.random() < 0.5:
            a, b, la, lb = b, a, lb, la
        bos = a.new_tensor([self.bos])
        x = torch.cat([bos, a])
        item = {"x": x, "y": torch.cat([bos, b]), "x_lang": la, "y_lang": lb}
        if self.mask_idx is not None:
            real = np.arange(1, len(x) - 1)  # not <s>, not </s>
            k = max(1, int(self.mask_prob * len(real) + rng.random())) if len(real) else 0
            chosen = torch.from_numpy(rng.choice(real, size=min(k, len(real)), replace=False)).long()
            target = torch.full_like(x, self.pad)
            target[chosen] = x[chosen]
            masked = x.clone()
            masked[chosen] = self.mask_idx
            item.update(x=masked, target=target)
        return item

    def _side(self, seqs, langs):
        tokens = data_utils.collate_tokens(seqs, self.pad)
        lang = torch.tensor(langs)[:, None].expand_as(tokens).contiguous()
        return {"src_tokens": tokens, "src_lengths": torch.tensor([len(s) for s in seqs]), "lang_ids": lang}

    def collater(self, samples):
        if not samples:
            return {}
        x = self._side([s["x"] for s in samples], [s["x_lang"] for s in samples])
        y = self._side([s["y"] for s in samples], [s["y_lang"] for s in samples])
        out = {"x": x, "y": y, "nsentences": len(samples),
               "ntokens": int(x["src_lengths"].sum() + y["src_lengths"].sum())}
        if "target" in samples[0]:
            out["target"] = data_utils.collate_tokens([s["target"] for s in samples], self.pad)
        return out


class PairClassification(_Sides):
    """clpc examples: ``<s> X </s> Y' </s>`` (positions restart at ``Y'``, as in TLM) with label 1 when
    ``Y'`` is X's translation, 0 when it is another line of the same pair corpus.

    ``negatives``: ``random`` (uniform), ``length`` (of ``pool`` random candidates, the one closest in
    length to the true translation) or ``pieces`` (of ``pool`` candidates, the one sharing the most
    pieces with the true translation). A candidate identical to the true translation is never a negative.
    """

    def __init__(self, src, tgt, src_lang, tgt_lang, bos, eos, pad, seed, max_tokens: int,
                 negatives: str = "random", pool: int = 8, positive_ratio: float = 0.5, reps: int = 1):
        super().__init__(src, tgt, src_lang, tgt_lang, bos, eos, pad, seed, reps)
        if negatives not in NEGATIVES:
            raise ValueError(f"clpc negatives must be one of {NEGATIVES}, got {negatives!r}")
        if len(src) < 2:
            raise ValueError("clpc needs at least two sentence pairs to draw negatives from")
        self.negatives, self.pool, self.positive_ratio = negatives, max(1, pool), positive_ratio
        self.half = (max_tokens - 1) // 2
        self.sizes = np.tile(1 + np.minimum(src.sizes, self.half) + np.minimum(tgt.sizes, self.half), self.reps)

    def negative(self, index, rng) -> int:
        """The line whose target side is paired with line ``index``'s source as a negative."""
        n, true = self.m, self.tgt[index]
        k = 1 if self.negatives == "random" else self.pool
        cands = [int(j) for j in rng.integers(0, n - 1, size=k + 2)]
        cands = [j + (j >= index) for j in cands]  # never the index itself
        cands = [j for j in cands if not torch.equal(self.tgt[j], true)] or [cands[0]]
        cands = cands[:k]
        if self.negatives == "length":
            return min(cands, key=lambda j: abs(int(self.tgt.sizes[j]) - int(self.tgt.sizes[index])))
        if self.negatives == "pieces":
            have = set(true.tolist()) - {self.eos}
            return max(cands, key=lambda j: (len(have & set(self.tgt[j].tolist())),
                                             -abs(int(self.tgt.sizes[j]) - int(self.tgt.sizes[index]))))
        return cands[0]

    def __getitem__(self, index):
        rng, i = self._rng(index), index % self.m
        label = int(rng.random() < self.positive_ratio)
        j = i if label else self.negative(i, rng)
        s = _cut(self.src[i], self.half, self.eos)
        t = _cut(self.tgt[j], self.half, self.eos)
        ls, lt = self.src_lang, self.tgt_lang
        if rng.random() < 0.5:  # either language first
            s, t, ls, lt = t, s, lt, ls
        ns, nt = len(s) + 1, len(t)
        return {"tokens": torch.cat([s.new_tensor([self.bos]), s, t]),
                "pos": torch.cat([torch.arange(ns), torch.arange(nt)]),
                "lang": torch.cat([torch.full((ns,), ls), torch.full((nt,), lt)]),
                "label": label, "other": j}

    def collater(self, samples):
        if not samples:
            return {}
        tokens = data_utils.collate_tokens([s["tokens"] for s in samples], self.pad)
        lengths = torch.tensor([len(s["tokens"]) for s in samples])
        return {
            "net_input": {"src_tokens": tokens, "src_lengths": lengths,
                          "positions": data_utils.collate_tokens([s["pos"] for s in samples], 0),
                          "lang_ids": data_utils.collate_tokens([s["lang"] for s in samples], 0)},
            "label": torch.tensor([s["label"] for s in samples]),
            "nsentences": len(samples), "ntokens": int(lengths.sum()),
        }
