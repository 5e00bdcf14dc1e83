"""Determinism at the edges: every sampling command run twice on the same input gives the same bytes
(align's eflomal seeded through --seed, prep-vocab's SentencePiece model, prep-data --align)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import cli
from xling.align import eflomal_available

need_eflomal = pytest.mark.skipif(not eflomal_available(), reason="eflomal not installed")


def _pairs(tatoeba: Path, tmp: Path, n: int = 250) -> tuple[Path, Path]:
    src, tgt = tmp / "de.txt", tmp / "en.txt"
    for side, dest in (("de", src), ("en", tgt)):
        lines = (tatoeba / f"tatoeba.de-en.{side}").read_text(encoding="utf-8").splitlines()[:n]
        dest.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    return src, tgt


def _tree(d: Path, skip=("config.yaml",)) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name not in skip}


@need_eflomal
def test_align_twice_same_links_and_seed_changes_them(tatoeba, tmp_path):
    src, tgt = _pairs(tatoeba, tmp_path)
    outs = {}
    for name, extra in (("a", []), ("b", []), ("c", ["--seed", "2"])):
        # --n-samplers 2: the samplers of one direction draw their seeds in a fixed order
        cli("align", "--src", src, "--tgt", tgt, "--out", tmp_path / name, "--n-samplers", "2", *extra)
        outs[name] = (tmp_path / name).read_bytes()
    assert outs["a"] == outs["b"]
    assert outs["a"] != outs["c"]
    assert b"-" in outs["a"]
    res = cli("align", "--src", src, "--tgt", tgt, "--out", tmp_path / "d", "--seed", "-1", ok=None)
    assert res.exit_code == 2 and "--seed" in res.output and not (tmp_path / "d").exists()


@need_eflomal
def test_seeded_align_with_a_noexec_temporary_folder(tatoeba, tmp_path, monkeypatch):
    """The seeded sampler is a program xling writes: on a TMPDIR mounted noexec (common on shared machines) it
    failed with permission denied; it is then kept in the user's cache, once per eflomal build."""
    import os
    import subprocess
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    tmp = tmp_path / "noexec"
    tmp.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,noexec", "tmpfs", str(tmp)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        src, tgt = _pairs(tatoeba, tmp_path)
        cli("align", "--src", src, "--tgt", tgt, "--out", tmp_path / "a", "--n-samplers", "2")
        monkeypatch.setattr(tempfile, "tempdir", str(tmp))  # TMPDIR, as this process read it at its start
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        for name in ("b", "c"):
            cli("align", "--src", src, "--tgt", tgt, "--out", tmp_path / name, "--n-samplers", "2")
            assert (tmp_path / name).read_bytes() == (tmp_path / "a").read_bytes()
        assert len(list((tmp_path / "cache" / "xling").glob("eflomal-seeded-*"))) == 1 and not any(tmp.iterdir())
    finally:
        subprocess.run(["umount", str(tmp)], check=False)


@need_eflomal
def test_prep_vocab_and_prep_data_twice_same_bytes(tatoeba, tmp_path):
    src, tgt = _pairs(tatoeba, tmp_path, 600)
    trees = []
    for k in (1, 2):
        v, d = tmp_path / f"v{k}", tmp_path / f"d{k}"
        cli("prep-vocab", "-i", f"de={src}", "-i", f"en={tgt}", "--out", v, "--vocab-size", "600")
        # the data of both runs is encoded with the first vocabulary (the manifest names its folder)
        cli("prep-data", "--vocab", tmp_path / "v1", "--out", d, "--para", f"de-en={src},{tgt}", "--align",
            "--valid-size", "30")
        trees.append((_tree(v), _tree(d)))
    assert trees[0][0] == trees[1][0] and "spm.model" in trees[0][0]
    assert trees[0][1].keys() == trees[1][1].keys()
    assert [k for k in trees[0][1] if trees[0][1][k] != trees[1][1][k]] == []
    assert any(k.endswith(".align") or "align" in k for k in trees[0][1])


def test_eval_compare_twice_same_bytes(tmp_path):
    """The paired bootstrap resamples with --seed: two runs write the same file."""
    from tests.test_compare import _retrieval_run

    a = _retrieval_run(tmp_path, "a", [0, 1, 0, 3, 4, 0, 6, 7])
    b = _retrieval_run(tmp_path, "b", list(range(8)))
    for name in ("c1.json", "c2.json"):
        cli("eval", "compare", a, b, "--samples", "200", "--out", tmp_path / name)
    assert (tmp_path / "c1.json").read_bytes() == (tmp_path / "c2.json").read_bytes()
