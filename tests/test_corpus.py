"""prep-data on real bitext (all 20 tatoeba pairs) and hand-made bad inputs."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TATOEBA_LANGS, as_a_terminal_job, cli
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
    from xling.align import eflomal_available

    if not eflomal_available():
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
    # sharded: links are streamed to each shard's file, one line per pair of that shard
    d2 = tmp_path / "d2"
    cli("prep-data", "--vocab", vocab_all, "--para", f"fr-en={tatoeba}/tatoeba.fr-en.fr,{tatoeba}/tatoeba.fr-en.en",
        "--align", "--shard-size", 400, "--out", d2)
    shards = sorted(d2.glob("shard*/para/train.fr-en.align"))
    assert len(shards) == 3
    for a in shards + [d2 / "para" / "valid.fr-en.align"]:
        txt = a.with_name(a.name.replace(".align", ".fr.txt"))
        al, src = a.read_text(encoding="utf-8").splitlines(), txt.read_text(encoding="utf-8").splitlines()
        assert len(al) == len(src) > 0
        assert all(int(x.split("-")[0]) < len(tokenize(s, "unicode", True)) for s, ln in zip(src, al) for x in ln.split())


# ---- streaming, workers, shards, resume (issue 15) ----------------------------------------------

def _data_files(d):
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.suffix in (".bin", ".idx", ".txt", ".align") and p.name != "dict.txt"
            and "parts" not in p.parts}


def _mono_input(tatoeba, tmp_path):
    f = tmp_path / "fr_mono.txt"  # duplicates, blank lines, CRLF and a byte-order mark
    text = (tatoeba / "tatoeba.fr-en.fr").read_text(encoding="utf-8")
    f.write_bytes(b"\xef\xbb\xbf" + (text + "\n  \n" + text[:20000]).replace("\n", "\r\n").encode("utf-8"))
    return f


def test_one_worker_equals_many_and_decodes_to_cleaned_text(vocab_all, tatoeba, tmp_path):
    f = _mono_input(tatoeba, tmp_path)
    args = ["--vocab", vocab_all, "--mono", f"fr={f}", "--para", f"de-en={tatoeba}/tatoeba.de-en.de,{tatoeba}/tatoeba.de-en.en",
            "--valid-size", 50]
    cli("prep-data", *args, "--out", tmp_path / "w1", "--workers", 1, "--chunk-lines", 5000)
    cli("prep-data", *args, "--out", tmp_path / "w2", "--workers", 2, "--chunk-lines", 97)
    one, two = _data_files(tmp_path / "w1"), _data_files(tmp_path / "w2")
    assert one == two and len(one) == 18
    enc = TextEncoder(tmp_path / "w1")
    raw = f.read_text(encoding="utf-8-sig").replace("\r\n", "\n").splitlines()
    cleaned = [c for c in map(clean_line, raw) if c]
    ds, texts = _load(tmp_path / "w1" / "mono" / "train.fr"), (tmp_path / "w1" / "mono" / "train.fr.txt").read_text(
        encoding="utf-8").splitlines()
    valid = (tmp_path / "w1" / "mono" / "valid.fr.txt").read_text(encoding="utf-8").splitlines()
    assert [enc.decode(ds[i].tolist()) for i in range(len(ds))] == texts
    assert sorted(texts + valid) == sorted(set(cleaned))  # every distinct cleaned line once, nothing else
    m = json.loads((tmp_path / "w1" / "manifest.json").read_text())
    assert m["mono"]["fr"]["counts"]["duplicate"] == len(cleaned) - len(set(cleaned)) > 0


def test_dedup_on_disk_buckets_equal_in_memory(tmp_path, monkeypatch):
    from xling.corpus import dedup

    h = np.random.default_rng(0).integers(0, 5000, size=40000).astype("<u8") * np.uint64(0x9E3779B97F4A7C15)
    h.tofile(tmp_path / "h.u64")
    repeats = dedup.first_occurrences(tmp_path / "h.u64", tmp_path / "mem.u8")
    monkeypatch.setattr(dedup, "IN_MEMORY", 1000)
    monkeypatch.setattr(dedup, "BUCKET", 5000)  # 8 buckets of ~5000: one level
    assert dedup.first_occurrences(tmp_path / "h.u64", tmp_path / "disk.u8") == repeats == 40000 - len(set(h.tolist()))
    assert (tmp_path / "mem.u8").read_bytes() == (tmp_path / "disk.u8").read_bytes()
    assert not (tmp_path / "disk.u8.buckets").exists()
    monkeypatch.setattr(dedup, "BUCKET", 40)  # 256 buckets of ~156 records, each partitioned again
    monkeypatch.setattr(dedup, "STEP", 3000)
    assert dedup.first_occurrences(tmp_path / "h.u64", tmp_path / "deep.u8") == repeats
    assert (tmp_path / "mem.u8").read_bytes() == (tmp_path / "deep.u8").read_bytes()
    assert not (tmp_path / "deep.u8.buckets").exists()
    boiler = np.where(np.arange(40000) % 3 == 0, h, np.uint64(7))  # one line repeated in 2 of 3 lines
    boiler.tofile(tmp_path / "b.u64")
    monkeypatch.setattr(dedup, "IN_MEMORY", 10**6)
    mem = dedup.first_occurrences(tmp_path / "b.u64", tmp_path / "bmem.u8")
    monkeypatch.setattr(dedup, "IN_MEMORY", 1000)
    assert dedup.first_occurrences(tmp_path / "b.u64", tmp_path / "bdisk.u8") == mem
    assert (tmp_path / "bmem.u8").read_bytes() == (tmp_path / "bdisk.u8").read_bytes()


def test_shard_size_writes_fairseq_shards(vocab_all, tatoeba, tmp_path):
    from xling.corpus import fairseq_data_arg

    args = ["--vocab", vocab_all, "--para", f"fr-en={tatoeba}/tatoeba.fr-en.fr,{tatoeba}/tatoeba.fr-en.en",
            "--mono", f"sw={tatoeba}/tatoeba.sw-en.sw", "--valid-size", 40]
    cli("prep-data", *args, "--out", tmp_path / "flat")
    res = cli("prep-data", *args, "--out", tmp_path / "sh", "--shard-size", 300)
    assert "(4 shards)" in res.output
    m = json.loads((tmp_path / "sh" / "manifest.json").read_text())
    assert m["shards"] == 4 and fairseq_data_arg(tmp_path / "sh") == ":".join(str(tmp_path / "sh" / f"shard{k}")
                                                                               for k in range(4))
    flat = tmp_path / "flat"
    for name in ("mono/train.sw", "para/train.fr-en.fr", "para/train.fr-en.en"):
        parts = [tmp_path / "sh" / f"shard{k}" / name for k in range(4)]
        assert b"".join(p.with_name(p.name + ".txt").read_bytes() for p in parts) == \
            (flat / f"{name}.txt").read_bytes()
        assert b"".join(p.with_name(p.name + ".bin").read_bytes() for p in parts) == (flat / f"{name}.bin").read_bytes()
        sizes = [len(_load(p)) for p in parts]
        assert max(sizes) - min(sizes) <= 1 and max(sizes) <= 300  # each shard holds an equal part
    for k in range(4):
        d = tmp_path / "sh" / f"shard{k}"
        assert (d / "dict.txt").exists() and json.loads((d / "manifest.json").read_text())["shards"] == 4
        assert (d / "mono" / "valid.sw.txt").read_bytes() == (flat / "mono" / "valid.sw.txt").read_bytes()
    assert cli("prep-data", *args, "--out", tmp_path / "sh", "--shard-size", 300).output.count("up to date") >= 1


def test_shard_parts_merge(vocab_all, tatoeba, tmp_path):
    d = tmp_path / "d"
    args = ["--vocab", vocab_all, "--para", f"fr-en={tatoeba}/tatoeba.fr-en.fr,{tatoeba}/tatoeba.fr-en.en",
            "--mono-from-para", "--valid-size", 30, "--out", d]
    cli("prep-data", *args, "--shard", "0/2")
    res = cli("prep-data", "--out", d, "--merge", ok=None)
    assert res.exit_code == 2 and "1 of 2 are missing" in res.output
    cli("prep-data", *args, "--shard", "1/2")
    cli("prep-data", "--out", d, "--merge")
    m = json.loads((d / "manifest.json").read_text())
    e = m["para"]["fr-en"]
    assert m["shards"] == 2 and e["counts"]["input"] == 1000 and e["sentences"]["valid"] == 30
    assert e["sentences"]["train"] + e["sentences"]["valid"] == e["counts"]["kept"] == sum(e["shards"]) + 30
    for k in range(2):
        assert len(_load(d / f"shard{k}" / "para" / "valid.fr-en.en")) == 30
        assert len(_load(d / f"shard{k}" / "para" / "train.fr-en.en")) == e["shards"][k]
    # the mono valid split of each part came from the pair's valid split of that part
    assert (d / "shard1" / "mono" / "valid.en.txt").read_bytes() == (d / "para" / "valid.fr-en.en.txt").read_bytes()


def test_mono_from_para_valid_comes_from_pair_valid(vocab_all, tatoeba, tmp_path):
    d = tmp_path / "d"
    cli("prep-data", "--vocab", vocab_all, "--para", f"fr-en={tatoeba}/tatoeba.fr-en.fr,{tatoeba}/tatoeba.fr-en.en",
        "--para", f"de-en={tatoeba}/tatoeba.de-en.de,{tatoeba}/tatoeba.de-en.en", "--mono-from-para",
        "--valid-size", 60, "--out", d)

    def lines(name):
        return (d / name).read_text(encoding="utf-8").splitlines()

    pair_valid = set(lines("para/valid.fr-en.en.txt")) | set(lines("para/valid.de-en.en.txt"))
    assert set(lines("mono/valid.en.txt")) == pair_valid
    assert not pair_valid & set(lines("mono/train.en.txt"))
    assert set(lines("mono/valid.fr.txt")) == set(lines("para/valid.fr-en.fr.txt"))


def test_interrupted_run_resumes(vocab_all, tatoeba, tmp_path, monkeypatch):
    from xling.corpus import DataConfig, prepare_data, stream

    monkeypatch.setattr(stream, "CHECKPOINT_SECONDS", 0.0)  # a checkpoint after every chunk

    f = _mono_input(tatoeba, tmp_path)
    cfg = dict(vocab=str(vocab_all), mono=[("fr", str(f))], valid_size=50, workers=1, chunk_lines=100)
    prepare_data(DataConfig(out=str(tmp_path / "ref"), **cfg))
    out = tmp_path / "d"
    (out / "mono" / ".fr.k2j4x_9q").mkdir(parents=True)  # what a killed older run leaves behind
    (out / ".work-mono-de").mkdir()
    calls = []

    def stop(section, key, done, total):
        calls.append(done)
        if len(calls) == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare_data(DataConfig(out=str(out), **cfg), stop)
    state = json.loads((out / ".work-mono-fr" / "state.json").read_text())
    assert 0 < state["counts"]["input"] < 1200 and not (out / "mono" / "train.fr.bin").exists()
    with open(out / ".work-mono-fr" / "side0.bin", "ab") as fh:
        fh.write(b"\0" * 13)  # a half-written chunk past the checkpoint is cut off
    res = prepare_data(DataConfig(out=str(out), **cfg))
    assert res.resumed == ["mono:fr"] and res.done == ["mono:fr"]
    assert _data_files(out) == _data_files(tmp_path / "ref")
    assert not [p.name for p in out.rglob(".*")]


def test_sharded_prep_trains_with_xling_pretrain(vocab_all, tatoeba, tmp_path):
    d = tmp_path / "d"
    cli("prep-data", "--vocab", vocab_all, "--para", f"fr-en={tatoeba}/tatoeba.fr-en.fr,{tatoeba}/tatoeba.fr-en.en",
        "--mono-from-para", "--valid-size", 50, "--shard-size", 350, "--out", d)
    shards = ":".join(str(d.resolve() / f"shard{k}") for k in range(3))
    run = tmp_path / "run"
    args = ["pretrain", "--data", d, "--out", run, "--preset", "tiny", "--tlm", "--max-updates", 40,
            "--log-interval", 5, "--batch-size", 16]
    assert shards in cli(*args, "--dry-run").output.replace("\n", "")
    cli(*args)
    log = (run / "train.log").read_text()
    assert f"loaded 316 examples from: {d.resolve()}/shard0/mono/train.en" in log
    assert "loading train data for epoch 2" in log  # the next epoch reads the next shard
    assert f"from: {d.resolve()}/shard1/mono/train.en" in log
    s = json.loads((run / "pretrain.json").read_text())
    assert s["num_updates"] == 40 and all(np.isfinite(c["loss"]) for c in s["curve"])


def _started_mid_run(vocab_all, tatoeba, tmp_path, workers: int, **popen) -> tuple[list, Path, subprocess.Popen]:
    """A reference prep-data run of 20 copies of tatoeba's French (200-line chunks), then the same run through the
    console entry point in a process of its own with a checkpoint after every chunk, returned once 2000 lines are
    done: ``(args, its OUT, the process)``."""
    import time

    f = tmp_path / "fr.txt"
    base = (tatoeba / "tatoeba.fr-en.fr").read_text(encoding="utf-8").splitlines()
    f.write_text("".join(f"{ln} ({k})\n" for k in range(20) for ln in base), encoding="utf-8")
    args = ["prep-data", "--vocab", vocab_all, "--mono", f"fr={f}", "--workers", workers, "--chunk-lines", 200]
    cli(*args, "--out", tmp_path / "ref")
    out = tmp_path / "d"
    code = ("import xling.corpus.stream as s; s.CHECKPOINT_SECONDS = 0.0; "  # a checkpoint after every chunk
            "from xling.cli.main import main; main()")
    p = subprocess.Popen([sys.executable, "-c", code, *map(str, args), "--out", str(out)], **popen)
    state, t0 = out / ".work-mono-fr" / "state.json", time.monotonic()
    while time.monotonic() - t0 < 120 and p.poll() is None:
        if state.exists() and json.loads(state.read_text())["counts"]["input"] >= 2000:
            break
        time.sleep(0.02)
    assert p.poll() is None, "the run ended before it could be stopped"
    return args, out, p


def _resumes_to_the_reference(args, out: Path, tmp_path) -> None:
    assert not (out / "manifest.json").exists() and not (out / "mono" / "train.fr.bin").exists()
    res = cli(*args, "--out", out)
    assert "resumed from the last checkpoint: mono:fr" in res.output
    assert _data_files(out) == _data_files(tmp_path / "ref")


def test_killed_process_resumes(vocab_all, tatoeba, tmp_path):
    import signal

    args, out, p = _started_mid_run(vocab_all, tatoeba, tmp_path, 1)
    p.send_signal(signal.SIGKILL)
    p.wait()
    _resumes_to_the_reference(args, out, tmp_path)


def _children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (Linux /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in "ZX":
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False


def _ignores(pid: int, sig: int) -> bool:
    """Whether process ``pid`` ignores ``sig`` (Linux /proc: the SigIgn mask)."""
    status = Path(f"/proc/{pid}/status").read_text()
    mask = int(next(ln for ln in status.splitlines() if ln.startswith("SigIgn:")).split()[1], 16)
    return bool(mask & (1 << (sig - 1)))


@pytest.mark.parametrize("how", ["SIGTERM to xling", "Ctrl-C to the process group"])
def test_a_signal_interrupts_prep_data_cleanly_and_it_resumes(vocab_all, tatoeba, tmp_path, how):
    """A scheduler's SIGTERM killed `xling prep-data` on the spot: no message, and its worker processes died on
    broken pipes, a traceback each. Ctrl-C reached the workers too, one of which printed a KeyboardInterrupt
    traceback. Now either ends as an interruption (exit 130, one line, no traceback, no worker left) and the re-run
    resumes from the last checkpoint to the output of an uninterrupted run."""
    import signal
    import time

    args, out, p = _started_mid_run(vocab_all, tatoeba, tmp_path, 2, stderr=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, text=True, start_new_session=True,
                                    preexec_fn=as_a_terminal_job)
    workers = _children(p.pid)
    assert len(workers) >= 2
    assert _ignores(p.pid, signal.SIGINT) is False, "xling ignores SIGINT: the test could not deliver a Ctrl-C"
    if how.startswith("SIGTERM"):
        p.send_signal(signal.SIGTERM)
    else:
        os.killpg(p.pid, signal.SIGINT)
    err = p.communicate(timeout=60)[1]
    assert p.returncode == 130 and "Traceback" not in err, err[-3000:]
    said = [ln for ln in err.splitlines() if ln.startswith("interrupted")]
    assert len(said) == 1 and (not how.startswith("SIGTERM") or "received SIGTERM" in said[0]), err[-2000:]
    t0 = time.monotonic()  # xling reaps its workers before it exits; an orphan would be re-parented and live on
    while any(_alive(w) for w in workers) and time.monotonic() - t0 < 30:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "a worker outlived xling by 30 s"
    _resumes_to_the_reference(args, out, tmp_path)
