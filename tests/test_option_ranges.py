"""Counts where 0 is meaningless are refused before any model or data is read: exit 2, the option named,
nothing written (so these run in milliseconds)."""
import pytest
from typer.testing import CliRunner

from xling.cli.main import app

CASES = [
    (["eval", "xglue", "--model", "M", "--data", "D", "--tasks", "qg", "--beam", "0"], "--beam"),
    (["eval", "retrieval", "--model", "M", "--task", "tatoeba", "--data", "D", "--margin-k", "0"], "--margin-k"),
    (["eval", "retrieval", "--model", "M", "--task", "tatoeba", "--data", "D", "--batch-size", "0"], "--batch-size"),
    (["align", "--src", "S", "--tgt", "T", "--n-samplers", "0"], "--n-samplers"),
]


@pytest.mark.parametrize("args,option", CASES, ids=[c[1] for c in CASES])
def test_zero_count_is_refused_with_exit_2(args, option, tmp_path):
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert option in res.output
    assert not (tmp_path / "out").exists()
