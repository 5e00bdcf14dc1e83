"""--word-pooling for tagging (issue 16): which pieces stand for a word, checked on the collated positions
with a real SentencePiece model and on the network's outputs; every mode trains and predicts through
the CLI (POS and NER) and is recorded in the signature."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cli, shared_path
from test_xglue_outdir import _data

BARE = "\u2581"


def _sents(lang: str, n: int) -> list[tuple[list[str], list[str]]]:
    from xling.xglue.readers import read_conll

    return read_conll(shared_path("xglue-real", "POS") / f"{lang}.dev")[:n]


def _tagger(model: Path, mode: str):
    from types import SimpleNamespace

    import torch

    from xling.modeling import load_encoder
    from xling.xglue.tag import Tagger
    from xling.xglue.tasks import TASKS

    torch.manual_seed(1)
    t = Tagger(TASKS["pos"], load_encoder(model), SimpleNamespace(word_pooling=mode))
    t.module.eval()
    return t


def test_first_content_skips_exactly_a_leading_bare_piece(tiny_model):  # noqa: F811
    """Collated positions on real zh and en sentences: first-content differs from first exactly for the
    words whose pieces start with a bare '▁' (one further on, a piece with content); mean spans cover
    each word's pieces."""
    first, content, mean = (_tagger(tiny_model, m) for m in ("first", "first-content", "mean"))
    assert first.bare is not None and first.enc.dictionary[first.bare] == BARE
    items = [(w, t, *first._encode(w)) for w, t in _sents("zh", 12) + _sents("en", 12)]
    b_first, b_content, b_mean = (r.collate(items) for r in (first, content, mean))
    assert "word_len" not in b_first["net_input"] and "word_len" not in b_content["net_input"]
    n_bare = n_plain = 0
    for i, (words, _tags, ids, firsts) in enumerate(items):
        for j, w in enumerate(words):
            if firsts[j] is None:
                continue
            pieces = first.enc.pieces(w)
            p_first = int(b_first["net_input"]["word_pos"][i, j])
            p_content = int(b_content["net_input"]["word_pos"][i, j])
            assert p_first == firsts[j] and ids[p_first] == first.enc.dictionary.index(pieces[0])
            if pieces[0] == BARE and len(pieces) > 1:
                n_bare += 1
                assert p_content == p_first + 1 and ids[p_content] != first.bare
            else:
                n_plain += 1
                assert p_content == p_first
            assert int(b_mean["net_input"]["word_pos"][i, j]) == p_first
            assert int(b_mean["net_input"]["word_len"][i, j]) == len(pieces)
    assert n_bare > 20 and n_plain > 100  # zh words with a bare start, en words without
    assert b_first["target"].equal(b_content["target"]) and b_first["target"].equal(b_mean["target"])


def test_head_outputs_follow_the_pooling(tiny_model):  # noqa: F811
    """The same network: first and first-content give the same logits for every word that does not
    start with a bare piece and other logits for those that do; mean = the head on the pieces' mean."""
    import torch

    first, content, mean = (_tagger(tiny_model, m) for m in ("first", "first-content", "mean"))
    items = [(w, t, *first._encode(w)) for w, t in _sents("zh", 4)]
    with torch.no_grad():
        out = {r.pooling: r.module(**r.collate(items)["net_input"]) for r in (first, content, mean)}
        x, _ = first.module.encoder(first.collate(items)["net_input"]["src_tokens"], features_only=True)
    bare = first.collate(items)["net_input"]["word_pos"] != content.collate(items)["net_input"]["word_pos"]
    valid = first.collate(items)["target"] != -100
    same = torch.isclose(out["first"], out["first-content"], atol=1e-6).all(-1)
    assert same[valid & ~bare].all() and not same[valid & bare].any() and (valid & bare).sum() > 5
    for i, (words, _t, ids, firsts) in enumerate(items):
        for j in range(len(words)):
            if firsts[j] is None:
                continue
            end = next((p for p in firsts[j + 1:] if p is not None), len(ids) - 1)
            want = mean.module.head(x[i, firsts[j]:end].mean(0))
            assert torch.allclose(out["mean"][i, j], want, atol=1e-5)


def test_every_pooling_trains_predicts_and_is_signed(tiny_model, tmp_path):  # noqa: F811
    """Through the CLI on real POS (en training, en and zh tests) and a small NER task: each mode trains,
    writes one tag a word and records itself in the signature; changing the mode re-runs the task,
    re-running the same mode is skipped; an unknown mode is refused before anything is written."""
    data = _data(tmp_path / "data")
    pos = shared_path("xglue-real", "POS")
    for split in ("dev", "test"):
        blocks = (pos / f"zh.{split}").read_text(encoding="utf-8").split("\n\n")[:20]
        (data / "POS" / f"zh.{split}").write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    out = tmp_path / "out"
    base = ["eval", "xglue", "--model", tiny_model, "--data", data, "--recipe", "quick", "--epochs", "1",
            "--max-train-examples", "40", "--max-eval-examples", "20", "--out", out]
    scores = {}
    for mode in ("first", "first-content", "mean"):
        res = cli(*base, "--tasks", "pos,ner" if mode == "mean" else "pos", "--word-pooling", mode)
        assert f"word_pooling={mode}" in res.output and "up to date" not in res.output
        task = json.loads((out / "POS" / "task.json").read_text())
        assert f"word_pooling={mode}" in task["signature"] and task["langs"] == ["en", "zh"]
        for lg in ("en", "zh"):
            gold = [b.splitlines() for b in (data / "POS" / f"{lg}.test").read_text().split("\n\n") if b.strip()]
            pred = [b.splitlines() for b in (out / "POS" / f"{lg}.prediction").read_text().split("\n\n")
                    if b.strip()]
            assert [len(p) for p in pred] == [len(g) for g in gold[:20]]
        scores[mode] = task["runs"][0]["scores"]["test"]
        assert all(0 <= v <= 100 for v in scores[mode].values())
    ner = json.loads((out / "NER" / "task.json").read_text())
    assert "word_pooling=mean" in ner["signature"] and ner["runs"][0]["scores"]["test"]["en"] >= 0
    assert "word_pooling=mean" in json.loads((out / "results.json").read_text())["signature"]
    assert "up to date" in cli(*base, "--tasks", "pos,ner", "--word-pooling", "mean").output
    bad = cli(*base, "--tasks", "pos", "--word-pooling", "last", "--out", tmp_path / "bad", ok=None)
    assert bad.exit_code == 2 and "first-content" in bad.output and not (tmp_path / "bad").exists()


def test_pool_is_the_mean_over_each_span():
    torch = pytest.importorskip("torch")
    from xling.xglue.tag_pooling import pool

    x = torch.randn(2, 7, 3)
    start, length = torch.tensor([[1, 2, 5], [1, 4, 0]]), torch.tensor([[1, 3, 1], [3, 2, 1]])
    got = pool(x, start, length)
    for i in range(2):
        for j in range(3):
            s, n = int(start[i, j]), int(length[i, j])
            assert torch.allclose(got[i, j], x[i, s:s + n].mean(0), atol=1e-6)
