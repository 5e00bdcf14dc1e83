"""Bad input for `xling align` and `xling align score`: exit 2, file/line in the message, no output."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from xling.align import encode
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


@pytest.fixture(params=[False, True], ids=["one-process", "two-processes"])
def numbering(request, monkeypatch):
    """Both ways of numbering: this process alone, or a second process for the target side (which reads
    the same input: the error must still be the one message)."""
    monkeypatch.setattr(encode, "PARALLEL_MIN_BYTES", 0 if request.param else 1 << 60)


def test_malformed_separator_line(tmp_path, numbering):
    (tmp_path / "in").write_text("a b ||| x y\nc d x y\ne ||| f\n", encoding="utf-8")
    out = tmp_path / "o.al"
    r = _run("align", "--input", tmp_path / "in", "--out", out)
    _assert_fails(r, tmp_path, "in:2", "|||", created=[out])
    (tmp_path / "in").write_text("a b ||| x y\ne ||| f ||| g\n", encoding="utf-8")
    r = _run("align", "--input", tmp_path / "in", "--out", out)
    _assert_fails(r, tmp_path, "in:2", created=[out])


def test_non_utf8(tmp_path, numbering):
    (tmp_path / "s").write_bytes("ok\ncaf\xe9\n".encode("latin-1"))
    (tmp_path / "t").write_text("ok\ncafe\n", encoding="utf-8")
    out = tmp_path / "o.al"
    r = _run("align", "--src", tmp_path / "s", "--tgt", tmp_path / "t", "--out", out)
    _assert_fails(r, tmp_path, "s:2", "UTF-8", created=[out])
    (tmp_path / "s").write_text("ok\ncafe\n", encoding="utf-8")  # the side the second process numbers
    (tmp_path / "t").write_bytes("ok\ncaf\xe9\n".encode("latin-1"))
    r = _run("align", "--src", tmp_path / "s", "--tgt", tmp_path / "t", "--out", out)
    _assert_fails(r, tmp_path, "t:2", "UTF-8", created=[out])


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


def test_out_that_is_a_directory_or_under_a_file(tmp_path):
    (tmp_path / "in").write_text("a b ||| x y\n", encoding="utf-8")
    d = tmp_path / "outdir"
    d.mkdir()
    r = _run("align", "--input", tmp_path / "in", "--out", d)
    _assert_fails(r, tmp_path, "is a directory", "fix:")
    assert list(d.iterdir()) == []
    (tmp_path / "afile").write_text("keep\n")
    r = _run("align", "--input", tmp_path / "in", "--out", tmp_path / "afile" / "o.al")
    _assert_fails(r, tmp_path, "is a file, not a directory")
    assert (tmp_path / "afile").read_text() == "keep\n"


def test_existing_out_not_written_by_xling_is_kept(tmp_path):
    (tmp_path / "in").write_text("a b ||| x y\n", encoding="utf-8")
    mine = tmp_path / "mine.txt"
    mine.write_text("precious\n", encoding="utf-8")
    r = _run("align", "--input", tmp_path / "in", "--out", mine)
    _assert_fails(r, tmp_path, "not written by `xling align`", "--force")
    assert mine.read_text(encoding="utf-8") == "precious\n"
    assert not (tmp_path / "mine.txt.json").exists()


def test_bad_option_values(tmp_path):
    (tmp_path / "in").write_text("a b ||| x y\n", encoding="utf-8")
    out = tmp_path / "o.al"
    for extra, needle in ((["--fast", "--accurate"], "exclude"), (["--length", "0"], "--length"),
                          (["--n-samplers", "0"], "--n-samplers"), (["--tokenizer", "moses"], "whitespace"),
                          (["--model", "4"], "IBM1"), (["--priors", tmp_path / "nope"], "priors")):
        r = _run("align", "--input", tmp_path / "in", "--out", out, *extra)
        _assert_fails(r, tmp_path, needle, created=[out])


def test_missing_eflomal_names_this_python(tmp_path, monkeypatch):
    import sys

    import xling.align.eflomal as ef

    monkeypatch.setattr(ef, "find_spec", lambda name: None)
    (tmp_path / "in").write_text("a b ||| x y\n", encoding="utf-8")
    out = tmp_path / "o.al"
    r = _run("align", "--input", tmp_path / "in", "--out", out)
    _assert_fails(r, tmp_path, "eflomal is not installed", f"{sys.executable} -m pip install", created=[out])


def test_score_json_is_a_directory(tmp_path):
    (tmp_path / "p").write_text("0-0\n", encoding="utf-8")
    (tmp_path / "g").write_text("0-0\n", encoding="utf-8")
    (tmp_path / "j").mkdir()
    r = _run("align", "score", "--pred", tmp_path / "p", "--gold", tmp_path / "g", "--json", tmp_path / "j")
    _assert_fails(r, tmp_path, "--json is a directory")


def test_score_warns_when_gold_looks_one_indexed(tmp_path):
    gold = "".join(f"{k + 1}-{k + 1} {k + 2}p{k + 1}\n" for k in range(12))
    pred = "".join(f"{k}-{k}\n" for k in range(12))
    r, js = _score(tmp_path, pred, gold)
    assert r.exit_code == 0 and "look 1-based" in r.output and "--gold-one-indexed" in r.output
    import json
    assert json.loads(js.read_text())["warnings"]
    r, js = _score(tmp_path, pred, gold, "--gold-one-indexed")
    assert r.exit_code == 0 and "1-based" not in r.output
    r, js = _score(tmp_path, pred, "".join(f"{k}-{k}\n" for k in range(12)))
    assert r.exit_code == 0 and "1-based" not in r.output
