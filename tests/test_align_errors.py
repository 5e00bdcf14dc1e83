"""Bad input for `xling align` and `xling align score`: exit 2, file/line in the message, no output."""
from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from xling.cli.main import app

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def _assert_fails(r, tmp: Path, *needles, created=()):
    assert r.exit_code == 2, r.output
    for n in needles:
        assert n in r.output, (n, r.output)
    for c in created:
        assert not c.exists()
    assert not [p for p in tmp.iterdir() if p.name.endswith(".tmp")]


def test_line_count_mismatch(tmp_path):
    (tmp_path / "s").write_text("a b\nc d\ne f\n", encoding="utf-8")
    (tmp_path / "t").write_text("x y\nz w\n", encoding="utf-8")
    out = tmp_path / "o.al"
    r = _run("align", "--src", tmp_path / "s", "--tgt", tmp_path / "t", "--out", out)
    _assert_fails(r, tmp_path, "3 lines", "2 lines", created=[out])


def test_malformed_separator_line(tmp_path):
    (tmp_path / "in").write_text("a b ||| x y\nc d x y\ne ||| f\n", encoding="utf-8")
    out = tmp_path / "o.al"
    r = _run("align", "--input", tmp_path / "in", "--out", out)
    _assert_fails(r, tmp_path, "in:2", "|||", created=[out])
    (tmp_path / "in").write_text("a b ||| x y\ne ||| f ||| g\n", encoding="utf-8")
    r = _run("align", "--input", tmp_path / "in", "--out", out)
    _assert_fails(r, tmp_path, "in:2", created=[out])


def test_non_utf8(tmp_path):
    (tmp_path / "s").write_bytes("ok\ncaf\xe9\n".encode("latin-1"))
    (tmp_path / "t").write_text("ok\ncafe\n", encoding="utf-8")
    out = tmp_path / "o.al"
    r = _run("align", "--src", tmp_path / "s", "--tgt", tmp_path / "t", "--out", out)
    _assert_fails(r, tmp_path, "s:2", "UTF-8", created=[out])


def test_unknown_sym_and_missing_input(tmp_path):
    (tmp_path / "in").write_text("a ||| b\n", encoding="utf-8")
    out = tmp_path / "o.al"
    r = _run("align", "--input", tmp_path / "in", "--out", out, "--sym", "diag")
    _assert_fails(r, tmp_path, "grow-diag-final-and", created=[out])
    r = _run("align", "--out", out)
    _assert_fails(r, tmp_path, "--src", created=[out])


def _score(tmp, pred, gold, *extra):
    (tmp / "p").write_text(pred, encoding="utf-8")
    (tmp / "g").write_text(gold, encoding="utf-8")
    js = tmp / "s.json"
    return _run("align", "score", "--pred", tmp / "p", "--gold", tmp / "g", "--json", js, *extra), js


def test_score_known_numbers(tmp_path):
    # sure {0-0, 1-1}, possible adds 2-1; prediction 0-0 2-1 1-0
    r, js = _score(tmp_path, "0-0 2-1 1-0\n\n", "1-1 2-2 3p2\n\n", "--gold-one-indexed")
    assert r.exit_code == 0, r.output
    import json
    res = json.loads(js.read_text())
    assert abs(res["precision"] - 2 / 3) < 1e-9 and abs(res["recall"] - 1 / 2) < 1e-9
    assert abs(res["aer"] - (1 - (1 + 2) / (3 + 2))) < 1e-9
    assert "AER" in r.output and "0.4000" in r.output


def test_score_line_count_mismatch(tmp_path):
    r, js = _score(tmp_path, "0-0\n1-1\n", "0-0\n")
    _assert_fails(r, tmp_path, "2 lines", "1 lines", created=[js])


def test_score_malformed_link(tmp_path):
    r, js = _score(tmp_path, "0-0\n1_1\n", "0-0\n1-1\n")
    _assert_fails(r, tmp_path, "p:2", "1_1", created=[js])


def test_score_out_of_range(tmp_path):
    (tmp_path / "text").write_text("a b ||| x y\nc ||| z\n", encoding="utf-8")
    r, js = _score(tmp_path, "0-0 1-1\n0-0\n", "1-1 2-2\n1-3\n", "--gold-one-indexed", "--text", tmp_path / "text")
    _assert_fails(r, tmp_path, "g:2", "out of range", created=[js])
    r, js = _score(tmp_path, "0-0 1-1\n0-5\n", "1-1 2-2\n1-1\n", "--gold-one-indexed", "--text", tmp_path / "text")
    _assert_fails(r, tmp_path, "p:2", "out of range", created=[js])
    # a 0 index cannot be 1-indexed
    r, js = _score(tmp_path, "0-0\n", "0-0\n", "--gold-one-indexed")
    _assert_fails(r, tmp_path, "g:1", "index 0", created=[js])
