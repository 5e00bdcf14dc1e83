"""A full disk (a real tmpfs of a few hundred KiB, mounted by the test; needs root, skipped otherwise): one
exit-2 error naming the output that did not fit and a real `df -h` folder, the user's files byte-identical,
no temporary file or folder left behind."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import cli
from xling.align import eflomal_available


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the test fills a real small disk)")
    d = tmp_path / "disk"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        (d / "mine.txt").write_bytes(b"user data\n")
        (d / "fill").write_bytes(b"\0" * 200 * 1024)  # about 100 KiB stay free
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=False)


def _check(res, disk: Path, name: str) -> None:
    assert res.exit_code == 2, res.output
    msg = " ".join(res.output.split())
    assert "no space left" in msg and name in msg and f"df -h {disk}" in msg, msg
    assert msg.count("error:") == 1
    assert (disk / "mine.txt").read_bytes() == b"user data\n"
    assert sorted(p.name for p in disk.iterdir()) == ["fill", "mine.txt"]  # nothing half-written, no temp


def _bitext(tatoeba: Path, tmp: Path, copies: int) -> tuple[Path, Path]:
    out = []
    for side in ("de", "en"):
        p = tmp / f"big.{side}"
        p.write_text((tatoeba / f"tatoeba.de-en.{side}").read_text(encoding="utf-8") * copies, encoding="utf-8")
        out.append(p)
    return out[0], out[1]


@pytest.mark.skipif(not eflomal_available(), reason="eflomal not installed")
def test_align_on_a_full_disk(small_disk, tatoeba, tmp_path):
    src, tgt = _bitext(tatoeba, tmp_path, 3)
    _check(cli("align", "--src", src, "--tgt", tgt, "--out", small_disk / "a.txt", "--length", "0.1", ok=None),
           small_disk, "a.txt")


@pytest.mark.skipif(not eflomal_available(), reason="eflomal not installed")
def test_align_with_a_full_temporary_disk(small_disk, tatoeba, tmp_path, monkeypatch):
    """eflomal's numbered text and links live in a temporary folder: a full TMPDIR names that folder (it named
    --out, which had room)."""
    import tempfile

    src, tgt = _bitext(tatoeba, tmp_path, 3)
    monkeypatch.setattr(tempfile, "tempdir", str(small_disk))
    res = cli("align", "--src", src, "--tgt", tgt, "--out", tmp_path / "a.txt", "--length", "0.1", ok=None)
    _check(res, small_disk, "xling-align-")
    assert not (tmp_path / "a.txt").exists()


def test_prep_vocab_on_a_full_disk(small_disk, tatoeba, tmp_path):
    """SentencePiece cuts its model short without an error (it said "INTERNAL" when the sample did not fit):
    either way one message, and no empty --out left."""
    src, tgt = _bitext(tatoeba, tmp_path, 1)
    _check(cli("prep-vocab", "-i", f"de={src}", "-i", f"en={tgt}", "--out", small_disk / "v", "--vocab-size", "600",
               ok=None), small_disk, "v")


def test_prep_data_on_a_full_disk(small_disk, tatoeba, tmp_path):
    """The corpus's work directory (its resume state) is removed with the failed step; the vocabulary copies
    that fitted (complete files) stay for the re-run."""
    src, tgt = _bitext(tatoeba, tmp_path, 3)
    vocab = tmp_path / "v"
    cli("prep-vocab", "-i", f"de={src}", "-i", f"en={tgt}", "--out", vocab, "--vocab-size", "600")
    (small_disk / "fill").unlink()  # the vocabulary's copies fit, the data does not
    res = cli("prep-data", "--vocab", vocab, "--out", small_disk / "d", "--para", f"de-en={src},{tgt}",
              "--valid-size", "30", ok=None)
    (small_disk / "fill").write_bytes(b"")
    leftover = sorted(p.name for p in (small_disk / "d").iterdir())
    assert leftover == ["dict.txt", "spm.model"], leftover
    for p in (small_disk / "d").iterdir():
        p.unlink()
    (small_disk / "d").rmdir()
    _check(res, small_disk, "d/para")


def test_export_hf_on_a_full_disk(small_disk, e5_dir):
    """A directory output (xling.outputs.replace_dir): the temporary folder beside --out is removed."""
    res = cli("export", "hf", e5_dir[0], "--out", small_disk / "hf", ok=None)
    _check(res, small_disk, "hf")
    # the weights' size is known: the message says it (e5-small: 117.6M parameters in fp32, the tied head once)
    needed = re.search(r"it needs about ([\d,.]+) MiB, ([\d,.]+) MiB free there", " ".join(res.output.split()))
    assert needed and 400 < float(needed.group(1).replace(",", "")) < 500 and float(needed.group(2)) < 1, res.output


def test_pretrain_on_a_full_disk(small_disk, data_dir):
    """A save that does not fit: fairseq's partial NAME.pt.tmp kept the disk full and the error was the log's tail;
    now it is removed and the error is one full-disk message naming the checkpoint (the run resumes elsewhere)."""
    from tests.conftest import tiny

    out = small_disk / "run"
    res = cli(*tiny(data_dir, out, "--max-updates", 4, "--save-interval", 2, "--log-interval", 1), ok=None)
    msg = " ".join(res.output.split())
    assert res.exit_code == 2 and msg.count("error:") == 1, msg
    assert "no space left" in msg and "checkpoint" in msg and f"df -h {out / 'checkpoints'}" in msg, msg
    assert not list(small_disk.rglob("*.tmp")) and (small_disk / "mine.txt").read_bytes() == b"user data\n"
    assert not (out / ".xling-pretrain.lock").exists()
