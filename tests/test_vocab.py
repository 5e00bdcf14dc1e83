"""prep-vocab on real multilingual text (tatoeba: 20 languages + English)."""
import json
import math

import pytest
import sentencepiece as spm

from conftest import TATOEBA_LANGS, cli
from xling.vocab import sampling_probs


def test_dict_matches_spm_model(vocab_all):
    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    from fairseq.data import Dictionary

    sp = spm.SentencePieceProcessor(model_file=str(vocab_all / "spm.model"))
    d = Dictionary.load(str(vocab_all / "dict.txt"))
    assert sp.get_piece_size() == 8000
    assert len(d) == 8000 + 1  # 4 fairseq specials replace spm's 3
    assert (d.bos(), d.pad(), d.eos(), d.unk()) == (0, 1, 2, 3)
    for i in range(3, sp.get_piece_size()):
        assert d[i + 1] == sp.id_to_piece(i)
    # counts come from the sampled text: frequent pieces have counts, the word-boundary piece is frequent
    counts = dict(zip(d.symbols, d.count))
    assert counts["▁"] > 1000 or counts[sp.id_to_piece(3)] > 0


def test_sampling_follows_alpha(vocab_all):
    st = json.loads((vocab_all / "stats.json").read_text())
    langs = st["langs"]
    assert set(langs) == set(TATOEBA_LANGS) | {"en"}
    n = {lg: s["sentences"] for lg, s in langs.items()}
    total = sum(n.values())
    z = sum((v / total) ** 0.3 for v in n.values())
    for lg, s in langs.items():
        assert s["p"] == pytest.approx(n[lg] / total)
        assert s["q"] == pytest.approx((n[lg] / total) ** 0.3 / z)
    budget = total - sum(s["heldout"] for s in langs.values())
    for lg, s in langs.items():
        assert s["sampled"] == round(s["q"] * budget)
    # smoothing: English (half of all text) is down-sampled, Swahili (390 lines) up-sampled with repeats
    assert langs["en"]["sampled"] < langs["en"]["sentences"] - langs["en"]["heldout"]
    assert langs["sw"]["sampled"] > langs["sw"]["sentences"]
    assert langs["sw"]["unique_sampled"] == langs["sw"]["sentences"] - langs["sw"]["heldout"]
    assert st["vocab"]["sampled_lines"] == sum(s["sampled"] for s in langs.values())
    assert sampling_probs({"a": 90, "b": 10}, 1.0) == pytest.approx({"a": 0.9, "b": 0.1})


def test_quality_stats(vocab_all):
    st = json.loads((vocab_all / "stats.json").read_text())
    q = {lg: s["quality"] for lg, s in st["langs"].items()}
    # Latin-script languages: about 2 pieces per word; unsegmented scripts (zh, ja, th) many more
    for lg in ("en", "fr", "de", "es"):
        assert 1.2 < q[lg]["pieces_per_word"] < 3.5, (lg, q[lg])
        assert q[lg]["unk_rate"] == 0.0
    for lg in ("zh", "ja"):
        assert q[lg]["pieces_per_word"] > 5
    # byte fallback covers rare CJK characters instead of <unk>
    assert q["zh"]["byte_fallback_rate"] > 0 and q["zh"]["unk_rate"] == 0.0


def test_sampling_deterministic_given_seed(tatoeba, tmp_path):
    from xling.vocab import VocabConfig, sample_corpus

    inputs = [(lg, str(tatoeba / f"tatoeba.{lg}-en.{lg}")) for lg in ("fr", "sw", "th")]
    outs = []
    for seed in (1, 1, 2):
        f = tmp_path / f"s{len(outs)}.txt"
        sample_corpus(VocabConfig(inputs=inputs, out=str(tmp_path), seed=seed, max_sentences=1500), f)
        outs.append(f.read_text())
    assert outs[0] == outs[1]
    assert outs[0] != outs[2]
    assert len(outs[0].splitlines()) == pytest.approx(1500, abs=2)


def test_rerun_skips_and_other_run_is_refused(tatoeba, tmp_path):
    out = tmp_path / "v"
    args = ["--input", f"fr={tatoeba}/tatoeba.fr-en.fr", "--input", f"de={tatoeba}/tatoeba.de-en.de",
            "--vocab-size", 800, "--out", out]
    cli("prep-vocab", *args)
    mtime = (out / "spm.model").stat().st_mtime_ns
    res = cli("prep-vocab", *args)
    assert "up to date" in res.output
    assert (out / "spm.model").stat().st_mtime_ns == mtime
    res = cli("prep-vocab", *args[:-2], "--alpha", 0.5, "--out", out, ok=None)
    assert res.exit_code == 2 and "another run" in res.output and "--force" in res.output
    assert (out / "spm.model").stat().st_mtime_ns == mtime
    cli("prep-vocab", *args[:-2], "--alpha", 0.5, "--out", out, "--force")
    assert json.loads((out / "stats.json").read_text())["options"]["alpha"] == 0.5


def test_vocab_too_large_says_the_largest_size(tatoeba, tmp_path):
    out = tmp_path / "v"
    res = cli("prep-vocab", "--input", f"sw={tatoeba}/tatoeba.sw-en.sw", "--vocab-size", 50000, "--out", out, ok=None)
    assert res.exit_code == 2, res.output
    assert "larger than the sampled text supports" in res.output
    import re

    m = re.search(r"--vocab-size (\d+) or less", res.output)
    assert m, res.output
    assert not (out / "spm.model").exists() and not (out / "stats.json").exists()
    largest = int(m.group(1))
    cli("prep-vocab", "--input", f"sw={tatoeba}/tatoeba.sw-en.sw", "--vocab-size", largest, "--out", out)
    assert spm.SentencePieceProcessor(model_file=str(out / "spm.model")).get_piece_size() == largest


@pytest.mark.parametrize("case", ["missing", "empty", "utf8", "lang", "alpha0", "alpha_big", "not_kv"])
def test_bad_input(case, tmp_path, tatoeba):
    good = f"fr={tatoeba}/tatoeba.fr-en.fr"
    out = tmp_path / "out"
    extra = []
    if case == "missing":
        inp = f"de={tmp_path}/nope.txt"
        expect = ["nope.txt", "does not exist"]
    elif case == "empty":
        (tmp_path / "e.txt").write_text("")
        inp, expect = f"de={tmp_path}/e.txt", ["e.txt", "empty"]
    elif case == "utf8":
        (tmp_path / "b.txt").write_bytes("ligne un\nligne deux\ncaf\xe9 latin-1\n".encode("latin-1"))
        inp, expect = f"de={tmp_path}/b.txt", ["b.txt:3", "invalid UTF-8", "iconv"]
    elif case == "lang":
        inp, expect = f"french={tatoeba}/tatoeba.de-en.de", ["'french'", "ISO 639"]
    elif case == "alpha0":
        inp, expect, extra = f"de={tatoeba}/tatoeba.de-en.de", ["--alpha 0.0", "(0, 1]"], ["--alpha", 0]
    elif case == "alpha_big":
        inp, expect, extra = f"de={tatoeba}/tatoeba.de-en.de", ["--alpha 1.5"], ["--alpha", 1.5]
    else:
        inp, expect = f"{tatoeba}/tatoeba.de-en.de", ["KEY=PATH"]
    res = cli("prep-vocab", "--input", good, "--input", inp, "--vocab-size", 500, "--out", out, *extra, ok=None)
    assert res.exit_code == 2, res.output
    for e in expect:
        assert e in res.output, res.output
    assert "fix:" in res.output
    assert not out.exists() or not any(out.iterdir())


def test_language_variants_accepted(tatoeba, tmp_path):
    cli("prep-vocab", "--input", f"zh-Hans={tatoeba}/tatoeba.zh-en.zh", "--input", f"yue={tatoeba}/tatoeba.zh-en.zh",
        "--vocab-size", 2500, "--out", tmp_path / "v")
    assert math.isclose(sum(s["q"] for s in json.loads((tmp_path / "v" / "stats.json").read_text())["langs"].values()), 1.0)


def test_vocab_smaller_than_alphabet_is_explained(tatoeba, tmp_path):
    res = cli("prep-vocab", "--input", f"zh={tatoeba}/tatoeba.zh-en.zh", "--vocab-size", 600, "--out", tmp_path / "v",
              ok=None)
    assert res.exit_code == 2
    assert "smaller than the" in res.output and "--character-coverage" in res.output
