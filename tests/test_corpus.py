"""prep-data on real bitext (all 20 tatoeba pairs) and hand-made bad inputs."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import TATOEBA_LANGS, cli
from xling.corpus import TextEncoder, clean_line


def _load(prefix):
    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    from fairseq.data.indexed_dataset import MMapIndexedDataset

    return MMapIndexedDataset(str(prefix))


def test_manifest_counts_add_up(data_all, tatoeba):
    m = json.loads((data_all / "manifest.json").read_text())
    assert m["pairs"] == sorted(f"{lg}-en" for lg in TATOEBA_LANGS)
    assert set(m["mono_langs"]) == set(TATOEBA_LANGS) | {"en"}
    for key, e in m["para"].items():
        c = e["counts"]
        lines = (tatoeba / f"tatoeba.{key}.{e['src']}").read_text(encoding="utf-8").splitlines()
        assert c["input"] == len(lines)
        assert c["kept"] == c["input"] - c["empty"] - c["duplicate"] - c["too_short"] - c["too_long"] - c["ratio"]
        assert e["sentences"]["train"] + e["sentences"]["valid"] == c["kept"]
        assert e["sentences"]["valid"] == min(100, int(0.1 * c["kept"]))
        assert len(e["inputs"]) == 2 and len(e["inputs"][0]["sha256"]) == 64
    # the English sides of the 20 pairs overlap: dedup drops repeats in the English mono corpus
    assert m["mono"]["en"]["counts"]["duplicate"] > 0
    assert m["mono"]["en"]["counts"]["input"] == sum(m["para"][p]["counts"]["input"] for p in m["pairs"])


def test_binarized_decodes_back_to_normalized_input(data_all, tatoeba):
    enc = TextEncoder(data_all)
    for key in ("zh-en", "ar-en", "th-en", "ru-en"):
        src = key.split("-")[0]
        raw = (tatoeba / f"tatoeba.{key}.{src}").read_text(encoding="utf-8").splitlines()
        cleaned = {clean_line(x) for x in raw}
        n = 0
        for split in ("train", "valid"):
            prefix = data_all / "para" / f"{split}.{key}.{src}"
            ds = _load(prefix)
            texts = (prefix.parent / (prefix.name + ".txt")).read_text(encoding="utf-8").splitlines()
            assert len(ds) == len(texts)
            for i in range(len(ds)):
                ids = ds[i].tolist()
                assert ids[-1] == 2 and 1 not in ids  # </s> at the end, never <pad>
                assert enc.decode(ids) == texts[i]
                assert texts[i] in cleaned
            n += len(ds)
        assert n > 0.95 * len(raw)


def test_matches_fairseq_preprocess(data_all, tmp_path):
    """Our binarizer and `fairseq-preprocess --srcdict dict.txt` on the spm-encoded text agree id for id."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(data_all / "spm.model"))
    texts = (data_all / "mono" / "valid.ja.txt").read_text(encoding="utf-8").splitlines()
    (tmp_path / "valid.ja").write_text("".join(" ".join(sp.encode(t, out_type=str)) + "\n" for t in texts),
                                       encoding="utf-8")
    code = ("import sys, argparse, torch; torch.serialization.add_safe_globals([argparse.Namespace]); "
            "from fairseq_cli.preprocess import cli_main; sys.argv=sys.argv[:1]+sys.argv[1:]; cli_main()")
    subprocess.run([sys.executable, "-c", code, "--only-source", "--srcdict", str(data_all / "dict.txt"),
                    "--trainpref", str(tmp_path / "valid.ja"), "--destdir", str(tmp_path / "fs"),
                    "--dataset-impl", "mmap", "--workers", "1"], check=True, capture_output=True)
    theirs = _load(tmp_path / "fs" / "train")
    ours = _load(data_all / "mono" / "valid.ja")
    assert len(theirs) == len(ours) > 50
    for i in range(len(ours)):
        assert np.array_equal(theirs[i].numpy().astype(np.int64), ours[i].numpy().astype(np.int64))


def test_cleaning_rules():
    assert clean_line("  ﬁne\u00a0 day\t\tｆｕｌｌ  ") == "fine day full"
    assert clean_line("a\u200bb\x07c") == "abc"
    assert clean_line(" \t ") == ""


def test_rerun_skips_and_only_changed_inputs_are_redone(vocab_all, tatoeba, tmp_path):
    fr = tmp_path / "fr.txt"
    fr.write_text((tatoeba / "tatoeba.fr-en.fr").read_text(encoding="utf-8"), encoding="utf-8")
    args = ["--vocab", vocab_all, "--para", f"fr-en={fr},{tatoeba}/tatoeba.fr-en.en",
            "--para", f"de-en={tatoeba}/tatoeba.de-en.de,{tatoeba}/tatoeba.de-en.en",
            "--mono", f"de={tatoeba}/tatoeba.de-en.de", "--out", tmp_path / "d"]
    cli("prep-data", *args)
    d = tmp_path / "d"
    stamp = {p.name: p.stat().st_mtime_ns for p in (d / "para").iterdir()}
    res = cli("prep-data", *args)
    assert "0 prepared, 3 up to date" in res.output
    assert {p.name: p.stat().st_mtime_ns for p in (d / "para").iterdir()} == stamp
    lines = fr.read_text(encoding="utf-8").splitlines()
    lines[0] = "Une phrase changée."
    fr.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = cli("prep-data", *args)
    assert "1 prepared, 2 up to date" in res.output
    assert (d / "para" / "train.de-en.de.bin").stat().st_mtime_ns == stamp["train.de-en.de.bin"]
    assert (d / "para" / "train.fr-en.fr.bin").stat().st_mtime_ns != stamp["train.fr-en.fr.bin"]


def test_triple_bar_file_and_filters(vocab_all, tmp_path):
    f = tmp_path / "pairs.txt"
    f.write_text("Hello world. ||| Bonjour le monde.\n"
                 "Hello world. ||| Bonjour le monde.\n"       # duplicate pair
                 "  ||| vide\n"                                  # empty side
                 "Yes. ||| Oui, c'est une très très longue phrase qui ne traduit pas du tout ce oui.\n"  # ratio
                 "Good   morning ||| Bon\u00a0matin\n", encoding="utf-8")
    res = cli("prep-data", "--vocab", vocab_all, "--para", f"en-fr={f}", "--valid-size", 0, "--out", tmp_path / "d")
    m = json.loads((tmp_path / "d" / "manifest.json").read_text())
    c = m["para"]["en-fr"]["counts"]
    assert c == {"input": 5, "empty": 1, "duplicate": 1, "too_short": 0, "too_long": 0, "ratio": 1, "kept": 2}
    assert (tmp_path / "d" / "para" / "train.en-fr.fr.txt").read_text(encoding="utf-8") == "Bonjour le monde.\nBon matin\n"
    assert "en-fr" in res.output


def _bad(vocab_all, tmp_path, *args):
    out = tmp_path / "out"
    res = cli("prep-data", "--vocab", vocab_all, *args, "--out", out, ok=None)
    assert res.exit_code == 2, res.output
    assert "fix:" in res.output
    assert not (out / "manifest.json").exists()
    return res.output


def test_bad_line_counts(vocab_all, tatoeba, tmp_path):
    out = _bad(vocab_all, tmp_path, "--para", f"fr-en={tatoeba}/tatoeba.fr-en.fr,{tatoeba}/tatoeba.sw-en.en")
    assert "1000 lines" in out and "390" in out


def test_bad_triple_bar_line(vocab_all, tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("a ||| b\nc ||| d\nno separator here\n", encoding="utf-8")
    out = _bad(vocab_all, tmp_path, "--para", f"en-fr={f}")
    assert "p.txt:3" in out


def test_bad_utf8_and_missing(vocab_all, tmp_path):
    f = tmp_path / "m.txt"
    f.write_bytes(b"ok\nok again\n\xff\xfe broken\n")
    assert "m.txt:3" in _bad(vocab_all, tmp_path, "--mono", f"fr={f}")
    assert "does not exist" in _bad(vocab_all, tmp_path, "--mono", f"fr={tmp_path}/none.txt")
    assert "ISO 639" in _bad(vocab_all, tmp_path, "--mono", f"xx1={f}")
    assert "pair" in _bad(vocab_all, tmp_path, "--para", f"en={f},{f}")


def test_bad_second_input_leaves_nothing(vocab_all, tatoeba, tmp_path):
    _bad(vocab_all, tmp_path, "--para", f"fr-en={tatoeba}/tatoeba.fr-en.fr,{tatoeba}/tatoeba.fr-en.en",
         "--para", f"de-en={tatoeba}/tatoeba.de-en.de,{tmp_path}/missing.en")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.bin"))


def test_other_vocab_is_refused(vocab_all, tatoeba, tmp_path):
    v2 = tmp_path / "v2"
    cli("prep-vocab", "--input", f"fr={tatoeba}/tatoeba.fr-en.fr", "--vocab-size", 500, "--out", v2)
    d = tmp_path / "d"
    cli("prep-data", "--vocab", vocab_all, "--mono", f"fr={tatoeba}/tatoeba.fr-en.fr", "--out", d)
    res = cli("prep-data", "--vocab", v2, "--mono", f"fr={tatoeba}/tatoeba.fr-en.fr", "--out", d, ok=None)
    assert res.exit_code == 2 and "another vocabulary" in res.output
    res = cli("prep-data", "--vocab", v2, "--mono", f"fr={tatoeba}/tatoeba.fr-en.fr", "--out", v2, ok=None)
    assert res.exit_code == 2 and "vocabulary" in res.output
    cli("prep-data", "--vocab", v2, "--mono", f"fr={tatoeba}/tatoeba.fr-en.fr", "--out", d, "--force")
    assert json.loads((d / "manifest.json").read_text())["vocab"]["dict_size"] == 500 + 1


def test_prep_data_align_stores_word_alignments(vocab_all, tatoeba, tmp_path):
    import shutil

    if shutil.which("eflomal-align") is None:
        pytest.skip("eflomal (xling[align]) not installed")
    from xling.align.tokenize import tokenize

    d = tmp_path / "d"
    cli("prep-data", "--vocab", vocab_all, "--para", f"fr-en={tatoeba}/tatoeba.fr-en.fr,{tatoeba}/tatoeba.fr-en.en",
        "--align", "--out", d)
    assert json.loads((d / "manifest.json").read_text())["para"]["fr-en"]["aligned"] is True
    for split in ("train", "valid"):
        src = (d / "para" / f"{split}.fr-en.fr.txt").read_text(encoding="utf-8").splitlines()
        tgt = (d / "para" / f"{split}.fr-en.en.txt").read_text(encoding="utf-8").splitlines()
        al = (d / "para" / f"{split}.fr-en.align").read_text(encoding="utf-8").splitlines()
        assert len(al) == len(src) == len(tgt)
        diag = links = 0
        for s, t, a in zip(src, tgt, al):
            ns, nt = len(tokenize(s, "unicode", True)), len(tokenize(t, "unicode", True))
            for link in a.split():
                i, j = map(int, link.split("-"))
                assert 0 <= i < ns and 0 <= j < nt
                links += 1
                diag += abs(i / ns - j / nt) < 0.25
        assert links > len(src)  # more than one link per pair on average
        assert diag / links > 0.7  # fr-en is mostly monotone
