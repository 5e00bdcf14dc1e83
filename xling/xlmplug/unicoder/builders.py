"""The data builders of the objectives (named in :data:`xling.xlmplug.objectives.OBJECTIVES`).

``build(task, root, split, unit, seed) -> dataset``: the unmixed examples of one objective for one
language (``unit`` a language, monolingual objectives) or one pair (``unit`` such as ``en-fr``) of the
``xling prep-data`` layout under ``root``. ``task`` is a :class:`~xling.xlmplug.tasks.unicoder.UnicoderPretrainTask`
(its dictionary, ``<mask>``, language ids, options and dataset loaders); ``seed`` is the objective's own
seed. Mixing languages/pairs, repetition and masking are the task's (the same for every objective).
"""
from __future__ import annotations

import logging
import os

from xling.xlmplug.unicoder.codeswitch import CodeSwitchSegments
from xling.xlmplug.unicoder.documents import CrossLingualDocuments
from xling.xlmplug.unicoder.pairs import PairClassification, SeparatePairs

logger = logging.getLogger(__name__)


def monolingual_segments(task, root, split, lang, seed):
    """mlm: a language's monolingual sentences (or blocks), as task ``xling_xlm`` reads them."""
    return task.mono_segments(root, split, lang)


def translation_segments(task, root, split, pair, seed):
    """tlm: both sides of each pair packed in one segment, positions restarting at the second side."""
    return task.pair_segments(root, split, pair)


def _separate(task, root, split, pair, seed, clwr: bool):
    d, c = task.source_dictionary, task.cfg
    a, b, la, lb = task.pair_sides(root, split, pair)
    return SeparatePairs(a, b, la, lb, d.bos(), d.eos(), d.pad(), seed, c.tokens_per_sample, swap=clwr,
                         mask_idx=task.mask_idx if clwr else None, mask_prob=c.clwr_mask_prob)


def recovery_pairs(task, root, split, pair, seed):
    """clwr: the two sides encoded apart, X/Y drawn per example, part of X hidden (``--clwr-mask-prob``)."""
    return _separate(task, root, split, pair, seed, clwr=True)


def contrast_pairs(task, root, split, pair, seed):
    """xlco: the two sides encoded apart, unmasked."""
    return _separate(task, root, split, pair, seed, clwr=False)


def classification_pairs(task, root, split, pair, seed):
    """clpc: ``<s> X </s> Y' </s>`` labelled translation or not (``--clpc-negatives``, ``--clpc-pool``)."""
    d, c = task.source_dictionary, task.cfg
    a, b, la, lb = task.pair_sides(root, split, pair)
    return PairClassification(a, b, la, lb, d.bos(), d.eos(), d.pad(), seed, c.tokens_per_sample,
                              negatives=c.clpc_negatives, pool=c.clpc_pool)


def mixed_documents(task, root, split, pair, seed):
    """clmlm: documents of consecutive pairs, each sentence taken from one side or the other."""
    d = task.source_dictionary
    a, b, la, lb = task.pair_sides(root, split, pair)
    return CrossLingualDocuments(a, b, la, lb, d.bos(), d.eos(), task.cfg.tokens_per_sample, seed)


def code_switched_segments(task, root, split, pair, seed):
    """cs-mlm: sentences whose aligned words are replaced by their translation (``--cs-ratio``); reads
    ``DATA/para/{split}.{pair}.align``, the pair's ``.txt`` lines and ``DATA/spm.model``."""
    import sentencepiece as spm

    from xling.align.pharaoh import read_pharaoh

    a, b, la, lb = task.pair_sides(root, split, pair)
    src, tgt = pair.split("-")

    def lines(lang):
        with open(os.path.join(root, "para", f"{split}.{pair}.{lang}.txt"), encoding="utf-8") as f:
            return f.read().split("\n")[: len(a)]

    links = [sure for sure, _possible in read_pharaoh(os.path.join(root, "para", f"{split}.{pair}.align"))]
    sp = spm.SentencePieceProcessor(model_file=os.path.join(root, "spm.model"))
    d = task.source_dictionary
    ds = CodeSwitchSegments(a, b, lines(src), lines(tgt), links, sp, la, lb, d.bos(), d.eos(),
                            task.cfg.tokens_per_sample, seed, ratio=task.cfg.cs_ratio)
    if ds.skipped:
        logger.warning("cs-mlm %s %s: %d of %d lines left unswitched (pieces differ from the binarized ids)",
                       split, pair, ds.skipped, len(ds))
    return ds
