"""Faults and careless use (issue 19), through the CLI: outputs xling did not write are never deleted or
overwritten, OS errors are one exit-2 message naming the file and the fix, counts are checked, outputs
follow the umask. Pretraining runs (identity, lock, signals) are in test_faults_pretrain.py."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
from pathlib import Path

import pytest

from conftest import cli

TEMP = re.compile(r"(^\..+\.tmp$)|(\.old$)")


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file below ``root`` (hidden ones too)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def temp_files(root: Path) -> list[str]:
    return [str(Path(d) / n) for d, dirs, files in os.walk(root) for n in files + dirs if TEMP.search(n)]


def refused(res, *words):
    """An exit-2 refusal whose message names every word."""
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    text = " ".join(res.output.split())
    for w in words:
        assert w in text, (w, res.output)
    assert "Traceback" not in res.output
    return text


# ---------------------------------------------------------------- atomic_dir keeps what xling did not write

def test_atomic_dir_keeps_foreign_files_and_refuses_clashes(tmp_path):
    from xling.errors import XlingError
    from xling.io import atomic_dir

    out = tmp_path / "o"
    with atomic_dir(out, command="t") as tmp:
        (tmp / "a.txt").write_text("v1")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.txt").write_text("v1")
    (out / "README.md").write_text("the user's notes")
    (out / "sub" / "mine.txt").write_text("mine too")
    with atomic_dir(out, command="t") as tmp:  # a re-run replaces only its own files
        (tmp / "a.txt").write_text("v2")
    assert (out / "a.txt").read_text() == "v2" and not (out / "sub" / "b.txt").exists()
    assert (out / "README.md").read_text() == "the user's notes" and (out / "sub" / "mine.txt").read_text() == "mine too"
    # a file of xling's that the user edited is theirs now: a clash is refused, nothing changes
    (out / "a.txt").write_text("edited by the user")
    before = snapshot(out)
    with pytest.raises(XlingError, match="a.txt"):
        with atomic_dir(out, command="t") as tmp:
            (tmp / "a.txt").write_text("v3")
    assert snapshot(out) == before and not temp_files(tmp_path)
    with atomic_dir(out, command="t", force=True) as tmp:  # --force replaces the clash, keeps the rest
        (tmp / "a.txt").write_text("v3")
    assert (out / "a.txt").read_text() == "v3" and (out / "README.md").exists()
    # a failing body changes nothing
    before = snapshot(out)
    with pytest.raises(RuntimeError):
        with atomic_dir(out, command="t") as tmp:
            (tmp / "a.txt").write_text("v4")
            raise RuntimeError("boom")
    assert snapshot(out) == before and not temp_files(tmp_path)
    # an existing file is never hidden or replaced by a directory
    f = tmp_path / "file"
    f.write_text("keep")
    with pytest.raises(XlingError, match="existing file"):
        with atomic_dir(f) as tmp:
            pass
    assert f.read_text() == "keep" and sorted(p.name for p in tmp_path.iterdir()) == ["file", "o"]


def test_atomic_path_on_a_directory_and_long_names(tmp_path):
    from xling.errors import XlingError
    from xling.io import write_json_atomic

    d = tmp_path / "d"
    d.mkdir()
    with pytest.raises(XlingError, match="is a directory"):
        write_json_atomic(d, {"a": 1})
    name = "n" * 250 + ".json"  # fits the 255-byte limit; the temp name beside it must too
    write_json_atomic(tmp_path / name, {"a": 1})
    assert json.loads((tmp_path / name).read_text()) == {"a": 1} and not temp_files(tmp_path)


# ---------------------------------------------------------------- OS errors: one exit-2 message

@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny random fairseq XLM-R-layout model directory (2 layers, 32 wide) over a real 400-piece vocabulary."""
    import io

    import sentencepiece as spm
    import torch

    from conftest import shared_path
    from xling.convert import layout
    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    from fairseq import tasks

    t = shared_path("tatoeba")
    lines = [ln for f in ("tatoeba.fr-en.en", "tatoeba.fr-en.fr") for ln in (t / f).read_text().splitlines()[:400]]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=buf, vocab_size=400,
                                   model_type="unigram", character_coverage=1.0, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    pieces = [sp.IdToPiece(i) for i in range(3, sp.GetPieceSize())]
    dims = layout.Dims(layers=2, hidden=32, heads=4, ffn=64, max_positions=64)
    root = tmp_path_factory.mktemp("faults_model")
    (root / "scratch").mkdir()
    layout.write_dict(root / "scratch" / "dict.txt", pieces)
    args = layout.fairseq_args(dims, root / "scratch")
    torch.manual_seed(1)
    sd = {k: v for k, v in tasks.setup_task(args).build_model(args).state_dict().items() if not k.endswith("version")}
    sd["encoder.lm_head.weight"] = sd["encoder.sentence_encoder.embed_tokens.weight"]
    out = root / "model"
    out.mkdir()
    layout.write_model_dir(out, sd, dims, pieces, buf.getvalue())
    return out


def test_inspect_json_output_errors(model_dir, tmp_path):
    d = tmp_path / "adir"
    d.mkdir()
    refused(cli("inspect", model_dir, "--json", d, ok=None), "--json is a directory", str(d), "fix:")
    f = tmp_path / "afile"
    f.write_text("x")
    refused(cli("inspect", model_dir, "--json", f / "r.json", ok=None), "is a file, not a directory", "fix:")
    assert f.read_text() == "x"
    # permission denied (sysfs refuses even root)
    refused(cli("inspect", model_dir, "--json", "/sys/xling-report.json", ok=None), "permission denied",
            "/sys/xling-report.json", "fix:")
    # a name over 255 bytes
    long = tmp_path / ("r" * 300 + ".json")
    refused(cli("inspect", model_dir, "--json", long, ok=None), "file name too long", "fix:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "afile"]


def test_full_disk_is_exit_2_and_leaves_no_temp_file(model_dir, tmp_path, monkeypatch):
    real = Path.write_text

    def full(self, *a, **k):
        if self.name.endswith(".tmp"):
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", full)
    out = tmp_path / "r.json"
    text = refused(cli("inspect", model_dir, "--json", out, ok=None), "no space left on the device", "fix:", "df -h")
    assert "what this step had written was removed" in text
    assert list(tmp_path.iterdir()) == []


def test_corrupt_checkpoints_are_exit_2(model_dir, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    raw = (bad / "model.pt").read_bytes()
    (bad / "model.pt").write_bytes(raw[: len(raw) // 2])
    refused(cli("inspect", bad, ok=None), "truncated or corrupt", str(bad / "model.pt"), "fix:")
    (bad / "model.pt").write_bytes(b"not a checkpoint at all")
    refused(cli("inspect", bad / "model.pt", ok=None), "truncated or corrupt", "fix:")


# ---------------------------------------------------------------- export hf: the user's files survive

def test_export_hf_keeps_user_files_and_refuses_another_model(model_dir, tmp_path):
    import shutil

    import torch

    hf = tmp_path / "hf"
    cli("export", "hf", model_dir, "--out", hf)
    (hf / "README.md").write_text("# my model card\n")
    # the same model, retrained: re-exported into the same directory, the card stays
    m2 = tmp_path / "model2"
    shutil.copytree(model_dir, m2)
    st = torch.load(m2 / "model.pt", weights_only=False)
    k = next(k for k in st["model"] if k.endswith("embed_tokens.weight"))
    st["model"][k] = st["model"][k] + 1.0
    torch.save(st, model_dir.parent / "retrained.pt")
    shutil.copyfile(model_dir.parent / "retrained.pt", m2 / "model.pt")
    # another model into this export: refused, every file byte-identical
    before = snapshot(hf)
    refused(cli("export", "hf", m2, "--out", hf, ok=None), "another source", "--force")
    assert snapshot(hf) == before and not temp_files(tmp_path)
    # with --force it is replaced, and the user's README.md is still kept
    cli("export", "hf", m2, "--out", hf, "--force")
    assert (hf / "README.md").read_text() == "# my model card\n"
    assert json.loads((hf / "xling_convert.json").read_text())["source"] == str(m2)
    # --out inside the model directory, or an existing file
    refused(cli("export", "hf", m2, "--out", m2 / "hf", ok=None), "inside the model directory")
    f = tmp_path / "file.txt"
    f.write_text("keep")
    refused(cli("export", "hf", m2, "--out", f, ok=None), "existing file")
    assert f.read_text() == "keep" and not (m2 / "hf").exists() and not temp_files(tmp_path)
    # a non-empty directory xling did not write
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("n")
    refused(cli("export", "hf", m2, "--out", mine, ok=None), "xling did not write it", "notes.txt")
    assert snapshot(mine) == {"notes.txt": hashlib.sha256(b"n").hexdigest()}


# ---------------------------------------------------------------- umask

@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_outputs_follow_the_umask(model_dir, tmp_path, mask):
    old = os.umask(mask)
    try:
        cli("inspect", model_dir, "--json", tmp_path / "r.json")
        from xling.io import atomic_dir

        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "f").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o777 & ~mask


# ---------------------------------------------------------------- demo, prep: checked before work

def test_demo_out_file_refused_before_downloading(tmp_path, monkeypatch):
    import xling.demo

    def no_download(*a, **k):
        raise AssertionError("downloaded before checking --out")

    monkeypatch.setattr(xling.demo, "fetch_wheel", no_download)
    f = tmp_path / "demo.txt"
    f.write_text("keep")
    refused(cli("demo", "--out", f, "--cache", tmp_path / "cache", ok=None), "existing file", str(f))
    refused(cli("demo", "--out", tmp_path / "d", "--updates", 0, ok=None), "--updates must be at least 1")
    assert f.read_text() == "keep" and not (tmp_path / "cache").exists()


def test_prep_counts_and_unknown_language_warning(tmp_path):
    from conftest import shared_path

    t = shared_path("tatoeba")
    refused(cli("prep-vocab", "-i", f"en={t / 'tatoeba.fr-en.en'}", "--out", tmp_path / "v", "--threads", 0, ok=None),
            "--threads must be at least 1")
    assert not (tmp_path / "v").exists()
    en = tmp_path / "en.txt"
    en.write_text("".join(t.joinpath("tatoeba.fr-en.en").read_text(encoding="utf-8").splitlines(True)[:300]))
    fr = tmp_path / "fr.txt"
    fr.write_text("".join(t.joinpath("tatoeba.fr-en.fr").read_text(encoding="utf-8").splitlines(True)[:300]))
    cli("prep-vocab", "-i", f"en={en}", "--out", tmp_path / "v", "--vocab-size", 600)
    refused(cli("prep-data", "--vocab", tmp_path / "v", "--mono", f"en={en}", "--out", tmp_path / "d",
                "--threads", 0, ok=None), "--threads must be at least 1")
    r = cli("prep-data", "--vocab", tmp_path / "v", "--mono", f"en={en}", "--mono", f"fr={fr}", "--valid-size", 10,
            "--out", tmp_path / "d")
    text = " ".join(r.output.split())
    assert "warning: fr not among the vocabulary's training languages (en" in text


def test_prep_vocab_keeps_a_users_dict_and_region_pairs_need_underscores(tmp_path):
    from conftest import shared_path

    t = shared_path("tatoeba")
    en = tmp_path / "en.txt"
    en.write_text("".join(t.joinpath("tatoeba.fr-en.en").read_text(encoding="utf-8").splitlines(True)[:300]))
    v = tmp_path / "v"
    v.mkdir()
    (v / "dict.txt").write_text("my own dictionary 1\n")
    before = snapshot(v)
    refused(cli("prep-vocab", "-i", f"en={en}", "--out", v, "--vocab-size", 600, ok=None),
            "dict.txt that `xling prep-vocab` did not write", "--force")
    assert snapshot(v) == before and not temp_files(v)
    # pt-BR-en would be read as pt + BR-en (Breton with region EN): refused with the spelling that works
    refused(cli("prep-data", "--vocab", v, "--para", f"pt-BR-en={en},{en}", "--out", tmp_path / "d", ok=None),
            "'pt-BR-en'", "fix: write the subtags with '_': --para pt_BR-en=")
    assert not (tmp_path / "d").exists()
