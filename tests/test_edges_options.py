"""Option ranges declared with the option (cli._ranges.in_range): exit 2 while parsing, one message naming the
flag, the value and the fix, nothing written; a negative --layer is named as given; input messages name the
line (a blank line in a retrieval bitext)."""
from __future__ import annotations

import pytest

from tests.conftest import cli

CASES = [
    (["eval", "compare", "A", "B", "--alpha", "1.5"], "--alpha 1.5", "--alpha 0.05"),
    (["eval", "compare", "A", "B", "--alpha", "0"], "--alpha 0", "--alpha 0.05"),
    (["eval", "compare", "A", "B", "--samples", "0"], "--samples 0", "--samples 1000"),
    (["eval", "compare", "A", "B", "--layer-a", "-2"], "--layer-a -2", "--layer-a 12"),
    (["eval", "retrieval", "--model", "M", "--bitext", "a,b", "--max-sentences", "0"], "--max-sentences 0",
     "leave it out"),
    (["align", "--src", "S", "--tgt", "T", "--seed", "-1"], "--seed -1", "--seed 1"),
    (["align", "--src", "S", "--tgt", "T", "--model", "4"], "--model 4", "3 (+fertility)"),
    (["eval", "xglue", "--model", "M", "--data", "D", "--tasks", "pos", "--seeds", "100000"], "--seeds 100000",
     "--seeds 3"),
]


@pytest.mark.parametrize("args,named,fix", CASES, ids=[c[1] for c in CASES])
def test_out_of_range_is_refused_naming_flag_value_and_fix(args, named, fix, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = cli(*args, "--out", tmp_path / "out", ok=None)
    msg = " ".join(res.output.replace("│", " ").split())
    assert res.exit_code == 2 and named in msg and "fix:" in msg and fix in msg, msg
    assert list(tmp_path.iterdir()) == []


def test_a_negative_layer_is_named_as_given(tmp_path, e5_dir):
    (tmp_path / "a.txt").write_text("eins\nzwei\n")
    (tmp_path / "b.txt").write_text("one\ntwo\n")
    bitext = f"{tmp_path}/a.txt,{tmp_path}/b.txt"
    r = cli("eval", "retrieval", "--model", e5_dir[0], "--bitext", bitext, "--layer", "-20", "--out", tmp_path / "o",
            ok=None)
    assert r.exit_code == 2 and "--layer -20 does not exist" in r.output and "-1..-13" in r.output
    assert not (tmp_path / "o").exists()
    (tmp_path / "b.txt").write_text("one\n\n")
    r = cli("eval", "retrieval", "--model", e5_dir[0], "--bitext", bitext, "--out", tmp_path / "o", ok=None)
    assert r.exit_code == 2 and "blank line in a bitext" in r.output and "b.txt:2" in r.output.replace("\n", "")
    assert not (tmp_path / "o").exists()


def test_prediction_files_name_the_line(tmp_path):
    from tests.conftest import shared_path

    gold = shared_path("xglue-real", "POS", "en.test")
    (tmp_path / "POS").mkdir()
    pred = tmp_path / "POS" / "en.prediction"
    lines = [(ln.split() or [""])[-1] for ln in gold.read_text(encoding="utf-8").splitlines()]
    lines[4] = "BOGUS"
    pred.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    args = ["eval", "score", "--pred", tmp_path, "--gold", gold.parents[1], "--tasks", "pos"]
    r = cli(*args, ok=None)
    assert r.exit_code == 2 and "en.prediction:5: label(s) BOGUS" in r.output.replace("\n", "")
    pred.write_bytes(b"NOUN\n\xff\n")
    r = cli(*args, ok=None)
    assert r.exit_code == 2 and "en.prediction:2: invalid UTF-8" in r.output.replace("\n", "")
