"""Option ranges declared with the option (cli._ranges.in_range): exit 2 while parsing, one message naming the
flag, the value and the fix, nothing written; a negative --layer is named as given."""
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
