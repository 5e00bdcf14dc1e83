"""xling eval compare: the paired bootstrap against a hand-written loop, A vs A, per-example statistics
that give back the official scores, and runs on different data refused (exit 2)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import cli


def _by_hand(a, b, n_samples, seed):
    """The bootstrap written as loops over the same draws: mean over drawn seeds of the score on the
    drawn examples, for accuracy-style statistics [value, 1]."""
    from xling.significance.bootstrap import draws

    n = len(a[0])
    idx, sa, sb = draws(n, len(a), len(b), n_samples, seed)
    diffs = []
    for r in range(n_samples):
        def score(stats, seeds):
            vals = []
            for s in seeds:
                vals.append(100 * sum(stats[s][i] for i in idx[r]) / n)
            return sum(vals) / len(vals)
        diffs.append(score(b, sb[r]) - score(a, sa[r]))
    obs = np.mean([100 * np.mean(x) for x in b]) - np.mean([100 * np.mean(x) for x in a])
    centred = [abs(d - np.mean(diffs)) for d in diffs]
    p = (1 + sum(c >= abs(obs) - 1e-9 for c in centred)) / (1 + n_samples)
    return obs, np.percentile(diffs, 2.5), np.percentile(diffs, 97.5), p


@pytest.mark.parametrize("seeds_a,seeds_b", [(1, 1), (3, 2)])
def test_bootstrap_equals_the_hand_written_loop(seeds_a, seeds_b):
    from xling.significance.bootstrap import mean_score, paired_bootstrap

    rng = np.random.default_rng(0)
    a = [(rng.random(12) < 0.5).astype(float) for _ in range(seeds_a)]
    b = [(rng.random(12) < 0.8).astype(float) for _ in range(seeds_b)]
    res = paired_bootstrap([np.column_stack([x, np.ones(12)]) for x in a],
                           [np.column_stack([x, np.ones(12)]) for x in b], mean_score, 200, seed=7)
    obs, lo, hi, p = _by_hand(a, b, 200, 7)
    assert res.diff == pytest.approx(obs) and res.ci_low == pytest.approx(lo) and res.ci_high == pytest.approx(hi)
    assert res.p_value == pytest.approx(p)
    assert (res.seeds_a, res.seeds_b, res.n_examples) == (seeds_a, seeds_b, 12)


def test_a_against_itself_is_no_difference_and_a_clear_gain_is_significant():
    from xling.significance.bootstrap import mean_score, paired_bootstrap

    x = np.column_stack([np.r_[np.ones(60), np.zeros(40)], np.ones(100)])
    same = paired_bootstrap([x], [x], mean_score, 500)
    assert same.diff == 0 and same.ci_low == 0 and same.ci_high == 0 and same.p_value == 1.0
    y = np.column_stack([np.r_[np.ones(90), np.zeros(10)], np.ones(100)])
    gain = paired_bootstrap([x], [y], mean_score, 500)
    assert gain.diff == pytest.approx(30) and gain.ci_low > 15 and gain.p_value < 0.01


def test_bleu_statistics_give_sacrebleus_corpus_score_and_its_own_test():
    from xling.significance.bleu import bleu_score, paired_test, sentence_stats
    from xling.xglue.metrics.bleu import Bleu

    refs = ["the cat sat on the mat", "a dog barks at night", "where is the station", "it rains today"]
    hyps = ["the cat sat on a mat", "a dog barks", "where is station", "today it rains"]
    st = sentence_stats(hyps, refs)
    assert float(bleu_score(st.sum(0))) == pytest.approx(Bleu().score(refs, hyps))
    p, sig = paired_test(hyps, hyps, refs, 100)
    assert p == 1.0 and "nrefs:1" in sig and "bs:100" in sig


def _xglue_run(root, name, gold_dir, preds: list[list[list[str]]], data="abc123"):
    """An `eval xglue` output directory (POS, de, one prediction file per seed) with its recorded scores:
    OUT/results.json, OUT/POS/task.json, OUT/POS/seeds/S/test/de.prediction."""
    from xling.xglue.metrics import METRICS
    from xling.xglue.readers import read_conll

    gold = [t for _w, t in read_conll(gold_dir / "POS" / "de.test")]
    run = root / name
    runs = []
    for s, pred in enumerate(preds, 1):
        f = run / "POS" / "seeds" / str(s) / "test" / "de.prediction"
        f.parent.mkdir(parents=True)
        f.write_text("".join("\n".join(x) + "\n\n" for x in pred))
        runs.append({"seed": s, "scores": {"test": {"de": METRICS["seqeval_precision"]().score(gold, pred)}}})
    sig = f"xling:0.1.0|model:m|data:{data}|task:pos|seeds:{len(preds)}|max_eval:None"
    (run / "POS" / "task.json").write_text(json.dumps({"task": "pos", "signature": sig, "langs": ["de"],
                                                       "runs": runs}))
    res = {"signature": sig, "seeds": len(preds), "langs": ["de"],
           "tasks": {"pos": {"metric": "seqeval_precision", "family": "tag"}}}
    (run / "results.json").write_text(json.dumps(res))
    return run


def test_compare_two_xglue_runs_through_the_cli(tmp_path):
    gold_dir = tmp_path / "xglue"
    (gold_dir / "POS").mkdir(parents=True)
    sents = [[("Der", "DET"), ("Hund", "NOUN"), ("bellt", "VERB")], [("Sie", "PRON"), ("lacht", "VERB")],
             [("Ein", "DET"), ("rotes", "ADJ"), ("Auto", "NOUN")], [("Ja", "INTJ")]] * 5
    (gold_dir / "POS" / "de.test").write_text("".join("\n".join(f"{w} {t}" for w, t in s) + "\n\n" for s in sents))
    gold = [[t for _w, t in s] for s in sents]
    worse = [[("NOUN" if i % 3 == 0 else t) for t in g] for i, g in enumerate(gold)]
    a = _xglue_run(tmp_path, "a", gold_dir, [worse, gold])
    b = _xglue_run(tmp_path, "b", gold_dir, [gold, gold, gold])
    r = cli("eval", "compare", a, b, "--gold", gold_dir, "--samples", 200, "--out", tmp_path / "c.json")
    res = json.loads((tmp_path / "c.json").read_text())
    row = res["rows"][0]
    assert (row["task"], row["lang"], row["seeds_a"], row["seeds_b"], row["n_examples"]) == ("pos", "de", 2, 3, 20)
    assert row["score_b"] == pytest.approx(100) and row["diff"] > 0 and "B - A" in r.output
    # per-sentence statistics reproduce the recorded seqeval precision of each seed
    from xling.significance.examples import example_stats
    from xling.xglue.metrics import METRICS
    from xling.xglue.tasks import get_tasks

    st, agg = example_stats(get_tasks("pos")[0], gold_dir / "POS" / "de.test",
                            a / "POS" / "seeds" / "1" / "test" / "de.prediction", "de")
    assert 100 * st[:, 0].sum() / st[:, 1].sum() == pytest.approx(METRICS["seqeval_precision"]().score(gold, worse))
    # A against itself: no difference
    cli("eval", "compare", a, a, "--gold", gold_dir, "--samples", 200, "--out", tmp_path / "same.json")
    same = json.loads((tmp_path / "same.json").read_text())["rows"][0]
    assert same["diff"] == 0 and same["p_value"] == 1.0 and not same["significant"]
    # different data, wrong gold, missing gold: refused with exit 2, nothing written
    c = _xglue_run(tmp_path, "c", gold_dir, [gold], data="other")
    r = cli("eval", "compare", a, c, "--gold", gold_dir, "--out", tmp_path / "x.json", ok=False)
    assert r.exit_code == 2 and "different files" in r.output and not (tmp_path / "x.json").exists()
    (gold_dir / "POS" / "de.test").write_text("".join("\n".join(f"{w} NOUN" for w, _t in s) + "\n\n" for s in sents))
    r = cli("eval", "compare", a, b, "--gold", gold_dir, "--out", tmp_path / "x.json", ok=False)
    assert r.exit_code == 2 and "the run recorded" in r.output
    r = cli("eval", "compare", a, b, "--out", tmp_path / "x.json", ok=False)
    assert r.exit_code == 2 and "--gold" in r.output


def _retrieval_run(root, name, found, digest="d1"):
    run = root / name
    (run / "outcomes").mkdir(parents=True)
    n = len(found)
    acc = 100 * sum(f == i for i, f in enumerate(found)) / n
    res = {"kind": "xling-retrieval", "signature": f"xling:0.1.0|model:{name}|task:tatoeba", "task": "tatoeba",
           "task_kind": "parallel", "layers": [6, 12], "report_layer": 12,
           "pairs": {"de-en": {"digest": digest, "layers": {"12": {"de->en": acc}}}}}
    (run / "results.json").write_text(json.dumps(res))
    per = {"de->en": found, "en->de": list(range(n))}
    oc = {"pair": "de-en", "gold": [[i, i] for i in range(n)], "layers": {"12": per, "6": per}}
    (run / "outcomes" / "de-en.json").write_text(json.dumps(oc))
    return run


def test_compare_two_retrieval_runs(tmp_path):
    a = _retrieval_run(tmp_path, "a", [0, 1, 0, 3, 0, 5, 0, 7, 8, 9])  # 7 of 10
    b = _retrieval_run(tmp_path, "b", list(range(10)))
    cli("eval", "compare", a, b, "--samples", 300, "--out", tmp_path / "c.json")
    rows = {r["lang"]: r for r in json.loads((tmp_path / "c.json").read_text())["rows"]}
    assert rows["de->en"]["score_a"] == pytest.approx(70) and rows["de->en"]["diff"] == pytest.approx(30)
    assert rows["en->de"]["diff"] == 0 and rows["en->de"]["p_value"] == 1.0
    obs, lo, hi, p = _by_hand([np.array([1, 1, 0, 1, 0, 1, 0, 1, 1, 1.0])], [np.ones(10)], 300, 12345)
    assert rows["de->en"]["ci_low"] == pytest.approx(lo, abs=1e-5) and rows["de->en"]["p_value"] == pytest.approx(p, abs=1e-5)
    r = cli("eval", "compare", a, b, "--layer-a", 3, "--out", tmp_path / "x.json", ok=False)
    assert r.exit_code == 2 and "no layer 3" in r.output
    c = _retrieval_run(tmp_path, "c", list(range(10)), digest="d2")
    r = cli("eval", "compare", a, c, "--out", tmp_path / "x.json", ok=False)
    assert r.exit_code == 2 and "different files" in r.output
