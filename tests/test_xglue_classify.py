"""XGLUE classification (PAWS-X) and ranking (WPR) runners through `xling eval xglue`, on small files
in the official layouts built from real Tatoeba sentences: a pair is positive when segment B is the
translation of segment A (German) and negative when it is another English sentence, which a tiny
random-init encoder can learn; chance is 50% accuracy and ~64 nDCG (one relevant document in four)."""
from __future__ import annotations

import json
import random
from pathlib import Path

from conftest import SHARED, cli, shared_path


def _pairs(lang: str):
    shared_path("tatoeba", f"tatoeba.{lang}-en.en")
    en = (SHARED / "tatoeba" / f"tatoeba.{lang}-en.en").read_text(encoding="utf-8").splitlines()
    xx = (SHARED / "tatoeba" / f"tatoeba.{lang}-en.{lang}").read_text(encoding="utf-8").splitlines()
    return [(e.strip(), x.strip()) for e, x in zip(en, xx) if e.strip() and x.strip() and "\t" not in e + x]


def _write(path: Path, lines: list[str]):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")


def _make_data(root: Path):
    rng = random.Random(0)
    sizes = {"train": (0, 320), "dev": (320, 380), "test": (380, 440)}
    for lang in ("de", "fr"):
        pairs = _pairs(lang)
        for split, (lo, hi) in sizes.items():
            rows, groups = ["id\tsentence1\tsentence2\tlabel"], []
            for i in range(lo, hi):
                en, tr = pairs[i]
                other = pairs[rng.randrange(len(pairs))][0]
                pos = rng.random() < 0.5
                rows.append(f"{i}\t{en}\t{tr if pos else other}\t{int(pos)}")
                if (i - lo) % 4 == 0:  # a WPR query with four documents: its translation is relevant
                    docs = [(tr, 3)] + [(pairs[rng.randrange(len(pairs))][0], 0) for _ in range(3)]
                    rng.shuffle(docs)
                    groups += [f"{en}\t{d}\tsnippet\t{r}" for d, r in docs]
            for task_lang in (["en", lang] if lang == "de" else [lang]):  # en from the German pairs
                if task_lang == "en" or split != "train":
                    name = "train.tsv" if split == "train" else f"{split}_2k.tsv"
                    _write(root / "PAWSX" / task_lang / name, rows)
                    _write(root / "WPR" / f"xglue.wpr.{task_lang}.{split}", groups)
    return root


def test_eval_xglue_pawsx_wpr(tiny_model, tmp_path):  # noqa: F811
    data = _make_data(tmp_path / "data")
    out = tmp_path / "out"
    res = cli("eval", "xglue", "--model", tiny_model, "--data", data, "--tasks", "pawsx,wpr",
              "--zero-shot", "de,fr", "--out", out, "--epochs", "4", "--lr", "1e-3", "--recipe", "quick")
    assert "Understanding score" in res.output
    r = json.loads((out / "results.json").read_text())
    paws = r["tasks"]["pawsx"]["splits"]["test"]["langs"]
    wpr = r["tasks"]["wpr"]["splits"]["test"]["langs"]
    assert paws["en"]["mean"] > 75, paws
    assert wpr["en"]["mean"] > 85, wpr
    # submission files: one label / one score a line, as many lines as the gold file has examples
    lines = (out / "PAWSX" / "en.prediction").read_text().splitlines()
    assert len(lines) == 60 and set(lines) <= {"0", "1"} and len(set(lines)) == 2
    scores = (out / "WPR" / "en.prediction").read_text().splitlines()
    assert len(scores) == 60 and len({float(s) for s in scores}) > 10
    assert len((out / "WPR" / "fr.prediction").read_text().splitlines()) == 60
    # the files score identically through `xling eval score`
    s = cli("eval", "score", "--pred", out, "--gold", data, "--tasks", "pawsx", "--split", "test",
            "--json", tmp_path / "s.json")
    got = json.loads((tmp_path / "s.json").read_text())["tasks"]["pawsx"]["langs"]
    assert "pawsx" in s.output and abs(got["en"] - paws["en"]["mean"]) < 1e-9


def test_eval_xglue_classify_bad_input(tiny_model, tmp_path):  # noqa: F811
    data, out = tmp_path / "data", tmp_path / "out"
    good = "A man sleeps.\tA person rests.\tentailment\n"
    for split in ("dev", "test"):
        _write(data / "XNLI" / f"en.{split}", [good.strip()])
    _write(data / "XNLI" / "en.train", [good.strip(), "A dog runs.\tA cat sits.\tmaybe"])
    res = cli("eval", "xglue", "--model", tiny_model, "--data", data, "--tasks", "xnli", "--out", out,
              ok=None)
    assert res.exit_code == 2 and "'maybe' outside the xnli label set" in res.output
    assert "en.train" in res.output and not out.exists()
    _write(data / "XNLI" / "en.train", [good.strip(), "only one column"])
    res = cli("eval", "xglue", "--model", tiny_model, "--data", data, "--tasks", "xnli", "--out", out,
              ok=None)
    assert res.exit_code == 2 and "tab-separated columns" in res.output and not out.exists()


def test_eval_xglue_each_task_keeps_its_own_languages(tiny_model, tmp_path):  # noqa: F811
    """--zero-shot lists languages for all tasks; a task without any file of a language (as MLQA has no fr)
    leaves it out, a language no task has is a mistake, and half a language (dev without test) is an error."""
    data, out = _make_data(tmp_path / "data"), tmp_path / "out"
    (data / "WPR" / "xglue.wpr.fr.test").unlink()
    args = ["eval", "xglue", "--model", tiny_model, "--data", data, "--tasks", "pawsx,wpr", "--out", out,
            "--epochs", "1", "--max-train-examples", "64"]
    res = cli(*args, "--zero-shot", "fr", ok=None)
    assert res.exit_code == 2 and "xglue.wpr.fr.test" in res.output and not out.exists()
    (data / "WPR" / "xglue.wpr.fr.dev").unlink()
    res = cli(*args, "--zero-shot", "fr,sw", ok=None)
    assert res.exit_code == 2 and "PAWSX/sw/dev_2k.tsv" in res.output
    assert not out.exists()
    cli(*args, "--zero-shot", "fr")
    r = json.loads((out / "results.json").read_text())
    assert r["task_langs"] == {"pawsx": ["en", "fr"], "wpr": ["en"]}
    assert set(r["tasks"]["wpr"]["splits"]["test"]["langs"]) == {"en"}
    assert set(r["tasks"]["pawsx"]["splits"]["test"]["langs"]) == {"en", "fr"}
    assert (out / "PAWSX" / "fr.prediction").is_file() and not (out / "WPR" / "fr.prediction").exists()
    wpr_row = next(ln for ln in (out / "results.md").read_text().splitlines() if ln.startswith("| wpr |"))
    assert wpr_row.split("|")[3].strip() == "-"  # columns: task, en, fr, avg
