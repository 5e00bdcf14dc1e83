"""Outputs at the edges: a file xling did not write is never replaced without --force (single-file outputs
too), and a symlinked output is written through its target, the link left as it is (per command family)."""
from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import cli, shared_path


def _temps(*dirs: Path) -> list[str]:
    return [p.name for d in dirs for p in d.iterdir() if p.name.endswith((".tmp", ".old"))]


def _pred(tmp: Path) -> tuple[Path, Path]:
    gold = shared_path("alignment-gold", "enfr.gold")
    n = len(gold.read_text(encoding="utf-8").splitlines())
    pred = tmp / "pred.txt"
    pred.write_text("0-0\n" * n, encoding="utf-8")
    return pred, gold


def test_single_file_outputs_are_owned_and_links_written_through(tmp_path, monkeypatch):
    pred, gold = _pred(tmp_path)
    score = ["align", "score", "--pred", pred, "--gold", gold, "--gold-one-indexed", "--json"]
    mine = tmp_path / "scores.json"
    mine.write_bytes(b"my own notes\n")
    r = cli(*score, mine, ok=None)
    assert r.exit_code == 2 and "--json" in r.output and "--force" in r.output and str(mine.name) in r.output
    assert mine.read_bytes() == b"my own notes\n"
    cli(*score, mine, "--force")
    assert json.loads(mine.read_text())["pairs"] > 0
    cli(*score, mine)  # its own file: replaced without --force
    mine.write_text(mine.read_text() + " ")  # the user edits it: it is theirs now
    r = cli(*score, mine, ok=None)
    assert r.exit_code == 2 and mine.read_text().endswith(" ")

    # a link to a file in another folder: written through, the link stays a link
    (tmp_path / "elsewhere").mkdir()
    target = tmp_path / "elsewhere" / "real.json"
    link = tmp_path / "link.json"
    link.symlink_to(target)
    for _ in range(2):  # the second run replaces its own file through the link
        cli(*score, link)
        assert link.is_symlink() and json.loads(target.read_text())["pairs"] > 0
    target.write_bytes(b"theirs")
    r = cli(*score, link, ok=None)
    assert r.exit_code == 2 and target.read_bytes() == b"theirs" and link.is_symlink()
    assert _temps(tmp_path, tmp_path / "elsewhere") == []

    # eval compare's default --out in the working directory
    from tests.test_compare import _retrieval_run

    a = _retrieval_run(tmp_path, "a", [0, 1, 0, 3])
    b = _retrieval_run(tmp_path, "b", [0, 1, 2, 3])
    monkeypatch.chdir(tmp_path)
    Path("compare.json").write_bytes(b"{}")
    r = cli("eval", "compare", a, b, "--samples", "50", ok=None)
    assert r.exit_code == 2 and "compare.json" in r.output and Path("compare.json").read_bytes() == b"{}"
    cli("eval", "compare", a, b, "--samples", "50", "--force")
    cli("eval", "compare", a, b, "--samples", "50")
    assert json.loads(Path("compare.json").read_text())["rows"]


def test_directory_outputs_through_a_link(tmp_path, e5_dir, tatoeba):
    """eval retrieval and export hf (xling.outputs.replace_dir): the target is replaced, the link is not; a
    user's file in the target stays where it was; nothing hidden is left beside either."""
    e5 = e5_dir[0]
    src, tgt = tmp_path / "de.txt", tmp_path / "en.txt"
    src.write_text("".join((tatoeba / "tatoeba.de-en.de").read_text(encoding="utf-8").splitlines(True)[:20]))
    tgt.write_text("".join((tatoeba / "tatoeba.de-en.en").read_text(encoding="utf-8").splitlines(True)[:20]))
    (tmp_path / "t").mkdir()
    ret = ["eval", "retrieval", "--model", e5, "--bitext", f"{src},{tgt}", "--max-sentences"]
    for name, cmd, runs in (("ret", ret, (["10"], ["12"])), ("hf", ["export", "hf", e5], ([], ["--force"]))):
        target = tmp_path / "t" / name
        target.mkdir()
        link = tmp_path / f"{name}-link"
        link.symlink_to(target)
        for extra in runs[:-1]:  # a new output
            cli(*cmd, *extra, "--out", link)
            assert link.is_symlink() and Path(link.resolve()) == target.resolve()
            assert any(target.iterdir())
        (target / "notes.txt").write_text("keep")
        cli(*cmd, *runs[-1], "--out", link)  # its replacement
        assert (target / "notes.txt").read_text() == "keep" and link.is_symlink()
        assert _temps(tmp_path, tmp_path / "t") == []


def test_prep_and_align_outputs_through_a_link(tmp_path, tatoeba):
    """prep-vocab / prep-data (folders written in place) and align --out (a file written atomically): through a
    link to another folder, the link left as it is."""
    from xling.align import eflomal_available

    for s in ("de", "en"):
        text = (tatoeba / f"tatoeba.de-en.{s}").read_text(encoding="utf-8").splitlines(True)[:200]
        (tmp_path / f"x.{s}").write_text("".join(text), encoding="utf-8")
    de, en = tmp_path / "x.de", tmp_path / "x.en"
    (tmp_path / "t" / "v").mkdir(parents=True)
    (tmp_path / "t" / "d").mkdir()
    for name in ("v", "d"):
        (tmp_path / f"{name}-link").symlink_to(tmp_path / "t" / name)
    cli("prep-vocab", "-i", f"de={de}", "-i", f"en={en}", "--out", tmp_path / "v-link", "--vocab-size", "500")
    cli("prep-data", "--vocab", tmp_path / "v-link", "--out", tmp_path / "d-link", "--para", f"de-en={de},{en}",
        "--valid-size", "20")
    assert (tmp_path / "t" / "v" / "spm.model").is_file() and (tmp_path / "t" / "d" / "manifest.json").is_file()
    assert (tmp_path / "v-link").is_symlink() and (tmp_path / "d-link").is_symlink()
    if eflomal_available():
        (tmp_path / "a-link").symlink_to(tmp_path / "t" / "a.txt")
        for extra in ([], ["--force"]):
            cli("align", "--src", de, "--tgt", en, "--out", tmp_path / "a-link", "--length", "0.2", *extra)
            assert (tmp_path / "a-link").is_symlink() and (tmp_path / "t" / "a.txt").stat().st_size > 0
    assert _temps(tmp_path, tmp_path / "t") == []
