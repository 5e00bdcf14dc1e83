"""Stale outputs: what a re-run no longer produces is removed (only files xling listed as its own); a failed
run leaves no empty --out."""
from __future__ import annotations

from pathlib import Path

from tests.conftest import cli


def _small(tatoeba: Path, tmp: Path, lang: str, n: int = 200) -> tuple[Path, Path]:
    out = []
    for side in (lang, "en"):
        p = tmp / f"{lang}-en.{side}"
        p.write_text("".join((tatoeba / f"tatoeba.{lang}-en.{side}").read_text(encoding="utf-8").splitlines(True)[:n]),
                     encoding="utf-8")
        out.append(p)
    return out[0], out[1]


def test_prep_data_force_with_fewer_languages_removes_the_dropped_ones(tatoeba, tmp_path):
    de, de_en = _small(tatoeba, tmp_path, "de")
    fr, fr_en = _small(tatoeba, tmp_path, "fr")
    vocab, data = tmp_path / "v", tmp_path / "d"
    cli("prep-vocab", "-i", f"de={de}", "-i", f"fr={fr}", "-i", f"en={de_en}", "--out", vocab, "--vocab-size", "500")
    cli("prep-data", "--vocab", vocab, "--out", data, "--para", f"de-en={de},{de_en}", "--para", f"fr-en={fr},{fr_en}",
        "--valid-size", "20")
    assert list((data / "para").glob("*fr-en*"))
    (data / "para" / "my-notes.fr-en.txt").write_text("mine")  # a user's file among the data: kept
    cli("prep-data", "--vocab", vocab, "--out", data, "--para", f"de-en={de},{de_en}", "--valid-size", "20", "--force")
    assert [p.name for p in (data / "para").glob("*fr-en*")] == ["my-notes.fr-en.txt"]
    assert list((data / "para").glob("train.de-en.de.*")) and "_replaced" not in (data / "manifest.json").read_text()


def test_failed_prep_vocab_leaves_no_empty_out(tatoeba, tmp_path):
    de, en = _small(tatoeba, tmp_path, "de", 60)
    r = cli("prep-vocab", "-i", f"de={de}", "--out", tmp_path / "v", "--vocab-size", "100", ok=None)
    assert r.exit_code == 2 and "more than 100 sampled sentences" in r.output and not (tmp_path / "v").exists()
    de, en = _small(tatoeba, tmp_path, "de", 200)
    r = cli("prep-vocab", "-i", f"de={de}", "-i", f"en={en}", "--out", tmp_path / "v", "--vocab-size", "90000",
            ok=None)
    assert r.exit_code == 2 and "--vocab-size" in r.output and not (tmp_path / "v").exists()


def test_a_part_with_another_vocabulary_is_refused(tatoeba, tmp_path):
    de, en = _small(tatoeba, tmp_path, "de")
    v1, v2, data = tmp_path / "v1", tmp_path / "v2", tmp_path / "d"
    for v, size in ((v1, "500"), (v2, "400")):
        cli("prep-vocab", "-i", f"de={de}", "-i", f"en={en}", "--out", v, "--vocab-size", size)
    para = ["--para", f"de-en={de},{en}", "--valid-size", "20", "--out", data]
    cli("prep-data", "--vocab", v1, *para, "--shard", "0/2")
    spm = (data / "spm.model").read_bytes()
    r = cli("prep-data", "--vocab", v2, *para, "--shard", "1/2", ok=None)
    assert r.exit_code == 2 and "part0.json" in r.output and "another vocabulary" in r.output
    assert (data / "spm.model").read_bytes() == spm and not (data / "parts" / "part1.json").exists()
