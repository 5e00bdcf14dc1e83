"""`xling eval xglue` never deletes what it did not write (issue 19): one folder per task, the aggregate
over what the output directory holds, refused --out values (exit 2, file and fix named, user files
byte-identical); truncated POS words are tagged; fixed off-target identifier; no log noise."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import SHARED, cli, shared_path

FAST = ["--recipe", "quick", "--epochs", "1", "--max-train-examples", "40", "--max-eval-examples", "20"]


def _data(root: Path) -> Path:
    """POS (40 real English sentences a split) and a small NER task from the same words (capitalised
    words B-PER, others O), in the official layout."""
    pos = shared_path("xglue-real", "POS")
    for split, src in (("train", "en.train"), ("dev", "en.dev"), ("test", "en.test")):
        blocks = (pos / src).read_text(encoding="utf-8").split("\n\n")[:40]
        text = "\n\n".join(blocks) + "\n\n"
        (root / "POS").mkdir(parents=True, exist_ok=True)
        (root / "POS" / f"en.{split}").write_text(text, encoding="utf-8")
        ner = "\n".join(f"{ln.split()[0]} {'B-PER' if ln.split()[0][:1].isupper() else 'O'}" if ln.strip() else ""
                        for ln in text.split("\n"))
        (root / "NER").mkdir(exist_ok=True)
        (root / "NER" / f"en.{split}").write_text(ner, encoding="utf-8")
    return root


def _tree(d: Path) -> dict:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_out_directory_ownership(tiny_model, tmp_path):  # noqa: F811
    data = _data(tmp_path / "data")
    before_model, before_data = _tree(tiny_model), _tree(data)
    base = ["eval", "xglue", "--model", tiny_model, "--data", data, *FAST]
    # an existing file, the model's and the data's own directories: refused, nothing changed
    f = tmp_path / "notes.txt"
    f.write_text("mine\n")
    for out, words in ((f, "existing file"), (tiny_model, "inside the model directory"),
                       (data / "POS", "inside the data directory")):
        res = cli(*base, "--tasks", "pos", "--out", out, ok=None)
        assert res.exit_code == 2 and words in res.output and str(out) in res.output and "fix:" in res.output
    assert f.read_text() == "mine\n" and _tree(tiny_model) == before_model and _tree(data) == before_data
    # a foreign non-empty directory: refused, then --force writes beside the user's files
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.md").write_text("user notes\n")
    res = cli(*base, "--tasks", "pos", "--out", out, ok=None)
    assert res.exit_code == 2 and "not empty" in res.output and "--force" in res.output
    assert sorted(p.name for p in out.iterdir()) == ["keep.md"]
    # the first run as a separate process: no fairseq INFO / matplotlib DEBUG lines
    run = subprocess.run([sys.executable, "-m", "xling.cli.main", *map(str, base), "--tasks", "pos", "--out", out,
                          "--force"], capture_output=True, text=True, env={"OMP_NUM_THREADS": "1",
                                                                          "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert not [ln for ln in (run.stdout + run.stderr).splitlines() if "INFO" in ln or "DEBUG" in ln]
    assert (out / "keep.md").read_text() == "user notes\n"
    pos_files = _tree(out / "POS")
    # a user's file inside a task folder survives a re-run of that task
    (out / "POS" / "mine.txt").write_text("x\n")
    # another task adds to the directory; results.json aggregates both
    cli(*base, "--tasks", "ner", "--out", out)
    r = json.loads((out / "results.json").read_text())
    assert set(r["tasks"]) == {"pos", "ner"} and "tasks:ner,pos" in r["signature"]
    assert _tree(out / "POS") == {**pos_files, "mine.txt": b"x\n"}
    assert (out / "keep.md").read_text() == "user notes\n"
    # same evaluation again: up to date; pos re-run with other settings replaces only xling's POS files
    assert "up to date" in cli(*base, "--tasks", "pos,ner", "--out", out).output
    cli(*base[:-8], "--recipe", "quick", "--epochs", "2", "--max-train-examples", "40", "--max-eval-examples", "20",
        "--tasks", "pos", "--out", out)
    assert (out / "POS" / "mine.txt").read_text() == "x\n" and "epochs=2" in json.loads(
        (out / "POS" / "task.json").read_text())["signature"]
    assert set(json.loads((out / "results.json").read_text())["tasks"]) == {"pos", "ner"}
    # another evaluation (other example caps) would mix into the aggregate: refused unless --force
    res = cli(*base[:-2], "--max-eval-examples", "10", "--tasks", "pos", "--out", out, ok=None)
    assert res.exit_code == 2 and "max_eval" in res.output and "--force" in res.output
    assert (out / "keep.md").read_text() == "user notes\n"


def test_truncated_pos_words_are_tagged_in_a_further_window(tiny_model, tmp_path):  # noqa: F811
    """A sentence longer than --max-length: the words past the limit are tagged by a second window, exactly
    as the same words are tagged as a sentence of their own (not given the first label)."""
    from xling.modeling import load_encoder
    from xling.xglue.tag import Tagger
    from xling.xglue.tasks import TASKS

    data = _data(tmp_path / "data")
    words = [w.split()[0] for w in (data / "POS" / "en.dev").read_text().split("\n\n")[0].splitlines()]
    tags = [w.split()[1] for w in (data / "POS" / "en.dev").read_text().split("\n\n")[0].splitlines()]
    long_w, long_t = (words * 12)[:90], (tags * 12)[:90]
    enc = load_encoder(tiny_model)
    enc.max_positions = 64
    tagger = Tagger(TASKS["pos"], enc)
    k = tagger._encode(long_w)[1].index(None)
    rest_w = long_w[k:]
    while None in tagger._encode(rest_w)[1]:  # the rest fits one window
        rest_w = rest_w[:-1]
    long_w, long_t = long_w[: k + len(rest_w)], long_t[: k + len(rest_w)]
    rest_t = long_t[k:]
    assert 0 < k and len(rest_w) > 5
    sents = [(long_w, long_t), (rest_w, rest_t)]
    (data / "POS" / "en.test").write_text("".join("\n".join(f"{w} {t}" for w, t in zip(*s)) + "\n\n" for s in sents))
    out = tmp_path / "out"
    cli("eval", "xglue", "--model", tiny_model, "--data", data, "--tasks", "pos", "--out", out, "--recipe", "quick",
        "--epochs", "2", "--lr", "1e-3", "--max-train-examples", "40", "--max-length", "64")
    pred = [b.splitlines() for b in (out / "POS" / "en.prediction").read_text().split("\n\n") if b.strip()]
    assert [len(p) for p in pred] == [len(long_w), len(rest_w)]
    assert pred[0][k:] == pred[1]  # the second window is the rest of the sentence, tagged on its own
    assert len(set(pred[0][k:])) > 1 or pred[0][k:] != ["ADJ"] * len(rest_w)


def test_off_target_rate_uses_a_fixed_identifier_set(tmp_path):
    """The off-target rate of one language does not depend on which other languages were scored."""
    qg = shared_path("xglue-real", "QG")
    de = (qg / "xglue.qg.de.tgt.test").read_text(encoding="utf-8").splitlines()[:40]
    rates = []
    for langs in (["de", "en"], ["de", "en", "es", "zh"]):
        pred = tmp_path / "-".join(langs) / "QG"
        pred.mkdir(parents=True)
        for lg in langs:
            gold = (qg / f"xglue.qg.{lg}.tgt.test").read_text(encoding="utf-8").splitlines()
            (pred / f"{lg}.prediction").write_text("\n".join(de[:20] + gold[20:]) + "\n", encoding="utf-8")
        cli("eval", "score", "--pred", pred.parent, "--gold", SHARED / "xglue-real", "--tasks", "qg",
            "--json", pred.parent / "s.json")
        rates.append(json.loads((pred.parent / "s.json").read_text())["tasks"]["qg"]["off_target"])
    assert rates[0]["de"] == rates[1]["de"] and rates[0]["en"] == rates[1]["en"]
    assert 5 < rates[0]["en"] < 30 and rates[0]["de"] < 5  # 20 of 199 English outputs are German
