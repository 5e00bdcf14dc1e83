"""cs-mlm examples: alignment-driven code-switching, then masked LM (``MaskedExamples`` masks them).

The word alignments of ``xling prep-data --align`` (Pharaoh ``i-j`` over the words of
``xling.align.tokenize``, lowercased ``unicode`` tokenization, as ``xling align`` writes them) are mapped
to SentencePiece pieces with the same character-span rule as :mod:`xling.align.pieces`: a word owns the
pieces whose character span overlaps it. For each example one side is the base sentence (chosen at
random, so both languages are switched into); each aligned base word is switched with probability
``ratio``: its pieces are replaced by the pieces of the other side's words it is aligned to, in that
side's order, and those pieces carry the other language's id.
"""
from __future__ import annotations

import numpy as np
import torch
from fairseq.data import FairseqDataset

from xling.xlmplug.unicoder.multi import Repeatable

from xling.align.pieces import piece_spans, word_spans
from xling.align.tokenize import tokenize


def _owner(line: str, sp, lowercase: bool = True) -> tuple[list[int], int]:
    """For each spm piece of ``line``: the index of the first word it overlaps (-1: none); and the word count."""
    words = tokenize(line, "unicode", lowercase)
    wspans = word_spans(line, words, lowercase)
    owner = []
    for pb, pe in piece_spans(sp, line):
        owner.append(next((w for w, (b, e) in enumerate(wspans) if pb < e and pe > b), -1))
    return owner, len(words)


class CodeSwitchSegments(Repeatable, FairseqDataset):
    """Item: ``{"tokens": <s> mixed sentence </s>, "pos", "lang", "tlm": False, "switched": [(base word,
    other words, inserted piece ids), ...]}``. Lines whose pieces do not match their binarized ids (or
    whose links point outside the sentence) are kept unswitched; ``self.skipped`` counts them."""

    def __init__(self, src, tgt, src_lines, tgt_lines, alignments, sp, src_lang: int, tgt_lang: int,
                 bos: int, eos: int, max_tokens: int, seed: int, ratio: float = 0.3, both_sides: bool = True,
                 reps: int = 1):
        n = len(src)
        assert n == len(tgt) == len(src_lines) == len(tgt_lines) == len(alignments), "misaligned inputs"
        self.src, self.tgt, self.src_lang, self.tgt_lang = src, tgt, src_lang, tgt_lang
        self.bos, self.eos, self.max_tokens, self.seed, self.epoch = bos, eos, max_tokens, seed, 1
        self.ratio, self.both_sides = ratio, both_sides
        self.owners, self.links, self.skipped = [], [], 0
        for i in range(n):
            so, ns = _owner(src_lines[i], sp)
            to, nt = _owner(tgt_lines[i], sp)
            links = sorted(alignments[i])
            ok = (len(so) == len(src[i]) - 1 and len(to) == len(tgt[i]) - 1
                  and all(a < ns and b < nt for a, b in links))
            if not ok:
                self.skipped += 1
                so, to, links = None, None, []
            self.owners.append((so, to))
            self.links.append(links)
        self.m, self.reps = n, max(1, int(reps))  # reps: listed reps times, fresh draws each
        self.sizes = np.tile(np.minimum(1 + np.maximum(src.sizes, tgt.sizes) * 2, max_tokens), self.reps)

    def __len__(self):
        return self.m * self.reps

    def set_epoch(self, epoch):
        self.epoch = epoch

    def switch(self, index):
        """``(tokens without <s>, their languages, switched list)`` for example ``index``."""
        rng = np.random.default_rng((self.seed, self.epoch, index))
        index %= self.m
        base, other = self.src[index], self.tgt[index]
        (b_own, o_own), links = self.owners[index], self.links[index]
        lb, lo = self.src_lang, self.tgt_lang
        if self.both_sides and rng.random() < 0.5:
            base, other, b_own, o_own, lb, lo = other, base, o_own, b_own, lo, lb
            links = [(j, i) for i, j in links]
        base_ids, other_ids = base.tolist(), other.tolist()
        if b_own is None:
            return base_ids, [lb] * len(base_ids), []
        aligned: dict[int, list[int]] = {}
        for i, j in links:
            aligned.setdefault(i, []).append(j)
        words = sorted(aligned)
        chosen = {w for w, u in zip(words, rng.random(len(words))) if u < self.ratio}
        out, langs, switched, last = [], [], [], None
        for p, tok in enumerate(base_ids[:-1]):  # the last id is </s>
            w = b_own[p]
            if w not in chosen:
                out.append(tok)
                langs.append(lb)
                last = None
                continue
            if p > 0 and b_own[p - 1] == w:
                continue  # a later piece of a word already switched
            targets = sorted(set(aligned[w]))
            if targets == last:
                continue  # the same target words as the previous switched word: emitted once
            pieces = [other_ids[q] for q in range(len(other_ids) - 1) if o_own[q] in targets]
            if not pieces:  # the aligned words own no piece (each shares one with a word before it): keep w
                chosen.discard(w)
                out.append(tok)
                langs.append(lb)
                last = None
                continue
            out += pieces
            langs += [lo] * len(pieces)
            switched.append((w, targets, pieces))
            last = targets
        return out + [self.eos], langs + [lb], switched

    def __getitem__(self, index):
        ids, langs, switched = self.switch(index)
        if len(ids) > self.max_tokens - 1:
            ids, langs = ids[: self.max_tokens - 2] + [self.eos], langs[: self.max_tokens - 2] + [langs[-1]]
        tokens = torch.tensor([self.bos] + ids)
        lang = torch.tensor([langs[0]] + langs)
        return {"tokens": tokens, "pos": torch.arange(len(tokens)), "lang": lang, "tlm": False,
                "switched": switched}

    def num_tokens(self, index):
        return int(self.sizes[index])

    def size(self, index):
        return int(self.sizes[index])
