"""Task ``xling_dae``: multilingual denoising pretraining of an encoder-decoder (mBART / Unicoder-xDAE).

fairseq's ``multilingual_denoising`` task with xling's data layout (``DATA/mono/{split}.{lang}`` from
``xling prep-data``), exponentially smoothed language sampling ``q ∝ p^alpha`` (its
``--multilang-sampling-alpha``), a ``[lang]`` token per language appended to the dictionary (always on:
the language token closes the source and is the decoder's first input token, as in mBART), and the
xDAE noise set: fairseq's sentence permutation (``--permute-sentences``), Poisson span infilling
(``--mask`` with ``--mask-length span-poisson --replace-length 1``), token insertion (``--insert``),
document rotation (``--rotate``), plus XLM word noise (``--word-shuffle``, ``--word-dropout``,
``--word-blank``). Loading a trained model needs only ``dict.txt`` beside it: the language list is part
of the saved task config.
"""

import json
import logging
import os
from dataclasses import dataclass, field

import numpy as np
from fairseq import utils
from fairseq.data import (AppendTokenDataset, ConcatDataset, Dictionary, PrependTokenDataset, ResamplingDataset,
                          SortDataset, TokenBlockDataset, data_utils)
from fairseq.tasks import register_task
from fairseq.tasks.multilingual_denoising import MultilingualDenoisingConfig, MultilingualDenoisingTask

from xling.xlmplug.data import sampling_probs
from xling.xlmplug.denoise_data import XlingDenoisingDataset, word_start_table
from xling.xlmplug.stop import StopOnSignalMixin

logger = logging.getLogger(__name__)


def lang_token(lang: str) -> str:
    return f"[{lang}]"


def task_langs(data: str, langs: str | None) -> list[str]:
    """``--langs`` if given, else the languages of ``DATA/manifest.json``."""
    out = [x.strip() for x in (langs or "").split(",") if x.strip()]
    root = utils.split_paths(data)[0]
    if not out and os.path.exists(os.path.join(root, "manifest.json")):
        with open(os.path.join(root, "manifest.json"), encoding="utf-8") as f:
            out = list(json.load(f).get("langs", []))
    return out


@dataclass
class XlingDenoisingConfig(MultilingualDenoisingConfig):
    # fairseq declares this one as an int (and swaps its help with --replace-length's): it is a ratio
    permute_sentences: float = field(default=0.0, metadata={
        "help": "sentence permutation: shuffle this fraction of the sentences of each example"})
    word_shuffle: float = field(default=0.0, metadata={
        "help": "XLM local word shuffle: a word moves at most this many positions (0 or 1: off)"})
    word_dropout: float = field(default=0.0, metadata={"help": "XLM word dropout: drop each word with this probability"})
    word_blank: float = field(default=0.0, metadata={
        "help": "XLM word blanking: replace each word's pieces by <mask> with this probability"})


@register_task("xling_dae", dataclass=XlingDenoisingConfig)
class XlingDenoisingTask(StopOnSignalMixin, MultilingualDenoisingTask):
    cfg: XlingDenoisingConfig

    @classmethod
    def setup_task(cls, cfg: XlingDenoisingConfig, **kwargs):
        langs = task_langs(cfg.data, cfg.langs)
        if not langs:
            raise ValueError("xling_dae needs --langs (or DATA/manifest.json with a language list)")
        cfg.langs = ",".join(langs)
        cfg.add_lang_token = True
        dictionary = Dictionary.load(os.path.join(utils.split_paths(cfg.data)[0], "dict.txt"))
        for lang in langs:
            dictionary.add_symbol(lang_token(lang))
        return cls(cfg, dictionary)

    def __init__(self, cfg: XlingDenoisingConfig, dictionary):
        super().__init__(cfg, dictionary)  # adds <mask> after the language tokens (mBART's order)
        self.langs = cfg.langs.split(",")

    def lang_index(self, lang: str) -> int:
        """Dictionary index of ``[lang]``; ``unk`` when the model has no token for ``lang``."""
        return self.dictionary.index(lang_token(lang))

    def _lang_dataset(self, root, split, lang, word_starts):
        prefix = os.path.join(root, "mono", f"{split}.{lang}")
        ds = data_utils.load_indexed_dataset(prefix, self.dictionary, combine=False)
        if ds is None:
            return None
        d, end = self.dictionary, self.lang_index(lang)
        if self.cfg.sample_break_mode == "eos":  # one sentence an example: what the dataset holds already
            blocks = ds
        else:  # "complete": whole sentences packed up to tokens_per_sample (sentence permutation needs several)
            blocks = TokenBlockDataset(ds, ds.sizes, self.cfg.tokens_per_sample - 2, pad=d.pad(), eos=d.eos(),
                                       break_mode=self.cfg.sample_break_mode)
        blocks = AppendTokenDataset(PrependTokenDataset(blocks, d.bos()), end)
        c = self.cfg
        return XlingDenoisingDataset(
            blocks, blocks.sizes, d, self.mask_idx, word_starts, shuffle=False, seed=c.seed, mask=c.mask,
            mask_random=c.mask_random, insert=c.insert, rotate=c.rotate, permute_sentences=c.permute_sentences,
            bpe=c.bpe, replace_length=c.replace_length, mask_length=c.mask_length, poisson_lambda=c.poisson_lambda,
            eos=end, word_shuffle=c.word_shuffle, word_dropout=c.word_dropout, word_blank=c.word_blank)

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        paths = utils.split_paths(self.cfg.data)
        root = paths[(epoch - 1) % len(paths)]
        starts = word_start_table(self.dictionary, [self.lang_index(lg) for lg in self.langs] + [self.mask_idx])
        parts = [(lg, self._lang_dataset(root, split, lg, starts)) for lg in self.langs]
        parts = [(lg, ds) for lg, ds in parts if ds is not None and len(ds) > 0]
        if not parts:
            raise FileNotFoundError(f"no {split} data under {root}/mono for {','.join(self.langs)}")
        sizes = np.array([len(ds) for _lg, ds in parts], dtype=float)
        if split == self.cfg.train_subset:
            q = sampling_probs(sizes, self.cfg.multilang_sampling_alpha)
            ratio = q * sizes.sum() / sizes
            logger.info("language sampling: %s", {lg: round(float(p), 4) for (lg, _d), p in zip(parts, q)})
            dataset = ConcatDataset([ResamplingDataset(ds, size_ratio=r, seed=self.cfg.seed, epoch=epoch,
                                                       replace=r >= 1.0) for (_lg, ds), r in zip(parts, ratio)])
        else:
            dataset = ConcatDataset([ds for _lg, ds in parts])
        with data_utils.numpy_seed(self.cfg.seed + epoch):
            shuffle = np.random.permutation(len(dataset))
        self.datasets[split] = SortDataset(dataset, sort_order=[shuffle, dataset.sizes])
        logger.info("%s: %d examples over %d languages", split, len(dataset), len(parts))
