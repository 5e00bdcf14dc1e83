"""Language metadata and the --langs family/genus/script selectors of prep-vocab, prep-data and pretrain,
through the CLI on tatoeba slices."""
from __future__ import annotations

import json

from conftest import cli, shared_path


def test_family_selection_in_prep_vocab_prep_data_and_pretrain(tmp_path):
    t = shared_path("tatoeba")
    inputs = {lg: t / f"tatoeba.{lg}-en.{lg}" for lg in ("fr", "de", "es", "ru", "it", "bg")}
    vocab_args = ["prep-vocab", "--out", tmp_path / "vocab", "--vocab-size", 600, "--threads", 1,
                  *[a for lg, p in inputs.items() for a in ("-i", f"{lg}={p}")]]
    cli(*vocab_args, "--langs", "family:romance,script:cyrillic")
    stats = json.loads((tmp_path / "vocab" / "stats.json").read_text())
    assert list(stats["langs"]) == ["fr", "es", "ru", "it", "bg"]  # the inputs' order; de left out
    data = tmp_path / "data"
    cli("prep-data", "--vocab", tmp_path / "vocab", "--out", data, "--valid-size", 50,
        *[a for lg, p in inputs.items() for a in ("--mono", f"{lg}={p}")], "--langs", "genus:romance,ru,bg")
    assert sorted(json.loads((data / "manifest.json").read_text())["langs"]) == ["bg", "es", "fr", "it", "ru"]
    cmd = cli("pretrain", "--data", data, "--out", tmp_path / "pt", "--preset", "tiny", "--langs", "family:slavic",
              "--dry-run").output
    assert "--langs bg,ru" in cmd or "--langs ru,bg" in cmd
    # an unknown family; an input language without metadata: one exit-2 error with the fix, nothing written
    res = cli(*vocab_args, "--langs", "family:elvish", ok=None)
    assert res.exit_code == 2 and "unknown family 'elvish'" in res.output and "fix:" in res.output
    qq = tmp_path / "qq.txt"
    qq.write_text("some text\n" * 20, encoding="utf-8")
    res = cli("prep-vocab", "--out", tmp_path / "v2", "-i", f"fr={inputs['fr']}", "-i", f"qaa={qq}",
              "--langs", "family:romance", ok=None)
    assert res.exit_code == 2 and "no family/script metadata for qaa" in res.output and "fix:" in res.output
    assert not (tmp_path / "v2").exists()
    res = cli("pretrain", "--data", data, "--out", tmp_path / "pt2", "--preset", "tiny", "--langs", "family:elvish",
              "--dry-run", ok=None)
    assert res.exit_code == 2 and "unknown family" in res.output


def test_language_metadata_table():
    from xling import languages

    ru, zh, it = languages.info("ru"), languages.info("zh-Hans"), languages.info("it")
    assert (ru.family, ru.genus, ru.script, ru.iso639_3) == ("Indo-European", "Slavic", "Cyrl", "rus")
    assert (zh.genus, zh.script, zh.iso639_3) == ("Chinese", "Hani", "zho") and it.genus == "Romance"
    pos = "bg de en es fr it nl pl pt ru zh".split()
    assert languages.select("family:romance", pos) == ["es", "fr", "it", "pt"]
    assert languages.select("script:cyrillic", pos) == ["bg", "ru"]
    assert languages.select("family:germanic,zh", pos) == ["de", "en", "nl", "zh"]
    xtreme = ("af ar bg bn de el en es et eu fa fi fr he hi hu id it ja jv ka kk ko ml mr ms my nl pt qu ru sw ta "
              "te th tl tr ur vi yo zh").split()
    assert all(languages.info(lg) is not None for lg in xtreme + ["pl", "ro"])
