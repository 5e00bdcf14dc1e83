"""Span (SpanBERT) and whole-word masking of the masked-LM objectives on real tatoeba text: the 15 % budget, the
span lengths, words masked whole, one 80/10/10 decision per span; `xling pretrain --mask-span/--mask-whole-words`
through the CLI (loss falls, resume, inspect, dry run) and its refusals."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import cli, summary, tiny

ROWS = 300  # examples looked at (MLM blocks and TLM pairs of tatoeba en-fr, en-de)


def task_of(data_dir, task="xling_xlm", *flags, **cfg):
    """Task ``task`` on ``data_dir`` with the pretraining command's data layout (64-token blocks of whole
    sentences, half TLM pairs); ``flags`` are bare switches."""
    import xling.xlmplug  # noqa: F401
    from fairseq import tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.options import get_training_parser, parse_args_and_arch

    argv = [str(data_dir), "--task", task, "--arch", "xling_xlm_tiny", "--tokens-per-sample", "64",
            "--sample-break-mode", "complete", "--cpu", "--langs", "de,en,fr", "--pairs", "en-fr,en-de", *flags]
    for k, v in cfg.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    t = tasks.setup_task(convert_namespace_to_omegaconf(parse_args_and_arch(get_training_parser(), argv)).task)
    t.load_dataset("train")
    return t


def examples(task, n=ROWS):
    """``(original tokens, source, target, maskable)`` of the first ``n`` masked training examples."""
    ds = task.datasets["train"]
    special = ds.special.numpy()
    for i in range(n):
        ex = ds[i]
        src, tgt = ex["source"].numpy(), ex["target"].numpy()
        orig = np.where(tgt != ds.pad, tgt, src)
        yield orig, src, tgt, ~np.isin(orig, special)


def test_geometric_spans_keep_the_budget_and_clip_at_max(data_dir):
    from xling.xlmplug.masking import choose_spans

    task = task_of(data_dir, tlm_ratio=0.5)
    rng = np.random.default_rng(0)
    chosen = maskable_total = 0
    lengths, token_lengths = [], []
    for orig, _src, _tgt, maskable in examples(task):
        spans = choose_spans(maskable, rng, 0.15, span_p=0.2, max_span=10)
        chosen += int((spans >= 0).sum())
        maskable_total += int(maskable.sum())
        lengths += list(np.bincount(spans[spans >= 0]))
        assert not (spans[~maskable] >= 0).any()  # never <s>, </s> or padding
        single = choose_spans(maskable, rng, 0.15)
        token_lengths += list(np.bincount(single[single >= 0]))
    assert 0.145 < chosen / maskable_total < 0.16, chosen / maskable_total  # the same 15 % budget
    lengths = np.array(lengths)
    assert lengths.max() <= 10 and set(token_lengths) == {1}
    # geometric(0.2) has mean 5 (4.46 clipped at 10); tatoeba sentences (one segment each, spans stop at </s>)
    # and the 15 % budget of a 64-token block cut spans shorter
    assert lengths.mean() > 2.0, lengths.mean()
    counts = np.bincount(lengths, minlength=11)[1:]
    assert counts[0] > counts[4] > counts[9] - 1  # decreasing like a geometric distribution


def test_whole_words_are_masked_whole_one_decision_per_word(data_dir):
    task = task_of(data_dir, "xling_xlm", "--mask-whole-words", tlm_ratio=0.5)
    ds = task.datasets["train"]
    starts, mask_idx = ds.word_starts, task.mask_idx
    masked = maskable_total = words = all_masked = 0
    for orig, src, tgt, maskable in examples(task):
        m = tgt != ds.pad
        masked += int(m.sum())
        maskable_total += int(maskable.sum())
        ws = starts[orig] | ~np.concatenate([[False], maskable[:-1]])  # a word also starts after a special
        word = np.cumsum(ws) - 1
        for w in np.unique(word[m]):
            members = maskable & (word == w)
            assert m[members].all(), (orig[members], m[members])  # every piece of a chosen word
            kinds = {"mask" if s == mask_idx else "kept" if s == o else "random"
                     for s, o in zip(src[members], orig[members])}
            if len(kinds) > 1:  # a random piece may draw the piece it replaces
                assert kinds <= {"random", "kept"}, kinds
            words += 1
            all_masked += kinds == {"mask"}
    assert 0.135 < masked / maskable_total < 0.165, masked / maskable_total  # 15 % on average (observed 14.6)
    assert 0.75 < all_masked / words < 0.85, all_masked / words  # 80 % of the words all <mask>


def test_unicoder_objectives_mask_spans_of_words(data_dir):
    """mlm/tlm through task xling_unicoder (the path of cs-mlm and clmlm too): spans of whole words."""
    task = task_of(data_dir, "xling_unicoder", "--mask-whole-words", objectives="mlm,tlm", mask_span_p=0.2,
                   max_span_len=3)
    ds = task.datasets["train"]
    for name in ("mlm", "tlm"):
        part = ds.datasets[name]
        assert part.word_starts is not None and part.span_p == 0.2 and part.max_span == 3
        ex = part[0]
        m = ex["target"] != part.pad
        assert 0 < int(m.sum()) < len(m)


def test_pretrain_with_spans_and_whole_words(data_dir, tmp_path):
    out = tmp_path / "span"
    flags = ["--tlm", "--mask-span", "geometric:p=0.2,max=10", "--mask-whole-words", "--batch-size", 8,
             "--log-interval", 10, "--total-updates", 60]
    dry = cli(*tiny(data_dir, out, *flags, "--max-updates", 40, "--dry-run")).output
    assert "--mask-span-p 0.2 --max-span-len 10 --mask-whole-words" in dry
    cli(*tiny(data_dir, out, *flags, "--max-updates", 40))
    cli(*tiny(data_dir, out, *flags, "--max-updates", 60))  # resumes update 40
    s = summary(out)
    assert s["num_updates"] == 60 and [c["num_updates"] for c in s["curve"]] == list(range(10, 61, 10))
    first, last = s["curve"][0]["loss"], np.mean([c["loss"] for c in s["curve"][-2:]])
    assert last < first - 1.0, (first, last)
    assert all("mlm_loss" in c and "tlm_loss" in c for c in s["curve"])
    # a resume with other masking would mix two trainings: refused, naming the flag
    r = cli(*tiny(data_dir, out, "--tlm", "--batch-size", 8, "--total-updates", 60, "--max-updates", 80), ok=False)
    assert r.exit_code == 2 and "--mask-whole-words" in r.output
    report = cli("inspect", out).output
    assert "spans geometric p=0.2 max=10, whole words" in report


@pytest.mark.parametrize("flags,names", [
    (["--arch", "seq2seq", "--tasks", "xdae", "--mask-span", "geometric:p=0.2"], "--mask-span"),
    (["--arch", "seq2seq", "--tasks", "xdae", "--mask-whole-words"], "--mask-whole-words"),
    (["--mask-span", "poisson:p=0.2"], "--mask-span"),
    (["--mask-span", "geometric:p=1.5"], "--mask-span"),
    (["--mask-span", "geometric:q=0.2"], "--mask-span"),
    (["--tasks", "xlco", "--mask-whole-words"], "--mask-whole-words"),
], ids=["xdae-span", "xdae-words", "kind", "p", "key", "nothing-masked"])
def test_bad_masking_flags_exit_2(data_dir, tmp_path, flags, names):
    r = cli(*tiny(data_dir, tmp_path / "bad", *flags, "--dry-run"), ok=False)
    assert r.exit_code == 2, r.output
    assert names in r.output and "fix" in r.output.lower()
    assert not (tmp_path / "bad").exists()
