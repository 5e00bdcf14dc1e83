"""``--executor local|slurm`` on ``xling pretrain`` and ``xling eval xglue``: the command as one SLURM job through the
experiment machinery (a one-stage experiment in ``OUT.slurm``), on the real one-node SLURM of tests/slurm_local.py
(skipped with the reason where it cannot start); the one SLURM flag vocabulary of run, pretrain and eval xglue;
the errors of bad executor options."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import cli, shared_path, tiny
from test_experiment import EXAMPLE
from test_experiment_slurm import slurm  # noqa: F401  (the module's own one-node SLURM)


def _said(output: str) -> str:
    """Output with rich's boxes and wrapping undone (a table's title wraps to the table's width)."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def _sbatch(output: str) -> str:
    """The sbatch file a --dry-run printed."""
    return output[output.index("#!/bin/bash"):]


def test_one_flag_vocabulary(shared_env):
    """run, pretrain and eval xglue take the same SLURM options (one declaration); pretrain's and eval xglue's own
    --nodes and --gpus are the job's, where run has --nodes and --gpus-per-node (also spelled --gpus)."""
    import typer

    from xling.cli.main import app

    root = typer.main.get_command(app)
    cmds = {"run": root.commands["run"], "pretrain": root.commands["pretrain"],
            "eval xglue": root.commands["eval"].commands["xglue"]}
    flags = {n: {o for p in c.params if p.name in c.slurm_params for o in p.opts} for n, c in cmds.items()}
    common = {"--executor", "--wait", "--partition", "--account", "--qos", "--time", "--cpus-per-task", "--mem",
              "--constraint", "--sbatch", "--signal-seconds"}
    assert flags["pretrain"] == flags["eval xglue"] - {"--dry-run"} == common
    assert flags["run"] == common | {"--nodes", "--gpus-per-node", "--gpus"}
    for c in ("pretrain", "eval xglue"):
        own = {o for p in cmds[c].params for o in p.opts}
        assert {"--nodes", "--gpus"} <= own and "--gpus-per-node" not in own
    plan = cli("run", EXAMPLE, "--dir", "/nonexistent/exp", "--executor", "slurm", "--dry-run", "--gpus", "4").output
    pre = plan[plan.index("slurm/pretrain.sbatch"):]
    assert "#SBATCH --gpus-per-node=4" in pre[:pre.index("exit")]


def test_bad_executor_options_are_one_clear_error(tmp_path, monkeypatch):
    base = ["pretrain", "--data", tmp_path / "d", "--out", tmp_path / "p"]
    res = cli(*base, "--executor", "cluster", ok=None)
    assert res.exit_code == 2 and "--executor 'cluster': use local (run here) or slurm" in _said(res.output)
    res = cli(*base, "--partition", "gpu", ok=None)
    assert res.exit_code == 2 and "--partition is an option of --executor slurm" in res.output
    assert "add --executor slurm, or leave --partition out" in res.output
    res = cli("eval", "xglue", "--model", tmp_path, "--data", tmp_path, "--dry-run", ok=None)
    assert res.exit_code == 2 and "has no dry run of its own: --dry-run prints its SLURM job" in res.output
    res = cli("eval", "xglue", "--model", tmp_path, "--data", tmp_path, "--executor", "slurm", "--nodes", "2",
              ok=None)
    assert res.exit_code == 2 and "is submitted as a one-node job" in res.output
    res = cli(*base, "--executor", "slurm", "--dry-run", ok=None)  # pretrain's own checks, before a job
    assert res.exit_code == 2 and "data directory does not exist" in res.output
    assert not (tmp_path / "p.slurm").exists()
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    res = cli(*base, "--executor", "slurm", ok=None)
    assert res.exit_code == 2 and "--executor slurm: sbatch not found" in res.output
    assert "or use --executor local" in res.output and not (tmp_path / "p.slurm").exists()
    exp = tmp_path / "e.yaml"
    stage = {"command": "pretrain", "options": {"data": "d", "partition": "x"}}
    exp.write_text(yaml.safe_dump({"stages": {"p": stage}}))
    res = cli("run", exp, "--dry-run", ok=None)
    assert res.exit_code == 2 and "partition is not a stage option" in res.output and "--partition" in res.output


def test_pretrain_as_a_slurm_job(slurm, shared_env, data_dir, tmp_path):  # noqa: F811
    out = tmp_path / "p"
    cfg = tmp_path / "slurm.yaml"  # the executor options through --config too
    cfg.write_text("executor: slurm\ntime: '00:20:00'\n")
    plan = cli(*tiny(data_dir, out, "--max-updates", 20, "--cpu-procs", 2), "--config", cfg, "--dry-run").output
    script = _sbatch(plan)
    assert "#SBATCH --time=00:20:00" in script and "#SBATCH --cpus-per-task=2" in script
    assert f"run {tmp_path / 'p.slurm' / 'experiment.yaml'} --dir {tmp_path / 'p.slurm'} --only pretrain" in script
    assert f"xling pretrain --data {data_dir} --out {out} --preset tiny" in plan and "--max-updates 20" in plan
    assert not out.exists() and not (tmp_path / "p.slurm").exists()  # a dry run writes nothing
    args = tiny(data_dir, out, "--max-updates", 20, "--log-interval", 5, "--executor", "slurm")
    first = cli(*args, "--sbatch", "--hold").output  # held: still queued, whatever the machine's speed
    assert "submitted to SLURM" in _said(first)
    # changed options while its job is queued: refused; the same options: not submitted again, waited for
    res = cli(*tiny(data_dir, out, "--max-updates", 30, "--executor", "slurm"), ok=None)
    assert res.exit_code == 2 and "still queued or running, with other options" in res.output, res.output
    subprocess.run(["scontrol", "release", re.search(r"pretrain\s+│\s+pretrain\s+│\s+(\d+)", first).group(1)],
                   check=True)
    res = cli(*args, "--wait")
    assert "in the queue already" in _said(res.output) and "submitted to SLURM" not in _said(res.output), res.output
    assert re.search(r"pretrain\s+│\s+pretrain\s+│\s+-\s+│\s+done", res.output), res.output
    run = json.loads((out / "pretrain.json").read_text())
    assert run["num_updates"] == 20 and [c["num_updates"] for c in run["curve"]] == [5, 10, 15, 20]
    logs = tmp_path / "p.slurm" / "logs"
    assert len(list(logs.glob("pretrain.slurm-*.log"))) == 1  # the job's, and the command's own output:
    assert f"$ xling pretrain --data {data_dir}" in (logs / "pretrain.log").read_text()
    assert f"log: {logs / 'pretrain.log'}" in res.output
    recorded = yaml.safe_load((out / "config.yaml").read_text())  # by the job's `xling pretrain`
    assert recorded["max_updates"] == 20 and not {"executor", "time", "wait"} & set(recorded)
    again = cli(*args).output
    assert "submitted" not in again and " done " in again


def _small_pos(root: Path) -> Path:
    pos, data = shared_path("xglue-real", "POS"), root / "POS"
    data.mkdir(parents=True)
    for lg, split in (("en", "train"), ("en", "dev"), ("en", "test"), ("fr", "dev"), ("fr", "test")):
        blocks = (pos / f"{lg}.{split}").read_text(encoding="utf-8").split("\n\n")[:30]
        (data / f"{lg}.{split}").write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return root


def test_eval_xglue_as_a_slurm_job(slurm, tiny_model, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data = _small_pos(tmp_path / "data")
    base = ["eval", "xglue", "--model", tiny_model, "--data", data, "--tasks", "pos", "--recipe", "quick",
            "--epochs", 1, "--max-train-examples", 30, "--max-length", 64, "--lr", 0.002]
    plan = cli(*base, "--out", tmp_path / "x", "--executor", "slurm", "--dry-run", "--gpus", 2, "--mem", "8G").output
    script = _sbatch(plan)
    assert "#SBATCH --gpus-per-node=2" in script and "#SBATCH --mem=8G" in script and "--only xglue" in script
    assert "xling eval xglue --model" in plan and "--gpus 2" in plan and not (tmp_path / "x.slurm").exists()
    res = cli(*base, "--out", tmp_path / "x", "--executor", "slurm", "--wait")
    assert "submitted to SLURM" in _said(res.output) and re.search(r"│\s+done\s+│", res.output), res.output
    cli(*base, "--out", tmp_path / "here")
    a, b = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("x", "here"))
    assert a["signature"] == b["signature"]
    assert a["tasks"]["pos"]["splits"]["test"]["langs"] == b["tasks"]["pos"]["splits"]["test"]["langs"]
    assert list((tmp_path / "x.slurm" / "logs").glob("xglue.slurm-*.log"))


def test_a_failing_job_is_one_clear_error(slurm, tmp_path):  # noqa: F811
    """--wait on a job whose command fails: exit 2 with the command's own error and its log."""
    data = _small_pos(tmp_path / "data")
    res = cli("eval", "xglue", "--model", tmp_path / "no-model", "--data", data, "--tasks", "pos", "--out",
              tmp_path / "x", "--executor", "slurm", "--wait", ok=None)
    said = _said(res.output)
    assert res.exit_code == 2 and "stage xglue failed: error:" in said, res.output
    assert str(tmp_path / "no-model") in said and str(tmp_path / "x.slurm" / "logs" / "xglue.log") in said
