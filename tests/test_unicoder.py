"""Unicoder-style objectives (`xling pretrain --tasks ...`): clwr, clpc, clmlm, cs-mlm, xlco on real tatoeba
pairs (CPU, tiny preset), their mixture, the checkpoint's encoder, `xling inspect`, and bad input."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import cli, prep_en_fr_de, summary, tiny

# validate and save only at the end of a run: a short run needs no per-epoch validation
END_ONLY = ["--", "--validate-interval", "1000", "--save-interval", "1000"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """en-fr and en-de tatoeba pairs, word-aligned (`prep-data --align`), sides also as monolingual data."""
    return prep_en_fr_de(tmp_path_factory.mktemp("unicoder_data"), align=True)


def first_last(curve, key):
    return curve[0][key], float(np.mean([c[key] for c in curve[-3:]]))


def unicoder_setup(data_dir, *flags, **cfg):
    """``(task, cfg)`` of task xling_unicoder on ``data_dir`` (tiny model); ``flags`` are bare switches."""
    import xling.xlmplug  # noqa: F401
    from fairseq import tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.options import get_training_parser, parse_args_and_arch

    argv = [str(data_dir), "--task", "xling_unicoder", "--arch", "xling_xlm_tiny", "--criterion", "xling_unicoder",
            "--tokens-per-sample", "64", "--cpu", "--langs", "de,en,fr", "--pairs", "en-fr,en-de", *flags]
    for k, v in cfg.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    conf = convert_namespace_to_omegaconf(parse_args_and_arch(get_training_parser(), argv))
    return tasks.setup_task(conf.task), conf


def task_of(data_dir, **cfg):
    return unicoder_setup(data_dir, **cfg)[0]


# (task, updates, margin in bits between the first logged loss and the mean of the last three);
# observed on 1 core: see the comment of each margin
SINGLE = [
    ("clwr", 150, 1.5),    # observed 10.16 -> 8.26
    ("clmlm", 150, 1.4),   # observed 10.16 -> 8.23
    ("cs-mlm", 150, 1.2),  # observed 10.15 -> 8.51
    ("xlco", 150, 0.6),    # observed 3.00 -> 2.11 (in-batch InfoNCE over 8 pairs: chance is log2 8 = 3)
]


@pytest.mark.parametrize("task,updates,margin", SINGLE, ids=[s[0] for s in SINGLE])
def test_each_task_alone_loss_falls(data_dir, tmp_path, task, updates, margin):
    out = tmp_path / task
    r = cli(*tiny(data_dir, out, "--tasks", task, "--max-updates", updates, "--batch-size", 8, "--log-interval", 15,
                  *END_ONLY))
    s = summary(out)
    key = task.replace("-", "_") + "_loss"
    assert s["tasks"] == [task] and s["num_updates"] == updates
    assert all(key in c for c in s["curve"])
    first, last = first_last(s["curve"], key)
    assert last < first - margin, (task, first, last)
    assert s["valid"] and f"valid_{key}" in s["valid"][-1]
    assert task.replace("-", "_") in r.output  # the per-task loss is in the progress lines / result table
    if task == "xlco":  # held-out pairs: in-batch retrieval of the translation among 8, chance 12.5 %
        assert s["valid"][-1]["valid_xlco_acc"] > 22, s["valid"][-1]  # observed 31 %


# CPU numerics pinned for learning tests near chance: one thread, and the AVX2 code paths of ATen, MKL and
# oneDNN on every x86-64 machine (AVX-512 machines otherwise round differently, and a tiny model's trajectory
# drifts: 54.7 % on one machine, 65.1 % on another, for the same seed)
PINNED_NUMERICS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "avx2",
                   "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def above_chance(n: int, p_value: float = 0.01) -> float:
    """The accuracy (%) that n balanced binary decisions exceed by chance with probability below p_value."""
    from math import comb

    tail = 0.0
    for k in range(n, -1, -1):
        tail += comb(n, k) / 2 ** n
        if tail >= p_value:
            return 100.0 * (k + 1) / n
    return 100.0


def test_clpc_learns_translation_pairs_held_out(data_dir, tmp_path, monkeypatch):
    for k, v in PINNED_NUMERICS.items():
        monkeypatch.setenv(k, v)  # the trainer subprocess inherits them
    out = tmp_path / "clpc"
    cli(*tiny(data_dir, out, "--tasks", "clpc", "--max-updates", 400, "--total-updates", 4000, "--lr", 0.002,
              "--batch-size", 32, "--lang-embeddings", "--log-interval", 50, *END_ONLY))
    s = summary(out)
    first, last = first_last(s["curve"], "clpc_loss")
    assert last < first - 0.05, (first, last)  # binary cross-entropy in bits, chance 1.0; observed 1.02 -> 0.79..0.90
    # held-out: the valid split's pairs (never trained on), half positives, half random negatives; the accuracy
    # must be significantly above chance (binomial, p < 0.01: 58.3 % for the 199 pairs). Observed with seeds 1, 2, 3
    # (AVX-512 numerics): 66.2, 74.5, 69.8 %
    n = sum(len((data_dir / "para" / f"valid.{pair}.en.txt").read_text(encoding="utf-8").splitlines())
            for pair in ("en-fr", "en-de"))
    valid = s["valid"][-1]
    assert valid["valid_clpc_acc"] > above_chance(n), (valid, n, above_chance(n))


def test_cs_mlm_batches_hold_aligned_target_pieces(data_dir):
    """Switched positions carry the pieces of the target words aligned to the replaced source word,
    checked against xling.align.pieces' own word->piece link mapping of the prep-data alignment file."""
    import sentencepiece as spm

    from xling.align.pharaoh import read_pharaoh
    from xling.align.pieces import word_to_piece_alignment

    task = task_of(data_dir, objectives="cs-mlm", cs_ratio=0.5)
    task.load_dataset("train")
    sp = spm.SentencePieceProcessor(model_file=str(data_dir / "spm.model"))
    d = task.source_dictionary
    multi = task.dataset("train")
    checked = switched_rows = 0
    for pair in ("en-fr", "en-de"):
        src, tgt = pair.split("-")
        lines = {lang: (data_dir / "para" / f"train.{pair}.{lang}.txt").read_text(encoding="utf-8").splitlines()
                 for lang in (src, tgt)}
        links = [sure for sure, _ in read_pharaoh(data_dir / "para" / f"train.{pair}.align")]
        leaf = next(p.dataset for p in multi.datasets["cs-mlm"].dataset.datasets
                    if p.dataset.src_lang == task.lang_index[src] and p.dataset.tgt_lang == task.lang_index[tgt])
        assert leaf.skipped == 0
        for i in range(0, leaf.m, 7):
            assert leaf.src[i].tolist()[:-1] == [p + 1 for p in sp.encode(lines[src][i])]  # fairseq = spm + 1
            ids, langs, switched = leaf.switch(i)
            base, other = (tgt, src) if langs[-1] == task.lang_index[tgt] else (src, tgt)  # </s> keeps the base's
            if not switched:
                continue
            switched_rows += 1
            a, b = lines[base][i], lines[other][i]
            word_links = links[i] if base == src else {(k, j) for j, k in links[i]}
            piece_links = word_to_piece_alignment(sp, a, b, word_links)
            other_pieces = [p + 1 for p in sp.encode(b)]
            owner = leaf.owners[i][0 if base == src else 1]
            for word, _targets, pieces in switched:
                assert pieces, (a, b, word)
                linked = {q for p, q in piece_links if owner[p] == word}
                assert {other_pieces[q] for q in linked} >= set(pieces), (a, b, word, pieces)
                checked += 1
            # the switched pieces are in the sentence, marked with the other language's id
            assert sum(lang == task.lang_index[other] for lang in langs) == sum(len(s[2]) for s in switched)
    assert switched_rows > 150 and checked > 300, (switched_rows, checked)
    # and in the collated (masked) training batches: rows mix both languages' ids
    itr = task.get_batch_iterator(multi, max_sentences=16, seed=1, epoch=1).next_epoch_itr(shuffle=False)
    batch = next(itr)["cs-mlm"]
    lang = batch["net_input"]["lang_ids"]
    tokens = batch["net_input"]["src_tokens"]
    mixed = [len(set(lang[r][tokens[r].ne(d.pad())].tolist())) == 2 for r in range(len(lang))]
    assert sum(mixed) >= 8, mixed
    assert batch["target"].ne(d.pad()).sum() > 0


@pytest.fixture(scope="module")
def mixed_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("mixed") / "run"
    r = cli(*tiny(data_dir, out, "--tasks", "mlm,tlm,clwr,clpc,clmlm,cs-mlm,xlco",
                  "--task-weights", "1,1,1,0.5,1,1,0.5", "--max-updates", 60, "--batch-size", 8,
                  "--log-interval", 10, *END_ONLY))
    return out, r.output


def test_mixed_run_trains_every_task_and_checkpoints(mixed_run):
    out, output = mixed_run
    s = summary(out)
    assert s["tasks"] == ["mlm", "tlm", "clwr", "clpc", "clmlm", "cs-mlm", "xlco"]
    assert s["task_weights"] == [1, 1, 1, 0.5, 1, 1, 0.5] and s["num_updates"] == 60
    curve = s["curve"]
    for key in ("mlm", "tlm", "clwr", "clmlm", "cs_mlm"):
        first, last = first_last(curve, f"{key}_loss")
        assert last < first - 0.8, (key, first, last)  # observed 10.1-10.2 -> 8.65-8.75 in 60 updates
    assert all("clpc_acc" in c and "xlco_acc" in c for c in curve)
    # the weighted total is what fairseq minimises
    w = dict(zip(["mlm", "tlm", "clwr", "clpc", "clmlm", "cs_mlm", "xlco"], s["task_weights"]))
    for c in curve:  # the logged means are per interval, so the identity holds to a few hundredths
        assert c["loss"] == pytest.approx(sum(w[k] * c[f"{k}_loss"] for k in w), rel=0.02)
    assert "cs_mlm" in output and "clpc_acc" in output and "xlco" in output
    import torch

    state = torch.load(out / "checkpoints" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert sorted(state["criterion"]) == sorted([
        "heads.clwr.clwr_bilinear", "heads.clpc.clpc_head.0.weight", "heads.clpc.clpc_head.0.bias",
        "heads.clpc.clpc_head.3.weight", "heads.clpc.clpc_head.3.bias", "heads.xlco.xlco_proj.weight",
        "heads.xlco.xlco_proj.bias", "heads.xlco.xlco_queue", "heads.xlco.xlco_queue_filled"])
    assert not any("heads" in k or "clwr" in k or "clpc" in k or "xlco" in k for k in state["model"])
    # re-running the finished run skips it
    r = cli(*tiny(Path(s["command"].split()[3]), out, "--tasks", "mlm,tlm,clwr,clpc,clmlm,cs-mlm,xlco",
                  "--task-weights", "1,1,1,0.5,1,1,0.5", "--max-updates", 60, "--batch-size", 8,
                  "--log-interval", 10, *END_ONLY))
    assert "up to date" in r.output


def test_checkpoint_loads_as_the_same_encoder(mixed_run, data_dir, tmp_path):
    import torch

    import xling.xlmplug  # noqa: F401
    from xling.checkpoint_info import inspect_checkpoint
    from xling.modeling import load_encoder

    out, _ = mixed_run
    copy = tmp_path / "model"
    shutil.copytree(out / "model", copy)  # a model directory alone, no data beside it
    assert sorted(p.name for p in copy.iterdir() if p.name != ".xling-outputs.json") == [  # xling's record
        "dict.txt", "model.pt", "sentencepiece.bpe.model"]
    enc = load_encoder(copy)
    feats = enc.features(enc.collate([enc.encode("Il fait beau."), enc.encode("Good morning!")]))
    assert feats.shape[0] == 2 and feats.shape[2] == 64 and torch.isfinite(feats).all()
    # the encoder's weights are named and shaped exactly as a plain MLM model's (task xling_xlm)
    from fairseq import tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.options import get_training_parser, parse_args_and_arch

    args = parse_args_and_arch(get_training_parser(), [str(data_dir), "--task", "xling_xlm", "--arch",
                                                       "xling_xlm_tiny", "--tokens-per-sample", "64", "--cpu"])
    cfg = convert_namespace_to_omegaconf(args)
    plain = tasks.setup_task(cfg.task).build_model(cfg.model).state_dict()
    trained = enc.model.state_dict()
    assert {k: tuple(v.shape) for k, v in trained.items()} == {k: tuple(v.shape) for k, v in plain.items()}
    saved = torch.load(copy / "model.pt", map_location="cpu", weights_only=True)["model"]
    for k, v in saved.items():
        assert torch.equal(trained[k], v), k  # loaded exactly as saved
    # inspect: the tasks, their last losses, and parameters counted once (tied LM head)
    rep = inspect_checkpoint(copy)
    assert rep["tasks"] == ["mlm", "tlm", "clwr", "clpc", "clmlm", "cs-mlm", "xlco"]
    assert rep["task_weights"] == [1, 1, 1, 0.5, 1, 1, 0.5]
    for key in ("mlm", "tlm", "clwr", "clpc", "clmlm", "cs_mlm", "xlco"):
        assert 0 < rep[f"train_{key}_loss"] < 11, (key, rep)
    assert 0 <= rep["train_clpc_acc"] <= 100
    unique = sum(p.numel() for p in enc.model.parameters())  # tied weights are one Parameter
    total = sum(v.numel() for v in saved.values())
    assert rep["parameters"] == unique < total
    assert rep["head_parameters"] == 64 * 64 + (64 * 64 + 64 + 64 * 2 + 2) + (64 * 64 + 64)
    r = cli("inspect", copy)
    assert "cs-mlm" in r.output and "train_clwr_loss" in r.output


def test_tasks_mlm_tlm_is_the_tlm_flag(data_dir, tmp_path):
    a = cli(*tiny(data_dir, tmp_path / "a", "--tlm", "--dry-run")).output
    b = cli(*tiny(data_dir, tmp_path / "a", "--tasks", "mlm,tlm", "--dry-run")).output
    assert a == b and "--task xling_xlm " in a and "--tlm-ratio 0.5" in a
    c = cli(*tiny(data_dir, tmp_path / "a", "--tasks", "mlm,tlm", "--task-weights", "3,1", "--dry-run")).output
    assert "--tlm-ratio 0.25" in c
    d = cli(*tiny(data_dir, tmp_path / "a", "--tasks", "clwr,xlco", "--task-weights", "1,0.5", "--dry-run")).output
    assert "--task xling_unicoder" in d and "--criterion xling_unicoder" in d
    assert "--objectives clwr,xlco --objective-weights 1.0,0.5" in d and "--pairs en-de,en-fr" in d
    assert not (tmp_path / "a").exists()


def test_bad_inputs_exit_2_before_training(data_dir, tmp_path):
    out = tmp_path / "bad"
    cases = [
        (["--tasks", "mlm,clwr,foo"], "unknown task(s) foo"),
        (["--tasks", "mlm,clwr", "--task-weights", "1,1,1"], "3 weight(s) for 2 task(s)"),
        (["--tasks", "mlm,clwr", "--task-weights", "1,x"], "comma-separated numbers"),
        (["--tasks", "mlm,clwr", "--task-weights", "0,0"], "not all 0"),
        (["--task-weights", "1,2"], "without --tasks"),
        (["--tasks", "mlm,clwr", "--tlm"], "does not list tlm"),
        (["--tasks", "clwr,clwr"], "listed twice"),
        (["--tasks", "mlm,clwr", "--tlm-ratio", "0.3"], "--task-weights"),
    ]
    for args, message in cases:
        r = cli(*tiny(data_dir, out, *args), ok=None)
        assert r.exit_code == 2 and message in r.output, (args, r.output)
    # parallel tasks on data with no pairs
    mono_only = tmp_path / "mono_only"
    mono_only.mkdir()
    man = json.loads((data_dir / "manifest.json").read_text())
    man["pairs"], man["para"] = [], {}
    (mono_only / "manifest.json").write_text(json.dumps(man))
    shutil.copy(data_dir / "dict.txt", mono_only)
    shutil.copytree(data_dir / "mono", mono_only / "mono")
    r = cli(*tiny(mono_only, out, "--tasks", "mlm,clpc,xlco"), ok=None)
    assert r.exit_code == 2 and "clpc, xlco need parallel data" in r.output and "prep-data --para" in r.output
    # cs-mlm without alignments names the command that makes them
    no_align = tmp_path / "no_align"
    shutil.copytree(data_dir, no_align, ignore=shutil.ignore_patterns("*.align"))
    r = cli(*tiny(no_align, out, "--tasks", "mlm,cs-mlm"), ok=None)
    assert r.exit_code == 2 and "cs-mlm needs word alignments" in r.output and "--align" in r.output
    assert not out.exists()


def test_objective_registry_names_builder_head_and_loss():
    import torch.nn as nn
    from fairseq.criterions import CRITERION_REGISTRY, FairseqCriterion

    import xling.xlmplug  # noqa: F401
    from xling.xlmplug.objectives import MASKED_OBJECTIVES, OBJECTIVES, PARALLEL_OBJECTIVES, parse_objectives

    assert list(OBJECTIVES) == ["mlm", "tlm", "clwr", "clpc", "clmlm", "cs-mlm", "xlco", "rtd", "trtd"]
    assert PARALLEL_OBJECTIVES == ("tlm", "clwr", "clpc", "clmlm", "cs-mlm", "xlco", "trtd")
    assert MASKED_OBJECTIVES == ("mlm", "tlm", "clmlm", "cs-mlm")
    heads = {}
    for name, o in OBJECTIVES.items():
        assert callable(o.data_builder()), name
        head = o.head_class()
        assert (head is None) == o.masked, name  # masked LMs use the model's own LM head
        if head is not None:
            assert issubclass(head, nn.Module) and not issubclass(head, FairseqCriterion), name
            heads[name] = head.__name__
    assert heads == {"clwr": "ClwrHead", "clpc": "ClpcHead", "xlco": "XlcoHead", "rtd": "RtdHead", "trtd": "RtdHead"}
    assert [n for n, o in OBJECTIVES.items() if o.loss_kind.accuracy] == ["clpc", "xlco", "rtd", "trtd"]
    assert [n for n, o in OBJECTIVES.items() if o.masks_input] == ["mlm", "tlm", "clmlm", "cs-mlm", "rtd", "trtd"]
    assert OBJECTIVES["cs-mlm"].log_key == "cs_mlm"
    # heads are not criteria: only the weighted sum is a usable --criterion
    assert "xling_unicoder" in CRITERION_REGISTRY
    assert not {"xling_clwr", "xling_clpc", "xling_xlco"} & set(CRITERION_REGISTRY)
    assert parse_objectives("mlm, clwr", "1,0.5") == (["mlm", "clwr"], [1.0, 0.5])
    assert parse_objectives(["xlco"]) == (["xlco"], [1.0])
    for names, weights, message in [("mlm,foo", None, "unknown objective(s) foo"), ("", None, "(none given)"),
                                    ("clwr,clwr", None, "listed twice"), ("mlm,tlm", "1", "1 weight(s) given"),
                                    ("mlm,tlm", "0,0", "not all 0"), ("mlm,tlm", "1,-1", "non-negative")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            parse_objectives(names, weights)


def test_criterion_sums_every_objective_scored_by_its_head(data_dir):
    """One batch of every objective: the loss is the weighted sum of per-unit means, the heads get
    gradients, the model's state dict is the plain encoder's."""
    import torch

    weights = [1, 1, 1, 0.5, 1, 1, 0]
    task, conf = unicoder_setup(data_dir, objectives="mlm,tlm,clwr,clpc,clmlm,cs-mlm,xlco",
                       objective_weights=",".join(map(str, weights)))
    torch.manual_seed(1)
    model = task.build_model(conf.model)
    crit = task.build_criterion(conf.criterion)
    assert sorted(crit.heads) == ["clpc", "clwr", "xlco"]
    task.load_dataset("valid")
    batch = next(task.get_batch_iterator(task.dataset("valid"), max_sentences=8, seed=1).next_epoch_itr(shuffle=False))
    loss, sample_size, log = crit(model, batch)
    assert sample_size == 1 and torch.isfinite(loss)
    keys = ["mlm", "tlm", "clwr", "clpc", "clmlm", "cs_mlm", "xlco"]
    expect = sum(w * float(log[f"{k}_loss"]) / float(log[f"{k}_n"]) for w, k in zip(weights, keys))
    assert float(loss.detach()) == pytest.approx(expect, rel=1e-5)
    assert float(log["xlco_loss"]) > 0 and "xlco_correct" in log and "clpc_correct" in log  # weight 0: still logged
    assert 0 <= float(log["clpc_correct"]) <= float(log["clpc_n"])
    loss.backward()
    assert crit.heads["clwr"].clwr_bilinear.grad.abs().sum() > 0
    assert crit.heads["clpc"].clpc_head[0].weight.grad.abs().sum() > 0
    assert crit.heads["xlco"].xlco_proj.weight.grad is None  # weight 0: not in the graph of the total
    assert not any(k.startswith("heads") or "clwr" in k for k in model.state_dict())
    assert sorted(crit.state_dict()) == sorted([
        "heads.clwr.clwr_bilinear", "heads.clpc.clpc_head.0.weight", "heads.clpc.clpc_head.0.bias",
        "heads.clpc.clpc_head.3.weight", "heads.clpc.clpc_head.3.bias", "heads.xlco.xlco_proj.weight",
        "heads.xlco.xlco_proj.bias", "heads.xlco.xlco_queue", "heads.xlco.xlco_queue_filled"])


def test_positions_and_lang_ids_are_forward_arguments(data_dir):
    """The encoder reads positions and language ids from its forward() arguments, call by call."""
    import torch

    task, conf = unicoder_setup(data_dir, "--lang-embeddings", objectives="tlm")
    torch.manual_seed(0)
    model = task.build_model(conf.model).eval()
    task.load_dataset("valid")
    batch = next(task.get_batch_iterator(task.dataset("valid"), max_sentences=4, seed=1).next_epoch_itr(shuffle=False))
    net = batch["tlm"]["net_input"]
    tokens, pos, lang = net["src_tokens"], net["positions"], net["lang_ids"]
    real = tokens.ne(task.source_dictionary.pad())
    assert (pos[real] == 0).sum() == 2 * len(tokens)  # positions restart at the second side of each pair

    def feats(**kw):
        with torch.no_grad():
            return model(tokens, features_only=True, **kw)[0][real]

    plain = feats()
    counting = (torch.cumsum(real.long(), 1) - 1).clamp(min=0)  # 0, 1, 2, ... over the real tokens
    assert torch.allclose(feats(positions=counting), plain, atol=1e-6)  # fairseq's default positions
    restarted = feats(positions=pos)
    assert (restarted - plain).abs().max() > 1e-3
    with_langs = feats(positions=pos, lang_ids=lang)
    assert (with_langs - restarted).abs().max() > 1e-3
    assert torch.equal(feats(), plain)  # nothing carried over from the previous calls
    assert torch.equal(model(**net, features_only=True)[0][real], with_langs)  # the batch's net_input
