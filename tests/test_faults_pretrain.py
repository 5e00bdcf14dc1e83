"""Faults of `xling pretrain` (issue 19): a run resumes only under the identity it was started with, one
trainer per directory, the launcher stops its trainers when interrupted or killed, counts are checked,
corrupt checkpoints and --init weights are clear errors, the user's files in the run directory survive.
Tiny runs of a few updates on real tatoeba text."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from xling.pretrain import checkpoint_updates

from conftest import as_a_terminal_job, cli, summary, tiny
from test_faults import refused, snapshot, temp_files

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run4(data_dir, tmp_path_factory):
    """A finished 4-update MLM run."""
    out = tmp_path_factory.mktemp("faults_run") / "run"
    cli(*tiny(data_dir, out, "--max-updates", 4, "--log-interval", 2))
    return out


def checkpoints(out: Path) -> dict:
    return snapshot(out / "checkpoints")


def test_counts_and_out_checked_before_anything(data_dir, tmp_path):
    out = tmp_path / "o"
    for flag, v in (("--max-updates", 0), ("--max-updates", -3), ("--batch-size", 0), ("--total-updates", 0),
                    ("--log-interval", 0), ("--cpu-procs", 0)):
        refused(cli(*tiny(data_dir, out, flag, v), ok=None), f"{flag} must be at least 1, got {v}")
    refused(cli(*tiny(data_dir, out, "--lr", 0), ok=None), "--lr must be positive")
    refused(cli(*tiny(data_dir, out, "--save-interval", -1), ok=None), "--save-interval must be >= 0")
    assert not out.exists()
    f = tmp_path / "file"
    f.write_text("keep")
    refused(cli(*tiny(data_dir, f), ok=None), "existing file")
    refused(cli(*tiny(data_dir, data_dir / "run"), ok=None), "inside the data directory")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("x")
    refused(cli(*tiny(data_dir, mine), ok=None), "holds no `xling pretrain` run", "fix:")
    assert f.read_text() == "keep" and sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]
    assert not (data_dir / "run").exists()


def test_resume_refused_when_the_run_changed(data_dir, run4, tmp_path):
    before = checkpoints(run4)
    # another learning rate, with a longer schedule
    text = refused(cli(*tiny(data_dir, run4, "--max-updates", 6, "--lr", 0.002), ok=None),
                   "schedule --lr: 0.001 -> 0.002", "--force-resume", "run.json")
    err = text[text.index("error:"):]
    assert "--max-update:" not in err and "--total-num-update" not in err  # extending the run is no change
    # TLM added (objectives and pairs), fewer languages (data)
    refused(cli(*tiny(data_dir, run4, "--max-updates", 6, "--tlm"), ok=None), "objectives --tlm-ratio", "data --pairs")
    refused(cli(*tiny(data_dir, run4, "--max-updates", 6, "--langs", "en,fr"), ok=None),
            "data --langs: de,en,fr -> en,fr")
    # other data with the same vocabulary (same dict.txt and spm.model): the manifest differs
    other = tmp_path / "data_other"
    shutil.copytree(data_dir, other)
    man = json.loads((other / "manifest.json").read_text())
    man["mono"]["en"]["note"] = "another corpus"
    (other / "manifest.json").write_text(json.dumps(man))
    refused(cli(*tiny(other, run4, "--max-updates", 6), ok=None), "data manifest: sha256")
    # a truncated checkpoint_last.pt
    broken = tmp_path / "broken"
    shutil.copytree(run4, broken)
    last = broken / "checkpoints" / "checkpoint_last.pt"
    last.write_bytes(last.read_bytes()[:5000])
    refused(cli(*tiny(data_dir, broken, "--max-updates", 6), ok=None), "truncated or corrupt", str(last),
            "fix: move it away and copy the newest checkpoint_EPOCH_UPDATES.pt or checkpoint_best.pt that "
            "`xling inspect` reads")
    assert checkpoints(run4) == before and not temp_files(run4)


def test_force_resume_records_the_launches_and_keeps_user_files(data_dir, run4, tmp_path):
    out = tmp_path / "forced"
    shutil.copytree(run4, out)
    (out / "model" / "NOTES.md").write_text("my notes on this model\n")
    (out / "model" / "eval").mkdir()
    (out / "model" / "eval" / "scores.txt").write_text("0.5\n")
    # a stale lock of a process that is gone is taken over
    (out / ".xling-pretrain.lock").write_text(json.dumps({"pid": 2 ** 22 + 17, "host": socket.gethostname(),
                                                          "trainers": []}))
    forced = cli(*tiny(data_dir, out, "--max-updates", 6, "--lr", 0.002, "--log-interval", 2, "--force-resume"))
    assert ("--force-resume: checkpoint_last.pt of update 4 goes on under changed options: schedule --lr: 0.001 -> "
            "0.002") in " ".join(forced.output.split())
    s = summary(out)
    assert s["num_updates"] == 6
    first, second = s["launches"]
    assert first["from_update"] == 0 and "--lr 0.001" in first["command"]
    assert second["from_update"] == 4 and "--lr 0.002" in second["command"] and second["force_resume"]
    assert second["changed"] == ["schedule --lr: 0.001 -> 0.002"]
    assert [c["num_updates"] for c in s["curve"]] == [2, 4, 6]  # the whole run's curve
    assert (out / "model" / "NOTES.md").read_text() == "my notes on this model\n"
    assert (out / "model" / "eval" / "scores.txt").read_text() == "0.5\n"
    assert not (out / ".xling-pretrain.lock").exists() and not temp_files(out)
    # now the run is the forced one: the same options extended resume without --force-resume
    r = refused(cli(*tiny(data_dir, out, "--max-updates", 8), ok=None), "--lr: 0.002 -> 0.001")
    assert r


def test_a_live_lock_stops_a_second_trainer(data_dir, run4, tmp_path):
    from xling.pretrain.lock import proc_start

    out = tmp_path / "locked"
    shutil.copytree(run4, out)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (out / ".xling-pretrain.lock").write_text(json.dumps({
            "pid": os.getpid(), "start": "not-this-process", "host": socket.gethostname(),
            "trainers": [[holder.pid, proc_start(holder.pid)]]}))
        before = checkpoints(out)
        refused(cli(*tiny(data_dir, out, "--max-updates", 6), ok=None), "another training run is active",
                f"pid {holder.pid}", f"kill {holder.pid}")
        assert checkpoints(out) == before
    finally:
        holder.kill()
        holder.wait()


def test_fairseq_crash_before_a_checkpoint_says_it_starts_over(data_dir, tmp_path):
    out = tmp_path / "crash"
    text = refused(cli(*tiny(data_dir, out, "--max-updates", 2, "--", "--optimizer", "no-such-optimizer"), ok=None),
                   "fairseq training failed", "no checkpoint was saved yet, so a re-run starts over")
    assert "re-running resumes" not in text
    assert not (out / ".xling-pretrain.lock").exists()


@pytest.mark.parametrize("after, ours", [(["--lr", "0.01"], "--lr 0.01"), (["--max-update=5"], "--max-updates 5"),
                                         (["--seed", "3"], "--seed 3")])
def test_a_fairseq_flag_after_the_dashes_does_not_override_xlings_own(data_dir, tmp_path, after, ours):
    """fairseq reads the last of a repeated flag: `-- --lr 0.01` silently replaced xling's --lr (or the preset's)."""
    out = tmp_path / "o"
    r = cli(*tiny(data_dir, out, "--max-updates", 2, "--dry-run", "--", *after), ok=None)
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and f"after -- would silently override xling's {ours.split()[0]}" in text, text
    assert f"give xling's {ours} instead" in text and not out.exists()


def test_init_is_reread_when_it_changes_and_corrupt_init_is_exit_2(data_dir, run4, tmp_path):
    import torch

    a = run4 / "model"
    b = tmp_path / "init_b"
    shutil.copytree(a, b)
    st = torch.load(b / "model.pt", weights_only=True)
    key = next(k for k in st["model"] if k.endswith("layers.0.fc1.weight"))
    st["model"][key] = st["model"][key] + 1.0
    torch.save(st, b / "model.pt")
    out = tmp_path / "cont"
    cli(*tiny(data_dir, out, "--init", a, "--max-updates", 1, "--log-interval", 1))
    prepared = torch.load(out / "init" / "model.pt", weights_only=True)["model"][key]
    assert torch.equal(prepared, torch.load(a / "model.pt", weights_only=True)["model"][key])
    # with a checkpoint to resume, another --init is a change of the run
    refused(cli(*tiny(data_dir, out, "--init", b, "--max-updates", 2), ok=None), "model init:", "--force-resume")
    # before any checkpoint (the first launch failed): OUT/init/model.pt is prepared again from the new --init
    shutil.rmtree(out / "checkpoints")
    (out / "pretrain.json").unlink()
    cli(*tiny(data_dir, out, "--init", b, "--max-updates", 1, "--log-interval", 1))
    assert torch.equal(torch.load(out / "init" / "model.pt", weights_only=True)["model"][key], st["model"][key])
    assert json.loads((out / "init" / "source.json").read_text())["dir"] == str(b.resolve())
    # a corrupt --init model.pt
    bad = tmp_path / "bad_init"
    shutil.copytree(a, bad)
    (bad / "model.pt").write_bytes((bad / "model.pt").read_bytes()[:3000])
    refused(cli(*tiny(data_dir, tmp_path / "x", "--init", bad), ok=None), "truncated or corrupt",
            str(bad / "model.pt"))
    assert not (tmp_path / "x").exists()


def _launch(data_dir, out, *more):
    cmd = [sys.executable, "-m", "xling.cli.main", *map(str, tiny(data_dir, out, "--max-updates", 100000,
                                                                  "--log-interval", 1, *more))]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=as_a_terminal_job)  # the test sends it SIGINT


def _trainers(out: Path, timeout: float = 180) -> list[int]:
    """The trainer pids once the launcher recorded them (and fairseq logged an update)."""
    lock = out / ".xling-pretrain.lock"
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            pids = [p for p, _ in json.loads(lock.read_text()).get("trainers", [])]
        except (OSError, ValueError):
            pids = []
        log = out / "train.log"
        if pids and log.exists() and '"num_updates"' in log.read_text(errors="replace"):
            return pids
        time.sleep(0.5)
    raise AssertionError("the trainer did not start")


def _gone(pid: int, timeout: float = 60) -> bool:
    from xling.pretrain.lock import pid_alive

    t0 = time.time()
    while time.time() - t0 < timeout:
        if not pid_alive(pid):
            return True
        time.sleep(0.2)
    return False


def test_interrupted_or_killed_launcher_stops_its_trainer(data_dir, tmp_path):
    # Ctrl-C: one line, the trainer stopped, the lock released
    out = tmp_path / "ctrlc"
    p = _launch(data_dir, out)
    (pid,) = _trainers(out)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    lines = [ln for ln in err.splitlines() if ln.startswith("interrupted")]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    stopped = int(re.search(r"received SIGINT; the trainer saved checkpoint_last.pt after update (\d+) and "
                            r"stopped; re-running resumes from update \1$", lines[0]).group(1))
    assert checkpoint_updates(out / "checkpoints" / "checkpoint_last.pt") == stopped  # the update it stopped after
    assert _gone(pid) and not (out / ".xling-pretrain.lock").exists()
    # kill -9 of the launcher: the trainer gets SIGTERM from the kernel (parent-death signal), saves and stops
    out = tmp_path / "kill9"
    p = _launch(data_dir, out)
    (pid,) = _trainers(out)
    p.kill()
    p.communicate(timeout=60)
    assert _gone(pid), "the trainer outlived its launcher"
    # its output pipe died with the launcher: it logs to train.log directly, so the save is not cut short
    orphan = int(re.search(r"xling: stopped on SIGTERM after update (\d+)", (out / "train.log").read_text()).group(1))
    assert checkpoint_updates(out / "checkpoints" / "checkpoint_last.pt") == orphan
    # its lock is stale now: a re-run takes it over (checked without training again)
    from xling.pretrain.lock import run_lock

    with run_lock(out):
        pass


def _kill_trainer_at(out: Path, update: int) -> threading.Thread:
    """A thread that SIGKILLs the run's fairseq trainer once ``OUT/train.log`` shows ``update``: a crash in the
    middle of an epoch (no save on the way out), as an out-of-memory kill or a lost GPU would be."""
    def watch():
        log, seen = out / "train.log", f'"num_updates": "{update}"'
        while not (log.exists() and seen in log.read_text(errors="replace")):
            time.sleep(0.02)
        for pid, _ in json.loads((out / ".xling-pretrain.lock").read_text())["trainers"]:
            os.kill(pid, signal.SIGKILL)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def trained(s: dict) -> list[dict]:
    """A summary's curve without its speeds: losses, task losses, learning rates."""
    return [{k: v for k, v in c.items() if k != "wps"} for c in s["curve"]]


def test_mid_epoch_checkpoints_survive_a_crash_and_resume_the_same_training(data_dir, tmp_path):
    """``--save-interval 5``: fairseq validates and saves every 5 updates inside the epoch (tatoeba's epoch is
    about 50 updates here; a corpus of gigabytes makes it days), keeping the newest checkpoint_1_N.pt beside
    checkpoint_last.pt. Saving does not change the training: the curve equals a run without mid-epoch saves.
    A trainer killed at update 7 (two updates after the save) resumes from update 5 and ends with the very curve
    of the uninterrupted run (losses, task losses and learning rates; only speed differs), and pretrain.json
    holds the whole run: the updates before the crash come from the crashed launch's train.log."""
    common = ["--tlm", "--max-updates", 12, "--log-interval", 1]
    whole, plain, crashed = tmp_path / "whole", tmp_path / "plain", tmp_path / "crashed"
    cli(*tiny(data_dir, whole, *common, "--save-interval", 5))
    assert sorted(checkpoints(whole)) == ["checkpoint_1_10.pt", "checkpoint_best.pt", "checkpoint_last.pt"]
    a = summary(whole)
    assert "--save-interval-updates 5 --keep-interval-updates 1" in a["command"]
    assert [v["valid_num_updates"] for v in a["valid"]] == [5, 10, 12]
    cli(*tiny(data_dir, plain, *common, "--save-interval", 0))
    p = summary(plain)
    assert sorted(checkpoints(plain)) == ["checkpoint_best.pt", "checkpoint_last.pt"]
    assert "--save-interval-updates" not in p["command"] and [v["valid_num_updates"] for v in p["valid"]] == [12]

    assert len(trained(a)) == 12 and trained(a) == trained(p)
    watcher = _kill_trainer_at(crashed, 7)
    refused(cli(*tiny(data_dir, crashed, *common, "--save-interval", 5), ok=None), "fairseq training failed",
            "killed by SIGKILL", "re-running resumes from checkpoint_last.pt")
    watcher.join(timeout=5)
    assert "checkpoint_1_5.pt" in checkpoints(crashed) and not (crashed / "pretrain.json").exists()
    cli(*tiny(data_dir, crashed, *common, "--save-interval", 5))
    b = summary(crashed)
    assert [launch["from_update"] for launch in b["launches"]] == [0, 5]
    assert trained(b) == trained(a) and b["valid"][-1]["valid_loss"] == a["valid"][-1]["valid_loss"]
    assert [v["valid_num_updates"] for v in b["valid"]] == [5, 10, 12]


def test_seq2seq_noise_is_the_same_in_every_run_and_after_a_crash(data_dir, tmp_path):
    """The encoder-decoder's noise (fairseq's BART noise draws from torch's generator) is seeded per example and
    made in a loader process: a crashed run resumed from its mid-epoch checkpoint ends with the very curve of an
    uninterrupted one (before, the noise depended on what had drawn before it, and even two plain runs with one
    seed differed in the third decimal of their losses)."""
    common = ["--arch", "seq2seq", "--tasks", "xdae", "--max-updates", 12, "--log-interval", 1, "--save-interval", 5]
    whole, crashed = tmp_path / "whole", tmp_path / "crashed"
    cli(*tiny(data_dir, whole, *common))
    a = summary(whole)
    assert "--num-workers 1" in a["command"] and len(trained(a)) == 12
    watcher = _kill_trainer_at(crashed, 7)
    refused(cli(*tiny(data_dir, crashed, *common), ok=None), "fairseq training failed (killed by SIGKILL)")
    watcher.join(timeout=5)
    cli(*tiny(data_dir, crashed, *common))
    b = summary(crashed)
    assert [launch["from_update"] for launch in b["launches"]] == [0, 5]
    assert trained(b) == trained(a) and [v["valid_loss"] for v in b["valid"]] == [v["valid_loss"] for v in a["valid"]]


DIE_DURING_COPY = """import os, shutil, sys
copyfile = shutil.copyfile
def dying(src, dst, *args, **kwargs):  # the trainer dies halfway through copying the update-6 save to checkpoint_last
    if "checkpoint_1_6" in str(src) and "checkpoint_last" in os.path.basename(str(dst)):
        with open(src, "rb") as f, open(dst, "wb") as g:
            g.write(f.read(4096))
        os._exit(9)
    return copyfile(src, dst, *args, **kwargs)
shutil.copyfile = dying
def no_links(*args, **kwargs):  # a file system without hard links: the trainer copies
    raise OSError(18, "Invalid cross-device link")
os.link = no_links
from xling.xlmplug.train import main
main(sys.argv[1:])
"""


def test_a_trainer_killed_while_copying_a_save_leaves_checkpoint_last_whole(data_dir, tmp_path):
    """fairseq writes a save's first file atomically but copied it to checkpoint_last.pt in place: a trainer killed
    during that copy left a truncated checkpoint_last.pt, and the run could not resume. The trainer (xling's
    ``python -m xling.xlmplug.train``, the real command of the run) dies halfway through that copy at update 6 on a
    file system without hard links; checkpoint_last.pt is still the whole update-3 save and the re-run resumes from
    it. Where the file system has hard links, the other names are links to the save's first file: no bytes copied
    (a base checkpoint is ~3 GB), nothing kept twice on disk."""
    out = tmp_path / "run"
    common = ["--save-interval", 3, "--log-interval", 1]
    cli(*tiny(data_dir, out, "--max-updates", 3, "--total-updates", 8, *common))
    names = [out / "checkpoints" / n for n in ("checkpoint_1_3.pt", "checkpoint_best.pt", "checkpoint_last.pt")]
    assert len({p.stat().st_ino for p in names}) == 1 and names[0].stat().st_nlink == 3
    r = cli(*tiny(data_dir, out, "--max-updates", 8, "--total-updates", 8, *common, "--dry-run"))
    cmd = shlex.split(next(ln for ln in r.output.splitlines() if "xling.xlmplug.train" in ln))
    driver = tmp_path / "die_during_copy.py"
    driver.write_text(DIE_DURING_COPY)
    p = subprocess.run([cmd[0], str(driver), *cmd[3:]], cwd=REPO, capture_output=True, text=True)
    assert p.returncode == 9, p.stderr[-3000:]
    assert "checkpoint_1_6.pt" in checkpoints(out)
    from xling.pretrain.checkpoints import checkpoint_updates

    assert checkpoint_updates(out / "checkpoints" / "checkpoint_last.pt") == 3
    cli(*tiny(data_dir, out, "--max-updates", 8, "--total-updates", 8, *common))
    s = summary(out)
    assert s["num_updates"] == 8 and [launch["from_update"] for launch in s["launches"]] == [0, 3]
    assert not temp_files(out / "model")
    # fairseq's launcher for several GPUs spawns the ranks: each imports this module as __mp_main__ (what
    # multiprocessing's spawn does with a ``python -m`` program) without calling main(); their copies are atomic too
    probe = ("import runpy; runpy.run_module('xling.xlmplug.train', run_name='__mp_main__', alter_sys=True); "
             "from fairseq.file_io import PathManager; assert PathManager.copy.xling_atomic")
    p = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]


def oom_plugin(root: Path, most: int) -> Path:
    """A fairseq ``--user-dir`` plugin whose model runs out of memory as CUDA's allocator does on micro-batches of
    more than ``most`` sequences."""
    plug = root / f"oomplug{most}"
    plug.mkdir()
    (plug / "__init__.py").write_text(
        "from xling.xlmplug.models.xlm_roberta import XlmModel\n\n"
        "plain = XlmModel.forward\n\n\n"
        "def forward(self, src_tokens, *args, **kwargs):\n"
        f"    if src_tokens.size(0) > {most}:\n"
        "        raise RuntimeError('CUDA out of memory. Tried to allocate 20.00 GiB (simulated)')\n"
        "    return plain(self, src_tokens, *args, **kwargs)\n\n\n"
        "XlmModel.forward = forward\n")
    return plug


def test_micro_batches_that_do_not_fit_stop_with_a_smaller_size(data_dir, tmp_path):
    """fairseq catches an out-of-memory error in a training step, logs it and skips the update: with micro-batches
    that never fit it skipped every update of the epoch (a whole corpus: hours of GPU time) and then failed in
    validation, or went on forever without it. A plugin makes every forward pass of more than 0 sequences fail as
    CUDA's allocator does; with the micro-batch size the user's, xling stops the trainer after 5 skipped
    micro-batches with one error and the size to use."""
    out = tmp_path / "run"
    plug = oom_plugin(tmp_path, 0)
    text = refused(cli(*tiny(data_dir, out, "--max-updates", 50, "--micro-batch-size", 16, "--", "--user-dir", plug),
                       ok=None),
                   "training ran out of memory on 5 micro-batches since the last logged update", "up to 16 sequences",
                   "fix: use smaller micro-batches: --micro-batch-size 8", "keeps its --batch-size sequences")
    assert "Traceback" not in text and "launching again" not in text
    log = (out / "train.log").read_text()
    assert log.count("attempting to recover from OOM") == 5 and "valid" not in log.split("OOM")[-1]
    assert not (out / ".xling-pretrain.lock").exists()


def test_micro_batches_of_xlings_size_that_do_not_fit_are_halved_and_the_run_trains_the_same_batch(data_dir,
                                                                                                 tmp_path):
    """The micro-batch size xling chose (the preset's 16 here) runs out of memory on more than 5 sequences: the run
    is launched again with 8, then 4, and trains its 16 sequences per update in 4 micro-batches."""
    out = tmp_path / "run"
    r = cli(*tiny(data_dir, out, "--max-updates", 3, "--log-interval", 1, "--", "--user-dir",
                  oom_plugin(tmp_path, 5)))
    text = " ".join(r.output.split())
    assert "training ran out of memory on 5 micro-batches" in text and "(micro-batches of up to 16 sequences" in text
    assert "launching again with --micro-batch-size 8" in text and "launching again with --micro-batch-size 4" in text
    s = summary(out)
    # no checkpoint was saved before: the run started over, and its record holds the launch that trained
    assert [launch["from_update"] for launch in s["launches"]] == [0]
    assert "--batch-size 4 --update-freq 4" in s["launches"][0]["command"]
    assert s["num_updates"] == 3 and [c["bsz"] for c in s["curve"]] == [16, 16, 16]


def test_a_run_resumes_in_the_precision_it_was_trained_in(data_dir, run4, tmp_path, monkeypatch):
    """fairseq keeps another optimizer state per precision (FP16Optimizer's flat fp32 copy for bf16/fp16) and
    stopped with an AssertionError when a run was resumed in another one. A run now keeps its own precision: a
    bf16 run re-run without --bf16 trains on in bf16; an fp32 run (begun on CPU) resumed where a GPU is visible
    stays fp32 instead of the GPU default bf16; another precision asked for is refused before anything runs."""
    out = tmp_path / "bf16"
    cli(*tiny(data_dir, out, "--bf16", "--max-updates", 2, "--log-interval", 1))
    cli(*tiny(data_dir, out, "--max-updates", 4, "--log-interval", 1))
    s = summary(out)
    assert s["num_updates"] == 4 and [launch["from_update"] for launch in s["launches"]] == [0, 2]
    assert "--bf16" in s["launches"][1]["command"].split()
    before = checkpoints(run4)
    refused(cli(*tiny(data_dir, run4, "--max-updates", 6, "--bf16"), ok=None),
            "checkpoint_last.pt was trained in fp32; resuming it in bf16", "fix: resume with --fp32")
    assert checkpoints(run4) == before
    monkeypatch.setattr("xling.pretrain.command.visible_gpus", lambda: 1)
    monkeypatch.setattr("xling.pretrain.checks.visible_gpus", lambda: 1)
    r = cli(*tiny(data_dir, run4, "--max-updates", 6, "--dry-run"))
    cmd = shlex.split(next(ln for ln in r.output.splitlines() if "xling.xlmplug.train" in ln))
    assert "--cpu" not in cmd and not {"--bf16", "--fp16"} & set(cmd)
