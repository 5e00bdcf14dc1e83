"""Zero-shot generation (XGLUE QG, NTG) with an encoder-decoder from ``xling pretrain --arch seq2seq``
(loaded by :func:`xling.modeling.load_seq2seq`).

Fine-tuning: label-smoothed cross-entropy on the train language's pairs (default English), sources cut
to ``max_source_len`` pieces and targets to ``max_target_len``, driven by the shared loop of
:mod:`xling.xglue.finetune`; the kept weights are those of the epoch with the best BLEU on the train
language's dev set only (zero-shot rule; equal BLEU goes to the lower dev loss). Decoding: fairseq's
``SequenceGenerator`` (beam search, ``no_repeat_ngram_size``, length penalty) with the target
language's ``[lang]`` token forced as the decoder's first input token.

Sequences follow mBART's fine-tuning layout (pretraining: :mod:`xling.xlmplug.tasks.denoise`): source
``<s> x </s> [src_lang]``, decoder input ``[tgt_lang] y``, target ``y </s>``.
For each language the predictions are scored by BLEU as the official scorer does, and the off-target
rate (share of outputs not identified as the target language) is measured with :mod:`xling.xglue.langid`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xling.errors import XlingError
from xling.xglue.readers import read_generation
from xling.xglue.runner import Runner
from xling.xglue.tasks import TaskSpec


@dataclass
class GenerateConfig:
    beam: int = 4
    no_repeat_ngram_size: int = 3
    lenpen: float = 1.0
    max_source_len: int = 256  # pieces kept of each source (longer ones are cut)
    max_target_len: int = 64  # pieces of a training target, and the longest generated output
    label_smoothing: float = 0.1

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def check(self) -> None:
        if self.beam < 1:
            raise XlingError(f"--beam must be at least 1, got {self.beam}")
        if self.no_repeat_ngram_size < 0:
            raise XlingError(f"--no-repeat-ngram-size must be >= 0, got {self.no_repeat_ngram_size}")
        if self.max_source_len < 8 or self.max_target_len < 4:
            raise XlingError("--max-source-len must be >= 8 and --max-target-len >= 4")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise XlingError(f"--label-smoothing must be within [0, 1), got {self.label_smoothing}")


class GenerationRunner(Runner):
    """Examples: (source ids, target ids, target text, language); one language per ``load``. The
    network is the encoder-decoder itself (no extra head)."""

    model_kind = "seq2seq"

    def __init__(self, spec: TaskSpec, s2s, cfg):
        super().__init__(spec)
        self.s2s, self.gen, self.module = s2s, cfg.gen, s2s.model
        self._read: dict = {}
        self._bleu = None

    def check_inputs(self, data: Path, langs: list[str]) -> None:
        """Every dev/test pair of ``langs`` and the train pair are read and checked before training."""
        for lg in langs:
            self.s2s.lang_index(lg)
        for sp in ("dev", "test"):
            for lg in langs:
                self._read[(lg, sp)] = read_generation(self.spec, data, lg, sp)

    def encode(self, src: list[str], tgt: list[str], lang: str) -> list[tuple]:
        c = self.gen
        return [(self.s2s.source(s, lang, c.max_source_len), self.s2s.target(t, c.max_target_len), t, lang)
                for s, t in zip(src, tgt)]

    def load(self, data: Path, lang: str, split: str, limit: int | None = None, train: bool = False):
        src, tgt = self._read.get((lang, split)) or read_generation(self.spec, data, lang, split)
        return self.encode(src[:limit] if limit else src, tgt[:limit] if limit else tgt, lang)

    def size(self, item) -> int:
        return len(item[0]) + len(item[1])

    def collate(self, items: list) -> dict:
        import torch

        from xling.modeling import pad_sequences

        pad = self.s2s.dictionary.pad()
        src, tgt = pad_sequences([e[0] for e in items], pad), pad_sequences([e[1] for e in items], pad)
        start = torch.tensor([[self.s2s.lang_index(e[3])] for e in items], dtype=torch.long)
        prev = torch.cat([start, tgt[:, :-1]], 1)
        prev = prev.masked_fill(prev.eq(self.s2s.dictionary.eos()), pad)
        lengths = torch.tensor([len(e[0]) for e in items], dtype=torch.long)
        return {"net_input": {"src_tokens": src, "src_lengths": lengths, "prev_output_tokens": prev},
                "target": tgt}

    def _losses(self, model, batch: dict):
        """(label-smoothed loss, nll) summed over the target tokens, and their count."""
        import torch
        from fairseq.criterions.label_smoothed_cross_entropy import label_smoothed_nll_loss

        logits, _ = model(**batch["net_input"])
        lprobs = torch.log_softmax(logits.float(), dim=-1)
        tgt, pad = batch["target"], self.s2s.dictionary.pad()
        loss, nll = label_smoothed_nll_loss(lprobs.view(-1, lprobs.size(-1)), tgt.view(-1),
                                            self.gen.label_smoothing, ignore_index=pad)
        return loss, nll, int(tgt.ne(pad).sum())

    def loss(self, model, batch: dict):
        loss, _nll, ntok = self._losses(model, batch)
        return loss / ntok

    def dev_loss(self, model, loaded) -> float:
        """Per-token negative log-likelihood of the gold targets."""
        import torch

        tot, n = 0.0, 0
        with torch.no_grad():
            for _idx, _items, batch in self.batches(loaded):
                _loss, nll, ntok = self._losses(model, batch)
                tot, n = tot + float(nll), n + ntok
        return tot / max(n, 1)

    def generator(self, model):
        from fairseq.sequence_generator import SequenceGenerator

        c = self.gen
        return SequenceGenerator([model], self.s2s.dictionary, beam_size=c.beam, max_len_a=0,
                                 max_len_b=c.max_target_len, min_len=1, len_penalty=c.lenpen,
                                 no_repeat_ngram_size=c.no_repeat_ngram_size)

    def predict(self, model, loaded, on_batch=None) -> list[str]:
        """Beam search from the forced ``[lang]`` start token of the examples' language; one
        detokenized output per example."""
        import torch

        gen, out = self.generator(model), [""] * len(loaded)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for idx, items, batch in self.batches(loaded):
                    net = batch["net_input"]
                    sample = {"net_input": {"src_tokens": net["src_tokens"], "src_lengths": net["src_lengths"]}}
                    hyps = gen.generate([model], sample, bos_token=self.s2s.lang_index(items[0][3]))
                    for i, h in zip(idx, hyps):
                        out[i] = self.s2s.detokenize(h[0]["tokens"].tolist())
                    if on_batch:
                        on_batch()
        finally:
            # the generator leaves its beam size in the attention layers (they then fold the batch
            # into beams); full-batch forward passes need it back at 1
            model.set_beam_size(1)  # BARTModel: every encoder-decoder attention layer
            model.train(was_training)
        return out

    def bleu(self):
        if self._bleu is None:
            from xling.xglue.metrics import METRICS

            self._bleu = METRICS[self.spec.metric]()
        return self._bleu

    def score(self, loaded, predictions, lang: str) -> float:
        return self.bleu().score([e[2] for e in loaded], predictions)

    def dev_score(self, model, loaded, lang: str) -> float:
        # BLEU on the train language's dev set; equal BLEU goes to the lower dev loss
        return self.score(loaded, self.predict(model, loaded), lang) - 1e-6 * self.dev_loss(model, loaded)

    def format(self, predictions) -> str:
        return "".join(p + "\n" for p in predictions)

    def gold_slice(self, loaded) -> str:
        return "".join(e[2] + "\n" for e in loaded)

    def extra_scores(self, loaded, predictions, lang: str, langs: list[str]) -> dict:
        from xling.xglue import langid

        return {"off_target": langid.off_target_rate(predictions, lang)}

    def signature(self) -> str:
        from xling.xglue import langid

        return f"{self.bleu().signature()}|{langid.signature()}"
