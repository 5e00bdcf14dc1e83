"""``xling run --wandb PROJECT`` beyond the example experiment's run (tests/test_experiment.py runs it with
--tensorboard and --wandb on real data and checks the offline runs' numbers): its errors, the flags it adds when a
step runs (not to the plan), offline by default, fairseq's import of wandb only where asked, and the reader of a
run's .wandb file across its 32 KiB blocks."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO, cli

EXAMPLE = REPO / "examples" / "tiny-experiment.yaml"


def test_missing_wandb_or_a_bad_project_is_one_exit_2_error(shared_env, tmp_path, monkeypatch):
    d = tmp_path / "exp"
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    res = cli("run", EXAMPLE, "--dir", d, "--wandb", "p", ok=False)
    assert res.exit_code == 2 and "--wandb needs wandb" in res.output and "pip install 'xling[track]'" in res.output
    monkeypatch.delitem(sys.modules, "wandb")
    res = cli("run", EXAMPLE, "--dir", d, "--wandb", "a/b", ok=False)
    assert res.exit_code == 2 and "not a W&B project name" in res.output
    assert not d.exists()
    # the flags are added when a step runs: the plan is the same, a SLURM job's `xling run --only` tracks too
    plan = cli("run", EXAMPLE, "--dir", d, "--dry-run", "--wandb", "p").output
    assert plan == cli("run", EXAMPLE, "--dir", d, "--dry-run").output and "--wandb" not in plan
    jobs = cli("run", EXAMPLE, "--dir", d, "--executor", "slurm", "--dry-run", "--wandb", "p").output
    assert jobs.count("--wandb p --only") == jobs.count(" --only ") >= 7 and not d.exists()


def test_offline_unless_wandb_mode_says_otherwise(tmp_path):
    from xling.experiment.track_wandb import environment

    env = environment("tiny", tmp_path, "pretrain", base={"PATH": "/bin"})
    assert env == {"PATH": "/bin", "WANDB_MODE": "offline", "WANDB_ERROR_REPORTING": "false",
                   "WANDB_DIR": str(tmp_path), "WANDB_RUN_GROUP": "tiny", "WANDB_JOB_TYPE": "pretrain",
                   "WANDB_NAME": "tiny/pretrain"}
    env = environment("tiny", tmp_path, "eval_pos", base={"WANDB_MODE": "online", "WANDB_DIR": "/elsewhere"})
    assert env["WANDB_MODE"] == "online" and "WANDB_ERROR_REPORTING" not in env
    assert env["WANDB_DIR"] == str(tmp_path) and env["WANDB_NAME"] == "tiny/eval_pos"


def test_fairseq_imports_wandb_only_for_a_process_that_logs_to_it():
    code = ("import sys, xling.xlmplug\n"
            "from fairseq.logging import progress_bar\n"
            "print('wandb' in sys.modules, progress_bar.wandb is not None)\n"
            "import wandb\n"  # anyone else in the process still can
            "print(wandb.init is not None)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "True"]
    out = subprocess.run([sys.executable, "-c", code, "--wandb-project", "p"], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "True", "True"]


def test_checkpoint_scores_read_back_from_a_run_over_several_blocks(tmp_path, monkeypatch):
    from xling.experiment.curves import checkpoint_scalars
    from xling.experiment.track_wandb import BLOCK, environment, log_checkpoints, runs

    for k, v in environment("t", tmp_path, "eval", base={}).items():
        monkeypatch.setenv(k, v)
    updates = range(100, 40100, 100)
    rows = [{"update": u, "task": "pos", "lang": lg, "zero_shot": lg != "en", "dev": u / 1000 + i, "test": None}
            for u in updates for i, lg in enumerate(("en", "de"))]
    log_checkpoints("xling-tests", checkpoint_scalars({"rows": rows,
                                                       "zero_shot": {"pos": {str(u): u / 7 for u in updates}}}))
    (run,) = runs(tmp_path)
    assert run["ended"]  # its exit record: wandb's service had written the whole file when it was read
    assert run["file"].stat().st_size > 2 * BLOCK  # records split over blocks
    assert (run["project"], run["name"], run["group"], run["job_type"]) == ("xling-tests", "t/eval", "t", "eval")
    assert run["history"]["pos/de/dev"] == [(u, pytest.approx(u / 1000 + 1)) for u in updates]
    assert run["history"]["pos/zero_shot"] == [(u, pytest.approx(u / 7)) for u in updates]
    assert "pos/en/test" not in run["history"]
    # wandb's service may still be writing the file after run.finish() returned (a read under load once found 325
    # of these 400 rows): a run without its exit record is read again until it has it
    import threading

    part = tmp_path / "late" / "wandb" / run["file"].parent.name / run["file"].name
    part.parent.mkdir(parents=True)
    data = run["file"].read_bytes()
    part.write_bytes(data[:int(len(data) * 0.7)])
    assert not runs(tmp_path / "late", wait=0.5)[0]["ended"]
    def write_the_rest():
        with part.open("ab") as f:
            f.write(data[int(len(data) * 0.7):])

    rest = threading.Timer(1.0, write_the_rest)
    rest.start()
    (late,) = runs(tmp_path / "late")
    rest.join()
    assert late["ended"] and late["history"] == run["history"]
