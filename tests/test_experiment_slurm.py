"""``xling run --executor slurm`` on a real one-node SLURM started here (tests/slurm_local.py; skipped with the
reason where it cannot start): the example experiment through sbatch jobs held by afterok dependencies, a
pretraining job sent SIGUSR1 requeues and finishes with the curve of an uninterrupted run."""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import cli
from test_experiment import EXAMPLE


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    import slurm_local

    try:
        env, stop = slurm_local.start(tmp_path_factory.mktemp("slurm"))
    except RuntimeError as e:
        pytest.skip(f"no local SLURM: {e}")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = env["SLURM_CONF"]
    yield env
    stop()
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old


def test_example_experiment_on_slurm(slurm, shared_env, tmp_path):
    d = tmp_path / "exp"
    plan = cli("run", EXAMPLE, "--dir", d, "--executor", "slurm", "--dry-run", "--time", "00:30:00").output
    assert "#SBATCH --array=0-1" in plan and "--dependency=afterok:<pretrain>" in plan
    assert "#SBATCH --cpus-per-task=2" in plan and "#SBATCH --time=00:30:00" in plan and not d.exists()
    assert 'if [ "$rc" -eq 75 ]; then' in plan and 'scontrol requeue "$SLURM_JOB_ID"' in plan
    first = cli("run", EXAMPLE, "--dir", d, "--executor", "slurm").output
    assert "submitted to SLURM" in first
    # a second run while the jobs are queued submits nothing again: it waits for them
    res = cli("run", EXAMPLE, "--dir", d, "--executor", "slurm", "--wait")
    assert "in the queue already" in res.output and "submitted to SLURM" not in res.output, res.output
    assert res.output.count(" done ") >= 7, res.output
    deps = (d / "slurm" / "data.sbatch").read_text()
    assert "--only data" in deps
    rep = json.loads((d / "eval_pos" / "checkpoints.json").read_text())
    assert {(r["update"], r["lang"]) for r in rep["rows"]} == {(u, lg) for u in (10, 20) for lg in ("en", "de", "fr")}
    logs = sorted(p.name for p in (d / "logs").glob("*.slurm-*.log"))
    assert len(logs) == 9, logs  # vocab, align, data, pretrain, 2 array tasks, the table, retrieval, compare
    assert json.loads((d / "pretrain" / "pretrain.json").read_text())["num_updates"] == 20
    again = cli("run", EXAMPLE, "--dir", d, "--executor", "slurm")
    assert "submitted" not in again.output and again.output.count(" done ") >= 7


def _state(job: str) -> str:
    """The job's state in the queue ("" once it has left it); squeue's passing failures retried."""
    from xling.experiment.slurm import squeue

    return " ".join(st for jid, st in (ln.split() for ln in squeue("%i %T")) if jid == job)


def _diagnosis(d: Path, slurm: dict, job: str) -> str:
    """What a failure shows: the job's state, the tails of its SLURM log, its stage log and slurmctld's log."""
    tails = [f"job {job}: {_state(job) or 'not in the queue'}"]
    for f in [*sorted((d / "logs").glob("*.log")), Path(slurm["SLURM_CONF"]).parent / "slurmctld.log"]:
        if f.is_file():
            tails.append(f"--- {f}\n" + f.read_text(errors="replace")[-2500:])
    return "\n".join(tails)


def test_usr1_requeues_and_resumes_to_the_uninterrupted_curve(slurm, shared_env, data_dir, tmp_path):
    opts = {"data": str(data_dir), "preset": "tiny", "max_updates": 200, "log_interval": 20, "save_interval": 0}
    exp = tmp_path / "p.yaml"
    exp.write_text(yaml.safe_dump({"name": "stop", "stages": {"pretrain": {"command": "pretrain", "options": opts}}}))
    d = tmp_path / "exp"
    out = cli("run", exp, "--dir", d, "--executor", "slurm").output
    job = re.search(r"pretrain\s+│\s+pretrain\s+│\s+(\d+)", out).group(1)
    log = d / "pretrain" / "train.log"
    deadline = time.time() + 300
    while time.time() < deadline:  # wait for a few updates
        text = log.read_text() if log.exists() else ""
        ups = [int(m) for m in re.findall(r'"num_updates": "?(\d+)', text)]
        if ups and max(ups) >= 40:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"the job did not train:\n{_diagnosis(d, slurm, job)}")
    subprocess.run(["scancel", "--signal=USR1", job], check=True)
    # until the job has ended for good (a requeued job is held for cred_expire, 20 s in tests/slurm_local.py's
    # cluster; forcing an earlier start gets it killed as "Job credential revoked")
    deadline = time.time() + 600
    while time.time() < deadline and _state(job):
        time.sleep(1)
    marker = d / ".xling-run" / "pretrain.json"
    slurm_log = "".join(p.read_text() for p in (d / "logs").glob("pretrain.slurm-*.log"))
    assert f"requeueing job {job}" in slurm_log, _diagnosis(d, slurm, job)
    assert marker.is_file() and json.loads(marker.read_text())["ok"], _diagnosis(d, slurm, job)
    run = json.loads((d / "pretrain" / "pretrain.json").read_text())
    assert run["num_updates"] == 200 and len(run["launches"]) >= 2 and run["launches"][1]["from_update"] > 0
    status = cli("run", exp, "--dir", d, "--status").output
    assert " done " in status
    ref = tmp_path / "ref"
    cli("pretrain", *[x for k, v in opts.items() for x in (f"--{k.replace('_', '-')}", str(v))], "--out", ref)
    a, b = run["curve"], json.loads((ref / "pretrain.json").read_text())["curve"]
    assert [c["num_updates"] for c in a] == [c["num_updates"] for c in b]
    assert [c["loss"] for c in a] == pytest.approx([c["loss"] for c in b], abs=0.02)


def test_multi_node_pretraining_job(slurm, shared_env, tmp_path):
    """--nodes/--gpus-per-node shape the pretraining job only; each node's task gets its rank and the master
    from SLURM's variables."""
    from xling.experiment.slurm import node_flags

    plan = cli("run", EXAMPLE, "--dir", tmp_path / "exp", "--executor", "slurm", "--dry-run", "--nodes", "2",
               "--gpus-per-node", "8", "--partition", "gpu", "--account", "proj", "--qos", "high", "--mem", "64G",
               "--constraint", "a100", "--sbatch", "--exclusive").output
    jobs = dict(re.findall(r"sbatch[^\n]* (\S+)\.sbatch\n(.*?)(?=\nsbatch|\Z)", plan, flags=re.S))
    assert len(jobs) == 8, list(jobs)  # 7 stages, the checkpoint evaluation as an array and a table job
    pre = jobs[str(tmp_path / "exp" / "slurm" / "pretrain")]
    assert "#SBATCH --nodes=2" in pre and "#SBATCH --gpus-per-node=8" in pre
    for name, script in jobs.items():
        for line in ("#SBATCH --partition=gpu", "#SBATCH --account=proj", "#SBATCH --qos=high", "#SBATCH --mem=64G",
                     "#SBATCH --constraint=a100", "#SBATCH --exclusive", "#SBATCH --requeue",
                     "#SBATCH --signal=USR1@120"):
            assert line in script, (name, line)
        if not name.endswith("pretrain"):
            assert "#SBATCH --nodes=1" in script and "--gpus-per-node=8" not in script, name
    host = subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout.strip()
    env = {"SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_NODELIST": host, "SLURM_NODEID": "1", "SLURM_JOB_ID": "7"}
    assert node_flags(["pretrain"], env) == ["--nodes", "2", "--node-rank", "1", "--master-addr", host,
                                             "--master-port", "20007"]
    assert node_flags(["eval", "xglue"], env) == [] and node_flags(["pretrain"], {"SLURM_JOB_NUM_NODES": "1"}) == []


def test_a_failing_squeue_is_retried_not_read_as_an_empty_queue(tmp_path, monkeypatch):
    """squeue fails now and then on a busy cluster; read as "no jobs", xling run would submit an experiment's
    queued jobs a second time. A failure is retried; one that persists is an error naming squeue's message. A job
    being requeued (REQUEUED, which squeue's default states leave out) is still queued; an ended one is not."""
    from xling.errors import XlingError
    from xling.experiment import slurm as S
    from xling.experiment.spec import load

    exp = load(EXAMPLE, tmp_path / "exp")
    fake, count = tmp_path / "bin", tmp_path / "calls"
    fake.mkdir()
    (fake / "squeue").write_text(f"""#!/bin/bash
n=$(( $(cat {count} 2>/dev/null || echo 0) + 1 )); echo $n > {count}
if [ $n -le 2 ]; then echo "slurm_load_jobs error: Socket timed out on send/recv operation" >&2; exit 1; fi
echo "REQUEUED|41|xling-{exp.name}-pretrain|{S._comment(exp)}"
echo "COMPLETED|40|xling-{exp.name}-data|{S._comment(exp)}"
echo "RUNNING|42|xling-other-pretrain|xling:/elsewhere"
""")
    (fake / "squeue").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    monkeypatch.setattr(time, "sleep", lambda s: None)
    assert S.live_jobs(exp, env) == {"pretrain": "41"} and count.read_text().strip() == "3"
    count.write_text("-10")
    with pytest.raises(XlingError, match="squeue failed 6 times: slurm_load_jobs error: Socket timed out"):
        S.live_jobs(exp, env)


def test_wait_ends_on_a_failed_stage_and_cancels_the_jobs_behind_it(slurm, shared_env, tmp_path):
    """A stage fails: SLURM marks the job right behind it DependencyNeverSatisfied, the ones behind that wait on
    "Dependency" for ever. --wait cancels them all and ends with the failed stage's error (exit 2)."""
    missing = tmp_path / "missing.txt"
    exp = tmp_path / "f.yaml"
    exp.write_text(yaml.safe_dump({"name": "fails", "stages": {
        "vocab": {"command": "prep-vocab", "options": {"input": [f"en={missing}"], "vocab_size": 100}},
        "data": {"command": "prep-data", "after": ["vocab"], "options": {"vocab": "${dir}/vocab",
                                                                        "mono": [f"en={missing}"]}},
        "pretrain": {"command": "pretrain", "after": ["data"], "options": {"data": "${dir}/data", "preset": "tiny"}},
    }}))
    d = tmp_path / "exp"
    t0 = time.time()
    res = cli("run", exp, "--dir", d, "--executor", "slurm", "--wait", ok=None)
    assert res.exit_code == 2 and "stage vocab failed" in res.output and str(missing) in res.output, res.output
    from xling.experiment.slurm import squeue

    assert not [ln for ln in squeue("%k") if ln.strip() == f"xling:{d}"] and time.time() - t0 < 120
