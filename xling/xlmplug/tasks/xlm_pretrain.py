"""Task ``xling_xlm``: multilingual masked LM (XLM-R) mixed with translation LM (XLM).

Reads the layout of ``xling prep-data`` (``DATA/mono/{split}.{lang}``, ``DATA/para/{split}.{pair}.{lang}``).
Languages are sampled with exponential smoothing ``q ∝ p^alpha``; TLM pairs make up ``tlm_ratio`` of
the training examples. Loading a trained model needs only ``dict.txt`` beside it: languages and pairs
are part of the saved task config.
"""

import json
import logging
import os
from dataclasses import dataclass, field

from fairseq.data import ConcatDataset, PrependTokenDataset, ResamplingDataset, TokenBlockDataset, data_utils
from fairseq.tasks import register_task
from fairseq.tasks.masked_lm import MaskedLMConfig, MaskedLMTask

from xling.xlmplug.data import MaskedExamples, MonoSegments, PairSegments, sampling_probs
from xling.xlmplug.stop import StopOnSignalMixin

logger = logging.getLogger(__name__)


def _split(text):
    return [x.strip() for x in (text or "").split(",") if x.strip()]


@dataclass
class XlmPretrainConfig(MaskedLMConfig):
    langs: str = field(default="", metadata={
        "help": "comma-separated languages, in language-id order; empty: all languages of DATA/manifest.json"})
    pairs: str = field(default="", metadata={"help": "comma-separated TLM pairs such as en-fr (prep-data pair keys)"})
    alpha: float = field(default=0.3, metadata={
        "help": "language sampling smoothing: q_i ∝ p_i^alpha (1: proportional to data, 0: uniform)"})
    tlm_ratio: float = field(default=0.0, metadata={
        "help": "fraction of training examples that are TLM pairs (0: MLM only, 1: TLM only)"})
    mask_span_p: float = field(default=0.0, metadata={
        "help": "span masking: geometric span-length parameter p (mean length 1/p); 0 masks single tokens"})
    max_span_len: int = field(default=10, metadata={
        "help": "longest masked span with --mask-span-p, in tokens (in words with --mask-whole-words)"})


@register_task("xling_xlm", dataclass=XlmPretrainConfig)
class XlmPretrainTask(StopOnSignalMixin, MaskedLMTask):
    cfg: XlmPretrainConfig

    def __init__(self, cfg: XlmPretrainConfig, dictionary=None):
        super().__init__(cfg, dictionary)
        root = cfg.data.split(os.pathsep)[0]
        langs = _split(cfg.langs)
        if not langs and os.path.exists(os.path.join(root, "manifest.json")):
            with open(os.path.join(root, "manifest.json"), encoding="utf-8") as f:
                langs = list(json.load(f).get("langs", []))
        self.langs = langs
        self.pairs = _split(cfg.pairs)
        self.lang_index = {lang: i for i, lang in enumerate(langs)}
        for pair in self.pairs:
            for lang in pair.split("-"):
                if lang not in self.lang_index:
                    raise ValueError(f"pair {pair}: language {lang} is not in --langs {','.join(langs)}")

    @property
    def num_langs(self) -> int:
        return len(self.langs)

    def _root(self, epoch):
        paths = utils_split_paths(self.cfg.data)
        return paths[(epoch - 1) % len(paths)]

    def _load(self, prefix):
        ds = data_utils.load_indexed_dataset(prefix, self.source_dictionary, combine=False)
        if ds is None:
            raise FileNotFoundError(f"dataset not found: {prefix}.bin/.idx")
        return ds

    def mono_segments(self, root, split, lang):
        """MLM examples of a language's monolingual text (one sentence or block each)."""
        ds = self._load(os.path.join(root, "mono", f"{split}.{lang}"))
        d = self.source_dictionary
        if self.cfg.sample_break_mode == "eos":
            # one sentence per example is what the dataset already holds (and fairseq 0.12's "eos"
            # block path calls np.compat, which numpy 2 removed)
            blocks = ds
        else:
            blocks = TokenBlockDataset(ds, ds.sizes, self.cfg.tokens_per_sample - 1, pad=d.pad(), eos=d.eos(),
                                       break_mode=self.cfg.sample_break_mode)
        return MonoSegments(PrependTokenDataset(blocks, d.bos()), self.lang_index[lang], d.eos(),
                            self.cfg.tokens_per_sample)

    def pair_sides(self, root, split, pair):
        """``(src side, tgt side, src language id, tgt language id)`` of a pair's binarized split."""
        src, tgt = pair.split("-")
        return (self._load(os.path.join(root, "para", f"{split}.{pair}.{src}")),
                self._load(os.path.join(root, "para", f"{split}.{pair}.{tgt}")),
                self.lang_index[src], self.lang_index[tgt])

    def pair_segments(self, root, split, pair):
        """TLM examples of a pair: both sides packed in one segment."""
        d = self.source_dictionary
        return PairSegments(*self.pair_sides(root, split, pair), d.bos(), d.eos(), self.cfg.tokens_per_sample)

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        root = self._root(epoch)
        r = self.cfg.tlm_ratio
        mono = [self.mono_segments(root, split, lang) for lang in self.langs] if r < 1 else []
        para = [self.pair_segments(root, split, pair) for pair in self.pairs] if r > 0 else []
        train = split == getattr(self.cfg, "train_subset", "train")
        parts = mono + para
        if train:
            parts = self.resample(mono, para, epoch)
        self.datasets[split] = MaskedExamples(
            ConcatDataset(parts), self.source_dictionary, self.mask_idx, self.cfg.seed,
            mask_prob=self.cfg.mask_prob, leave_unmasked_prob=self.cfg.leave_unmasked_prob,
            random_token_prob=self.cfg.random_token_prob, span_p=self.cfg.mask_span_p,
            max_span=self.cfg.max_span_len, whole_words=self.cfg.mask_whole_words, shuffle=train, resampled=train)
        logger.info("%s: %d examples (%d MLM parts, %d TLM parts)", split, len(self.datasets[split]),
                    len(mono), len(para))

    def epoch_plan(self, mono_sizes, para_sizes):
        """Examples drawn per language and per pair in one training epoch."""
        r = self.cfg.tlm_ratio
        n_mono = int(sum(mono_sizes))
        if r >= 1:
            n_mono, n_para = 0, int(sum(para_sizes))
        else:
            n_para = int(round(n_mono * r / (1 - r))) if para_sizes else 0
        mono_n = [int(round(n_mono * q)) for q in sampling_probs(mono_sizes, self.cfg.alpha)] if mono_sizes else []
        para_n = [int(round(n_para * q)) for q in sampling_probs(para_sizes, self.cfg.alpha)] if para_sizes else []
        return mono_n, para_n

    def resample(self, mono, para, epoch):
        """The languages' and pairs' datasets resampled to :meth:`epoch_plan`'s sizes."""
        mono_n, para_n = self.epoch_plan([len(d) for d in mono], [len(d) for d in para])
        out = []
        for ds, n in zip(mono + para, mono_n + para_n):
            ratio = max(n, 1) / len(ds)
            out.append(ResamplingDataset(ds, size_ratio=ratio, replace=ratio >= 1.0, seed=self.cfg.seed,
                                         epoch=epoch))
        return out

    def max_positions(self):
        return self.cfg.tokens_per_sample


def utils_split_paths(data):
    from fairseq import utils

    paths = utils.split_paths(data)
    assert len(paths) > 0
    return paths
