"""``--config FILE`` on every command (cli/_config.py): keys are option names, command line > config > preset >
default, one exit-2 error for a bad key or value, and OUT/config.yaml repeats a run (same signature)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from conftest import cli, shared_path, tiny


def _flag(cmd: str, flag: str) -> str:
    return re.search(rf"{flag} (\S+)", cmd).group(1)


def test_bad_keys_and_values_are_one_exit_2_error(tmp_path):
    cases = [("max_updatez: 3\n", ["max_updatez", "did you mean 'max_updates'", ":1:"]),
             ("preset: tiny\nlr: fast\n", ["'lr'", "--lr", "fast", ":2:"]),
             ("tlm: maybe\n", ["'tlm'", "maybe"]),
             ("langs: [en\n", ["cannot read the config"]),
             ("- a\n- b\n", ["must be a mapping"])]
    for i, (text, words) in enumerate(cases):
        f = tmp_path / f"c{i}.yaml"
        f.write_text(text)
        res = cli("pretrain", "--config", f, ok=None)
        assert res.exit_code == 2, res.output
        assert res.output.count("error:") == 1 and str(f) in res.output and "fix:" in res.output, res.output
        for w in words:
            assert w in res.output, (w, res.output)
    ranged = tmp_path / "range.yaml"
    ranged.write_text("samples: 100\nalpha: 1.5\n")  # the option's own range check names the file too
    res = cli("eval", "compare", "--config", ranged, "a", "b", ok=None)
    assert res.exit_code == 2 and f"{ranged}:2" in res.output and "out of range" in res.output, res.output
    assert res.output.count("error:") == 1
    res = cli("eval", "xglue", "--config", tmp_path / "missing.yaml", ok=None)
    assert res.exit_code == 2 and "config file not found" in res.output
    toml = tmp_path / "c.toml"
    toml.write_text('taskz = "pos"\n')
    res = cli("eval", "xglue", "--config", toml, ok=None)
    assert res.exit_code == 2 and "did you mean 'tasks'" in res.output and "c.toml:1" in res.output


def test_command_line_beats_config_beats_preset(data_dir, tmp_path):
    """pretrain --dry-run prints the fairseq command: the preset's values, the config's, the command line's."""
    out = tmp_path / "run"
    preset_only = cli(*tiny(data_dir, out), "--dry-run").output
    cfg = tmp_path / "pretrain.yaml"
    cfg.write_text(yaml.safe_dump({"data": str(data_dir), "preset": "tiny", "max_updates": 7, "lr": 0.0003,
                                   "langs": ["en", "fr"], "save_interval": 5}))
    from_config = cli("pretrain", "--config", cfg, "--out", out, "--dry-run").output
    both = cli("pretrain", "--config", cfg, "--out", out, "--lr", "0.0005", "--dry-run").output
    assert _flag(preset_only, "--max-update") != "7" and _flag(from_config, "--max-update") == "7"
    assert float(_flag(from_config, "--lr")) == 0.0003 and float(_flag(both, "--lr")) == 0.0005
    assert _flag(both, "--max-update") == "7"  # the config's, where the command line says nothing
    # a config's preset is the preset: values the config leaves out come from it
    assert _flag(from_config, "--arch") == _flag(preset_only, "--arch")
    assert _flag(from_config, "--tokens-per-sample") == _flag(preset_only, "--tokens-per-sample")
    assert _flag(preset_only, "--langs") == "de,en,fr" and _flag(from_config, "--langs") == "en,fr"  # list -> csv
    assert not (out / "config.yaml").exists()  # a dry run writes nothing


def test_resolved_config_repeats_an_eval_run(tiny_model, tmp_path):
    pos = shared_path("xglue-real", "POS")
    data = tmp_path / "data" / "POS"
    data.mkdir(parents=True)
    for lg, split in (("en", "train"), ("en", "dev"), ("en", "test"), ("fr", "dev"), ("fr", "test")):
        blocks = (pos / f"{lg}.{split}").read_text(encoding="utf-8").split("\n\n")[:30]
        (data / f"{lg}.{split}").write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    cfg = tmp_path / "eval.toml"
    cfg.write_text(f'model = "{tiny_model}"\ndata = "{data.parent}"\ntasks = "pos"\nrecipe = "quick"\nepochs = 1\n'
                   f'max_train_examples = 30\nmax_length = 64\nlr = 0.002\nout = "{tmp_path / "a"}"\n')
    cli("eval", "xglue", "--config", cfg, "--lr", "0.001")
    rec = tmp_path / "a" / "config.yaml"
    text = rec.read_text()
    assert text.startswith("# written by xling eval xglue")
    resolved = yaml.safe_load(text)
    assert resolved["lr"] == 0.001 and resolved["epochs"] == 1 and resolved["model"] == str(tiny_model)
    assert resolved["train_lang"] == "en" and resolved["seeds"] == 1  # defaults are recorded too
    cli("eval", "xglue", "--config", rec, "--out", tmp_path / "b")
    a, b = (json.loads((tmp_path / d / "results.json").read_text()) for d in "ab")
    assert a["signature"] == b["signature"] and "lr" in json.dumps(a["hparams"])
    assert a["tasks"]["pos"]["splits"]["test"]["langs"] == b["tasks"]["pos"]["splits"]["test"]["langs"]
    # the recorded file is xling's output: the same run into the same directory is accepted (skipped)
    again = cli("eval", "xglue", "--config", rec)
    assert again.exit_code == 0
    assert yaml.safe_load(Path(rec).read_text()) == resolved
