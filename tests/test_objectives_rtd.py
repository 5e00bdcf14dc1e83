"""Replaced-token detection (`xling pretrain --tasks rtd,trtd`, ELECTRA / XLM-E) on real tatoeba text: a small
generator shares the encoder's embeddings and fills the masked tokens, the encoder learns which were replaced;
losses fall and are logged per objective, the run resumes, the saved encoder is the discriminator (plain
fairseq loads it with the plugin), `--init` from an encoder, and refusals."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import cli, summary, tiny

END_ONLY = ["--", "--validate-interval", "1000", "--save-interval", "1000"]
FLAGS = ["--tasks", "rtd,trtd", "--batch-size", 8, "--log-interval", 10, "--total-updates", 40]


@pytest.fixture(scope="module")
def rtd_run(data_dir, tmp_path_factory):
    """rtd + trtd for 30 updates, then resumed to 40."""
    out = tmp_path_factory.mktemp("rtd") / "run"
    cli(*tiny(data_dir, out, *FLAGS, "--max-updates", 30, *END_ONLY))
    r = cli(*tiny(data_dir, out, *FLAGS, "--max-updates", 40, *END_ONLY))
    return out, r.output


def first_last(curve, key):
    return curve[0][key], float(np.mean([c[key] for c in curve[-2:]]))


def test_rtd_and_trtd_train_and_log_under_their_names(rtd_run):
    out, output = rtd_run
    s = summary(out)
    assert s["tasks"] == ["rtd", "trtd"] and s["num_updates"] == 40
    assert [c["num_updates"] for c in s["curve"]] == [10, 20, 30, 40]  # resumed at 30
    for key in ("rtd", "trtd"):
        first, last = first_last(s["curve"], f"{key}_loss")
        assert last < first - 0.3, (key, first, last)  # discriminator BCE, bits per token (observed 1.0 -> 0.5)
        first, last = first_last(s["curve"], f"{key}_gen_loss")
        assert last < first - 0.2, (key, first, last)  # generator MLM, bits per masked token
        # ~15 % of the tokens are chosen; the discriminator ends near or above the all-original rate
        assert 75 < s["curve"][-1][f"{key}_acc"] <= 100
    for c in s["curve"]:  # what fairseq minimises: generator MLM + 50 x discriminator, per objective
        assert c["loss"] == pytest.approx(sum(c[f"{k}_gen_loss"] + 50 * c[f"{k}_loss"] for k in ("rtd", "trtd")),
                                          rel=0.05)
    assert "rtd_acc" in output and "trtd_gen" in output


def test_saved_encoder_is_the_discriminator(rtd_run, tmp_path):
    import torch

    import xling.xlmplug  # noqa: F401
    from fairseq import checkpoint_utils

    from xling.modeling import load_encoder

    out, _ = rtd_run
    state = torch.load(out / "checkpoints" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    gen = [k for k in state["criterion"] if ".generator." in k]
    assert gen and all(k.startswith(("heads.rtd.", "heads.trtd.")) for k in state["criterion"])
    # one generator for both objectives
    assert torch.equal(state["criterion"]["heads.rtd.generator.embed_proj.weight"],
                       state["criterion"]["heads.trtd.generator.embed_proj.weight"])
    assert state["criterion"]["heads.rtd.generator.embed_proj.weight"].shape == (16, 64)  # width 64 / 4
    assert not any("generator" in k or "rtd" in k for k in state["model"])
    copy = tmp_path / "model"
    shutil.copytree(out / "model", copy)
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(copy / "model.pt")],
                                                                      arg_overrides={"data": str(copy)})
    saved = torch.load(copy / "model.pt", map_location="cpu", weights_only=True)["model"]
    loaded = models[0].state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in saved.items())
    enc = load_encoder(copy)
    feats = enc.features(enc.collate([enc.encode("Il fait beau."), enc.encode("Good morning!")]))
    assert feats.shape[0] == 2 and feats.shape[2] == 64 and torch.isfinite(feats).all()
    r = cli("inspect", copy)
    assert "rtd, trtd" in r.output and "train_trtd_acc" in r.output


def test_rtd_from_an_existing_encoder(rtd_run, data_dir, tmp_path):
    """--init: the discriminator starts from an encoder (here the rtd run's); the generator starts fresh."""
    import torch

    src, _ = rtd_run
    out = tmp_path / "init"
    dry = cli(*tiny(data_dir, out, "--tasks", "rtd", "--init", src / "model", "--max-updates", 10, "--dry-run"))
    assert "--objectives rtd" in dry.output and "--finetune-from-model" in dry.output
    cli(*tiny(data_dir, out, "--tasks", "rtd", "--init", src / "model", "--max-updates", 10, "--batch-size", 8,
              "--log-interval", 5, *END_ONLY))
    s = summary(out)
    # already trained: its first discriminator loss is that of the end of the run it came from, not of chance
    assert s["curve"][0]["rtd_loss"] < 0.8, s["curve"][0]
    state = torch.load(out / "checkpoints" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    assert state["optimizer_history"][-1]["num_updates"] == 10


def test_rtd_without_monolingual_data_exit_2(data_dir, tmp_path):
    no_mono = tmp_path / "data"
    shutil.copytree(data_dir, no_mono, ignore=shutil.ignore_patterns("mono"))
    r = cli(*tiny(no_mono, tmp_path / "out", "--tasks", "rtd", "--dry-run"), ok=False)
    assert r.exit_code == 2, r.output
    assert "--tasks rtd reads monolingual text" in r.output and "trtd" in r.output
    assert cli(*tiny(no_mono, tmp_path / "out", "--tasks", "trtd", "--dry-run")).exit_code == 0  # pairs only
    r = cli(*tiny(data_dir, tmp_path / "out2", "--arch", "seq2seq", "--tasks", "rtd", "--dry-run"), ok=False)
    assert r.exit_code == 2 and "--tasks xdae" in r.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()
