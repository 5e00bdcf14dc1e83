"""Zero-shot generation (XGLUE QG, NTG) with an encoder-decoder from ``xling pretrain --arch seq2seq``.

Fine-tuning: label-smoothed cross-entropy on the train language's pairs (default English), sources cut
to ``max_source_len`` pieces and targets to ``max_target_len``, driven by the shared lean loop of
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

REQUIRED = ("model.pt", "dict.txt", "sentencepiece.bpe.model")


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


def _model_task_cfg(path: Path) -> dict:
    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    import torch

    try:
        state = torch.load(path / "model.pt", map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  torch raises many kinds for a bad file
        raise XlingError(f"cannot read checkpoint: {type(e).__name__}: {e}", file=path / "model.pt") from None
    cfg = state.get("cfg") or {}
    task = cfg.get("task") if isinstance(cfg, dict) else None
    return dict(task or {})


def model_langs(model: Path) -> list[str]:
    """The languages with a ``[lang]`` token in an xling encoder-decoder model directory."""
    return [x for x in str(_model_task_cfg(Path(model)).get("langs") or "").split(",") if x]


def check_model(model: Path, langs: list[str]) -> str:
    """Check that ``model`` is an xling encoder-decoder with a ``[lang]`` token for every language in
    ``langs``; return its fingerprint. Raises :class:`XlingError` before anything is written."""
    from xling.io import sha256_file

    model = Path(model)
    missing = [f for f in REQUIRED if not (model / f).is_file()]
    if missing:
        raise XlingError(f"model directory lacks {', '.join(missing)}", file=model,
                         fix="give the OUT/model directory of `xling pretrain --arch seq2seq`")
    task = _model_task_cfg(model)
    if task.get("_name") != "xling_dae":
        raise XlingError(f"not an xling encoder-decoder (task {task.get('_name')!r}); generation tasks need one",
                         file=model / "model.pt", fix="pretrain one with `xling pretrain --arch seq2seq --tasks xdae`")
    have = [x for x in str(task.get("langs") or "").split(",") if x]
    lacking = [lg for lg in langs if lg not in have]
    if lacking:
        raise XlingError(f"the model's dictionary has no language token for {', '.join(lacking)} "
                         f"(it has [{'], ['.join(have)}])", file=model / "model.pt",
                         fix="evaluate only those languages, or pretrain with data (and --langs) that include them")
    return sha256_file(model / "model.pt")[:12]


@dataclass
class Seq2seq:
    model: object
    task: object
    dictionary: object
    spm: object
    langs: list[str]

    def lang_index(self, lang: str) -> int:
        idx = self.dictionary.index(f"[{lang}]")
        if idx == self.dictionary.unk():
            raise XlingError(f"the model's dictionary has no language token [{lang}]",
                             fix=f"the model knows {', '.join(self.langs)}")
        return idx

    def pieces(self, text: str) -> list[int]:
        d = self.dictionary
        return [d.index(p) for p in self.spm.encode(text, out_type=str)]

    def source(self, text: str, lang: str, max_len: int) -> list[int]:
        d = self.dictionary
        return [d.bos()] + self.pieces(text)[: max_len - 3] + [d.eos(), self.lang_index(lang)]

    def target(self, text: str, max_len: int) -> list[int]:
        return self.pieces(text)[: max_len - 1] + [self.dictionary.eos()]

    def detokenize(self, ids) -> str:
        d = self.dictionary
        skip = {d.bos(), d.eos(), d.pad(), d.unk()} | {d.index(f"[{lg}]") for lg in self.langs}
        skip.add(d.index("<mask>"))
        text = self.spm.decode_pieces([d[int(i)] for i in ids if int(i) not in skip])
        return " ".join(text.split())


def load_seq2seq(path: str | Path) -> Seq2seq:
    path = Path(path)
    check_model(path, [])
    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    import sentencepiece as spm
    from fairseq import checkpoint_utils

    import xling.xlmplug  # noqa: F401  registers the xling_dae task and architectures

    try:
        models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task(
            [str(path / "model.pt")], arg_overrides={"data": str(path)})
    except Exception as e:  # noqa: BLE001
        if "size mismatch" in str(e):
            raise XlingError("dict.txt does not match the checkpoint's embedding table (size mismatch)",
                             file=path / "dict.txt", fix="use the dict.txt the model was trained with") from None
        raise XlingError(f"cannot load checkpoint: {type(e).__name__}: {e}", file=path / "model.pt") from None
    model = models[0]
    model.eval()
    sp = spm.SentencePieceProcessor(model_file=str(path / "sentencepiece.bpe.model"))
    return Seq2seq(model=model, task=task, dictionary=task.source_dictionary, spm=sp, langs=list(task.langs))


class GenRunner:
    """Fine-tunes and decodes one generation task; examples are (source ids, target ids, target text)."""

    def __init__(self, s2s: Seq2seq, cfg: GenerateConfig):
        self.s2s, self.cfg, self.module = s2s, cfg, s2s.model

    def encode(self, src: list[str], tgt: list[str], src_lang: str) -> list[tuple]:
        c = self.cfg
        return [(self.s2s.source(s, src_lang, c.max_source_len), self.s2s.target(t, c.max_target_len), t)
                for s, t in zip(src, tgt)]

    def _pad(self, seqs):
        import torch

        n = max(len(s) for s in seqs)
        out = torch.full((len(seqs), n), self.s2s.dictionary.pad(), dtype=torch.long)
        for i, s in enumerate(seqs):
            out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        return out, torch.tensor([len(s) for s in seqs], dtype=torch.long)

    def _batch_loss(self, batch, lang: str, reduce_mean: bool = True):
        import torch
        from fairseq.criterions.label_smoothed_cross_entropy import label_smoothed_nll_loss

        src, src_len = self._pad([b[0] for b in batch])
        tgt, _ = self._pad([b[1] for b in batch])
        prev = torch.cat([torch.full((len(batch), 1), self.s2s.lang_index(lang), dtype=torch.long), tgt[:, :-1]], 1)
        prev = prev.masked_fill(prev.eq(self.s2s.dictionary.eos()), self.s2s.dictionary.pad())
        logits, _ = self.module(src, src_len, prev)
        lprobs = torch.log_softmax(logits.float(), dim=-1)
        loss, nll = label_smoothed_nll_loss(lprobs.view(-1, lprobs.size(-1)), tgt.view(-1),
                                            self.cfg.label_smoothing, ignore_index=self.s2s.dictionary.pad())
        ntok = int(tgt.ne(self.s2s.dictionary.pad()).sum())
        return (loss / ntok, nll / ntok) if reduce_mean else (loss, nll, ntok)

    def loss_fn(self, lang: str):
        return lambda batch: self._batch_loss(batch, lang)[0]

    def dev_loss(self, examples, lang: str, batch_size: int = 32) -> float:
        import torch

        tot, n = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(examples), batch_size):
                _loss, nll, ntok = self._batch_loss(examples[i:i + batch_size], lang, reduce_mean=False)
                tot, n = tot + float(nll), n + ntok
        return tot / max(n, 1)

    def generator(self):
        from fairseq.sequence_generator import SequenceGenerator

        c = self.cfg
        return SequenceGenerator([self.module], self.s2s.dictionary, beam_size=c.beam, max_len_a=0,
                                 max_len_b=c.max_target_len, min_len=1, len_penalty=c.lenpen,
                                 no_repeat_ngram_size=c.no_repeat_ngram_size)

    def predict(self, examples, lang: str, batch_size: int = 32, on_batch=None) -> list[str]:
        """Beam search from the forced ``[lang]`` start token; one detokenized output per example."""
        import torch

        gen, out = self.generator(), []
        was_training = self.module.training
        self.module.eval()
        try:
            with torch.no_grad():
                for i in range(0, len(examples), batch_size):
                    src, src_len = self._pad([e[0] for e in examples[i:i + batch_size]])
                    sample = {"net_input": {"src_tokens": src, "src_lengths": src_len}}
                    hyps = gen.generate([self.module], sample, bos_token=self.s2s.lang_index(lang))
                    out += [self.s2s.detokenize(h[0]["tokens"]) for h in hyps]
                    if on_batch:
                        on_batch()
        finally:
            # the generator leaves its beam size in the attention layers (they then fold the batch
            # into beams); full-batch forward passes need it back at 1
            self.module.set_beam_size(1)  # BARTModel: every encoder-decoder attention layer
            self.module.train(was_training)
        return out


def _slice(items: list, n: int | None) -> list:
    return items[:n] if n else items


def run_generation(spec, cfg, langs: list[str], seed: int, tmp: Path, on_step=None) -> dict:
    """Fine-tune on ``cfg.train_lang``, select on its dev set, predict and score dev/test of ``langs``;
    the result dict has the keys of :func:`xling.xglue.run.run_task` plus ``off_target`` and
    ``metric_signature``."""
    from xling.xglue import langid
    from xling.xglue.finetune import FinetuneConfig, set_seed, train
    from xling.xglue.metrics import METRICS
    from xling.xglue.run import write_and_score
    from xling.xglue.tasks import read_generation

    cfg.gen.check()
    # every input is read and checked before any training starts
    data = {(lg, sp): read_generation(spec, cfg.data, lg, sp) for lg in langs for sp in ("dev", "test")}
    tr_src, tr_tgt = read_generation(spec, cfg.data, cfg.train_lang, "train")
    set_seed(seed)
    s2s = load_seq2seq(cfg.model)
    for lg in langs:
        s2s.lang_index(lg)
    r = GenRunner(s2s, cfg.gen)
    tr = r.encode(_slice(tr_src, cfg.max_train_examples), _slice(tr_tgt, cfg.max_train_examples), cfg.train_lang)
    d_src, d_tgt = data[(cfg.train_lang, "dev")]
    dev = r.encode(_slice(d_src, cfg.max_eval_examples), _slice(d_tgt, cfg.max_eval_examples), cfg.train_lang)
    bleu = METRICS[spec.metric]()

    def dev_score() -> float:
        # BLEU on the train language's dev set; equal BLEU goes to the lower dev loss
        return bleu.score([e[2] for e in dev], r.predict(dev, cfg.train_lang)) - 1e-6 * r.dev_loss(dev, cfg.train_lang)

    ft = FinetuneConfig(**{**cfg.ft.as_dict(), "seed": seed})
    hist = train(r.module, tr, r.loss_fn(cfg.train_lang), dev_score, ft, on_step)
    scores: dict = {}
    off: dict = {}
    for split in ("dev", "test"):
        for lg in langs:
            src, tgt = data[(lg, split)]
            ex = r.encode(_slice(src, cfg.max_eval_examples), _slice(tgt, cfg.max_eval_examples), lg)
            preds = r.predict(ex, lg)
            scores.setdefault(split, {})[lg] = write_and_score(spec, cfg, tmp, seed, split, lg,
                                                               "".join(p + "\n" for p in preds),
                                                               lambda: "".join(e[2] + "\n" for e in ex))
            off.setdefault(split, {})[lg] = langid.off_target_rate(preds, lg, langs)
    return {"seed": seed, "scores": scores, "off_target": off,
            "metric_signature": f"{bleu.signature()}|{langid.signature()}", **hist}
