"""``xling run EXPERIMENT.yaml`` through the CLI on ../shared/data: the example experiment from an empty directory
to the end and again as a no-op, a broken stage that stops its dependents, bad stage options, --dry-run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SHARED, cli

EXAMPLE = REPO / "examples" / "tiny-experiment.yaml"


def _markers(d: Path) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in (d / ".xling-run").iterdir()}


def test_example_experiment_runs_to_the_end_then_is_a_no_op(shared_env, tmp_path, monkeypatch):
    d = tmp_path / "exp"
    plan = cli("run", EXAMPLE, "--dir", d, "--dry-run").output
    assert "xling pretrain --data" in plan and "--cpu-procs 2" in plan and "--keep-interval-updates -1" in plan
    assert plan.count("xling eval xglue --model") == 2 and not d.exists()  # a dry run writes nothing
    tb = tmp_path / "tb"
    monkeypatch.delenv("WANDB_MODE", raising=False)  # W&B's default here: offline
    res = cli("run", EXAMPLE, "--dir", d, "--tensorboard", tb, "--wandb", "xling-tests")
    for stage in ("vocab", "data", "align", "pretrain", "eval_pos", "retrieval", "compare"):
        assert f"{stage}: done in" in res.output, res.output
        assert (d / "logs" / f"{stage}.log").is_file()
    run = json.loads((d / "pretrain" / "pretrain.json").read_text())
    assert run["num_updates"] == 20 and run["tasks"] == ["mlm", "tlm"] and "--distributed-world-size 2" in run["command"]
    assert (d / "pretrain" / "config.yaml").is_file() and (d / "align" / "en-fr.pharaoh").is_file()
    rep = json.loads((d / "eval_pos" / "checkpoints.json").read_text())
    cells = {(r["update"], r["task"], r["lang"]): r for r in rep["rows"]}
    assert set(cells) == {(u, "pos", lg) for u in (10, 20) for lg in ("en", "de", "fr")}
    assert all(0 < r["test"] <= 100 and 0 < r["dev"] <= 100 for r in rep["rows"])
    for u in (10, 20):  # each row is that checkpoint's own eval xglue result
        res_u = json.loads((d / "eval_pos" / f"u{u}" / "results.json").read_text())
        assert cells[(u, "pos", "fr")]["test"] == res_u["tasks"]["pos"]["splits"]["test"]["langs"]["fr"]["mean"]
        assert json.loads((d / "eval_pos" / "models" / f"u{u}" / "source.json").read_text())["update"] == u
    # the two checkpoints are different models
    assert cells[(10, "pos", "en")]["test"] != cells[(20, "pos", "en")]["test"]
    zs = rep["zero_shot"]["pos"]
    assert zs["10"] == pytest.approx((cells[(10, "pos", "de")]["test"] + cells[(10, "pos", "fr")]["test"]) / 2)
    assert (d / "eval_pos" / "zero_shot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # live curves: fairseq's pretraining scalars, each checkpoint's scores at its update
    from xling.experiment.track import read_scalars

    pre = read_scalars(tb / "pretrain")
    for tag in ("train_inner/mlm_loss", "train_inner/tlm_loss", "train_inner/lr", "train_inner/wps", "valid/loss"):
        assert pre.get(tag), (tag, sorted(pre))
    curve = json.loads((d / "pretrain" / "pretrain.json").read_text())["curve"]
    assert [s for s, _ in pre["train_inner/mlm_loss"]] == [int(c["num_updates"]) for c in curve]
    assert [v for _, v in pre["train_inner/mlm_loss"]] == pytest.approx([c["mlm_loss"] for c in curve], abs=1e-3)
    ev = read_scalars(tb / "eval_pos")
    assert ev["pos/fr/test"] == [(u, pytest.approx(cells[(u, "pos", "fr")]["test"], abs=1e-4)) for u in (10, 20)]
    assert [u for u, _ in ev["pos/zero_shot"]] == [10, 20]
    # the same through W&B, offline: one run per tracked stage in DIR/wandb/, read back from its .wandb file
    from xling.experiment.track_wandb import runs

    wb = {r["job_type"]: r for r in runs(d)}
    assert all(r["ended"] for r in wb.values())
    assert sorted(wb) == ["eval_pos", "pretrain"] and {(r["project"], r["group"]) for r in wb.values()} == \
        {("xling-tests", "tiny")} and wb["pretrain"]["name"] == "tiny/pretrain", wb
    assert len(list(d.glob("wandb/offline-run-*"))) == 2  # no empty run folder per progress bar (xlmplug.wandb_import)
    h = wb["pretrain"]["history"]
    for key in ("mlm_loss", "tlm_loss", "lr", "wps"):
        assert h[f"train_inner/{key}"] == [(int(c["num_updates"]), pytest.approx(c[key])) for c in curve], key
    assert [s for s, _ in h["valid/loss"]] == [s for s, _ in pre["valid/loss"]]
    h = wb["eval_pos"]["history"]
    assert h["pos/fr/test"] == [(u, pytest.approx(cells[(u, "pos", "fr")]["test"])) for u in (10, 20)]
    assert h["pos/de/dev"] == [(u, pytest.approx(cells[(u, "pos", "de")]["dev"])) for u in (10, 20)]
    assert h["pos/zero_shot"] == [(int(u), pytest.approx(v)) for u, v in zs.items()]
    before = _markers(d)
    again = cli("run", EXAMPLE, "--dir", d)  # without --tensorboard/--wandb: tracking is not part of the plan
    cmp = json.loads((d / "compare.json").read_text())
    assert "pos" in json.dumps(cmp) and (d / "retrieval" / "results.json").is_file()
    assert again.output.count("done, skipped") == 7 and "done in" not in again.output
    assert _markers(d) == before
    status = cli("run", EXAMPLE, "--dir", d, "--status").output
    assert status.count(" done ") >= 7 and "checkpoints × task × language" in status


def _write(path: Path, exp: dict) -> Path:
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    return path


def _small(t: Path, mono: str) -> dict:
    return {"name": "small", "stages": {
        "vocab": {"command": "prep-vocab", "options": {"input": [f"en={t}/tatoeba.fr-en.en",
                                                                 f"fr={t}/tatoeba.fr-en.fr"],
                                                       "vocab_size": 600, "threads": 1}},
        "data": {"command": "prep-data", "after": ["vocab"],
                 "options": {"vocab": "${dir}/vocab", "mono": [mono], "valid_size": 50, "workers": 1}},
        "pretrain": {"command": "pretrain", "after": ["data"],
                     "options": {"data": "${dir}/data", "preset": "tiny", "max_updates": 2}}}}


def test_broken_stage_stops_its_dependents(shared_env, tmp_path):
    t = SHARED / "tatoeba"
    d = tmp_path / "exp"
    exp = _write(tmp_path / "small.yaml", _small(t, f"en={tmp_path}/missing.en"))
    res = cli("run", exp, "--dir", d, ok=None)
    assert res.exit_code == 2, res.output
    assert "vocab: done in" in res.output and "data: failed (exit 2)" in res.output
    assert "missing.en" in res.output and "pretrain: not run: it needs data, which failed" in res.output
    assert res.output.count("error:") >= 1 and "stage data failed" in res.output
    assert not (d / "pretrain").exists()
    status = cli("run", exp, "--dir", d, "--status").output
    assert "failed" in status and "waiting" in status
    # fixed: vocab is skipped, data runs; a changed option re-runs only its stage
    _write(exp, {**_small(t, f"en={t}/tatoeba.fr-en.en"), "stages": {
        k: v for k, v in _small(t, f"en={t}/tatoeba.fr-en.en")["stages"].items() if k != "pretrain"}})
    res = cli("run", exp, "--dir", d)
    assert "vocab: done, skipped" in res.output and "data: done in" in res.output
    spec = yaml.safe_load(exp.read_text())
    spec["stages"]["data"]["options"]["valid_size"] = 60
    _write(exp, spec)
    assert "changed" in cli("run", exp, "--dir", d, "--status").output
    res = cli("run", exp, "--dir", d)
    assert "vocab: done, skipped" in res.output and "data: done in" in res.output


def test_bad_experiments_are_one_exit_2_error(shared_env, tmp_path):
    t = SHARED / "tatoeba"
    cases = []
    bad_key = _small(t, f"en={t}/tatoeba.fr-en.en")
    bad_key["stages"]["pretrain"]["options"]["max_update"] = 3
    cases.append((bad_key, ["stage 'pretrain'", "unknown key 'max_update'", "did you mean 'max_updates'"]))
    bad_value = _small(t, f"en={t}/tatoeba.fr-en.en")
    bad_value["stages"]["vocab"]["options"]["vocab_size"] = "big"
    cases.append((bad_value, ["stage 'vocab'", "'vocab_size'", "big"]))
    bad_dep = _small(t, f"en={t}/tatoeba.fr-en.en")
    bad_dep["stages"]["pretrain"]["after"] = ["dta"]
    cases.append((bad_dep, ["'dta'", "did you mean 'data'"]))
    cycle = _small(t, f"en={t}/tatoeba.fr-en.en")
    cycle["stages"]["vocab"]["after"] = ["pretrain"]
    cases.append((cycle, ["cycle"]))
    bad_cmd = _small(t, f"en={t}/tatoeba.fr-en.en")
    bad_cmd["stages"]["vocab"]["command"] = "prep-vocabulary"
    cases.append((bad_cmd, ["unknown command `xling prep-vocabulary`", "prep-vocab"]))
    ck = _small(t, f"en={t}/tatoeba.fr-en.en")
    ck["stages"]["ev"] = {"command": "eval xglue", "checkpoints": {"of": "pretrain", "every": 1},
                          "options": {"data": str(SHARED / "xglue-real"), "save_interval": 3}}
    cases.append((ck, ["unknown key 'save_interval'"]))
    for i, (spec, words) in enumerate(cases):
        f = _write(tmp_path / f"e{i}.yaml", spec)
        res = cli("run", f, "--dir", tmp_path / f"d{i}", "--dry-run", ok=None)
        assert res.exit_code == 2 and res.output.count("error:") == 1 and "fix:" in res.output, res.output
        assert str(f) in res.output and not (tmp_path / f"d{i}").exists()
        for w in words:
            assert w in res.output, (w, res.output)
    # checkpoints at updates the pretraining's own save interval does not save
    ck["stages"]["ev"]["options"].pop("save_interval")
    ck["stages"]["pretrain"]["options"]["save_interval"] = 3
    res = cli("run", _write(tmp_path / "ck.yaml", ck), "--dir", tmp_path / "ck", "--dry-run", ok=None)
    assert res.exit_code == 2 and "save_interval 3 does not save updates [1, 2]" in res.output
    ck["stages"]["pretrain"]["options"].pop("save_interval")
    ck["stages"]["ev"]["checkpoints"]["every"] = 4
    res = cli("run", _write(tmp_path / "ck.yaml", ck), "--dir", tmp_path / "ck", "--dry-run", ok=None)
    assert res.exit_code == 2 and "every 4 updates" in res.output and "max_updates 2" in res.output
    ck["stages"]["ev"]["checkpoints"]["every"] = 1
    out = cli("run", _write(tmp_path / "ck.yaml", ck), "--dir", tmp_path / "ck", "--dry-run").output
    assert "--save-interval 1" in out and out.count("xling eval xglue") == 2 and not (tmp_path / "ck").exists()
