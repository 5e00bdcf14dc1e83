"""Multi-source fine-tuning (eval xglue --train-lang en,de --train-split dev) and `xling eval transfer`, through
the CLI on slices of the shared POS data with the tiny roberta."""
from __future__ import annotations

import json

from conftest import SHARED, cli, shared_path

DATA = SHARED / "xglue-real"
FAST = ["--recipe", "quick", "--epochs", "1", "--lr", "1e-3", "--batch-size", "8"]


def test_multi_source_trains_on_both_and_never_scores_what_it_trained_on(tiny_model, tmp_path):
    shared_path("xglue-real", "POS")
    out = tmp_path / "multi"
    base = ["eval", "xglue", "--model", tiny_model, "--data", DATA, "--tasks", "pos", "--zero-shot", "fr",
            "--max-train-examples", "12", "--max-eval-examples", "10", *FAST]
    cli(*base, "--train-lang", "en,de", "--train-split", "dev", "--out", out)
    r = json.loads((out / "results.json").read_text())
    task = json.loads((out / "POS" / "task.json").read_text())
    run = task["runs"][0]
    assert run["train_examples"] == 24  # 12 sentences of each source's dev set, one epoch
    assert r["train_lang"] == "en,de@dev" and task["langs"] == ["en", "de", "fr"]
    # the dev sets trained on are not scored; their test sets and the target's dev and test are
    assert set(run["scores"]["dev"]) == {"fr"} and set(run["scores"]["test"]) == {"en", "de", "fr"}
    seed = out / "POS" / "seeds" / "1"
    assert sorted(p.name for p in (seed / "dev").iterdir()) == ["fr.prediction"]
    # eval compare on the dev split compares what was scored (it stopped at the missing en/de predictions)
    cli("eval", "compare", out, out, "--gold", DATA, "--split", "dev", "-o", tmp_path / "c.json", "--samples", "50")
    rows = json.loads((tmp_path / "c.json").read_text())["rows"]
    assert [(r["task"], r["lang"], r["n_examples"]) for r in rows] == [("pos", "fr", 10)], rows
    # its only language trained on: no dev score, no dev average, the test set scored
    alone = tmp_path / "alone"
    cli(*base[:8], "--zero-shot", "none", *base[10:], "--train-lang", "de", "--train-split", "dev", "--out", alone)
    dev, test = json.loads((alone / "results.json").read_text())["tasks"]["pos"]["splits"].values()
    assert dev["langs"] == {} and dev["avg"] is None and set(test["langs"]) == {"de"}
    # a source without a train set names the fix
    res = cli(*base, "--train-lang", "en,de", "--out", tmp_path / "bad", ok=None)
    assert res.exit_code == 2 and "POS/de.train" in res.output and "--train-split dev" in res.output


def test_eval_transfer_writes_matrix_json_and_png(tiny_model, tmp_path):
    shared_path("xglue-real", "POS")
    out = tmp_path / "transfer"
    common = ["eval", "transfer", "--model", tiny_model, "--data", DATA, "--max-train-examples", "12",
              "--max-eval-examples", "10", "--samples", "200", *FAST]
    args = [*common, "--sources", "en,de", "--targets", "en,de,nl,fr,ru", "--out", out]
    res = cli(*args)
    assert "source \\ target" in res.output and "gap" in res.output
    r = json.loads((out / "transfer.json").read_text())
    # grouped by family, genus, script: Germanic (de, en, nl), Romance (fr), Slavic (ru)
    assert r["sources"] == ["de", "en"] and r["targets"] == ["de", "en", "nl", "fr", "ru"]
    assert r["train_split"] == {"de": "dev", "en": "train"}
    for s in r["sources"]:  # each cell is the source run's test score
        run = json.loads((out / "runs" / s / "results.json").read_text())
        for t in r["targets"]:
            assert r["scores"][s][t] == run["tasks"]["pos"]["splits"]["test"]["langs"][t]["mean"]
    sm = r["summary"]
    assert sorted(sm["in_cells"]) == ["de->en", "de->nl", "en->de", "en->nl"]
    assert len(sm["cross_cells"]) == 4
    cells = {c: r["scores"][c.split("->")[0]][c.split("->")[1]] for c in sm["in_cells"] + sm["cross_cells"]}
    in_mean = sum(cells[c] for c in sm["in_cells"]) / 4
    cross_mean = sum(cells[c] for c in sm["cross_cells"]) / 4
    assert abs(sm["gap"] - (in_mean - cross_mean)) < 1e-6 and sm["ci_low"] <= sm["gap"] <= sm["ci_high"]
    assert r["languages"]["ru"]["iso639_3"] == "rus" and r["languages"]["ru"]["script"] == "Cyrl"
    assert (out / "transfer.png").read_bytes()[:4] == b"\x89PNG"
    assert "| de (Germanic, Latn), dev-trained |" in (out / "transfer.md").read_text()
    # resumable: a re-run fine-tunes nothing and writes the same matrix
    again = cli(*args)
    assert again.output.count("up to date: source") == 2
    assert json.loads((out / "transfer.json").read_text())["scores"] == r["scores"]
    # an unknown family: one exit-2 error with the fix, nothing written
    res = cli(*common, "--sources", "en", "--targets", "family:elvish", "--out", tmp_path / "t2", ok=None)
    assert res.exit_code == 2 and "unknown family 'elvish'" in res.output and "romance" in res.output
    assert not (tmp_path / "t2").exists()


class _Runner:
    """What sources.load needs of a runner: examples as lists."""

    def train_items(self, loaded):
        return loaded

    def load(self, data, lang, split, limit=None, train=False):
        n = {"en": 5, "de": 2}[lang]
        return [f"{lang}.{split}.{i}" for i in range(n)][:limit]


def test_balanced_sampling_repeats_the_smaller_source():
    from xling.xglue.sources import load

    items, select = load(_Runner(), None, ["en", "de"], "train", None, None, True, 1)
    assert len(items) == 10 and sum(x.startswith("de.") for x in items) == 5
    assert {x for x in items if x.startswith("de.")} == {"de.train.0", "de.train.1"}
    plain, _ = load(_Runner(), None, ["en", "de"], "train", None, None, False, 1)
    assert len(plain) == 7 and set(select) == {"en", "de"}
    # --train-split dev: the last tenth (at least one) selects, the rest trains
    items, select = load(_Runner(), None, ["en"], "dev", None, None, False, 1)
    assert items == [f"en.dev.{i}" for i in range(4)] and select == {"en": ["en.dev.4"]}


def test_train_lang_all_picks_every_language_with_the_split():
    from xling.xglue.sources import parse
    from xling.xglue.tasks import get_tasks

    shared_path("xglue-real", "POS")
    pos = get_tasks("pos")[0]
    assert parse("all", pos, DATA, "train") == ["en"]
    assert parse("all", pos, DATA, "dev") == "bg de en es fr it nl pl pt ru zh".split()
