"""A signal stops `xling pretrain` with a checkpoint of the update it stopped after (a scheduler's SIGTERM, Ctrl-C,
SIGUSR1 ahead of a time limit): before, the trainer died and every update since the last save was lost. All ranks
stop after the same update (else data-parallel training hangs), and the re-run resumes the very training, also on
another number of ranks (each batch of the epoch trained once).
Tiny runs on real tatoeba text; a ``--user-dir`` plugin sends the signal at a chosen update, so the tests do
not race the trainer."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli, summary, tiny

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
COMMON = ["--tlm", "--max-updates", 12, "--log-interval", 1, "--save-interval", 0]


def signal_plugin(root: Path, update: int, target: str, sig: str = "SIGTERM", rank: int = 0) -> Path:
    """A fairseq ``--user-dir`` plugin: at the start of update ``update`` on rank ``rank`` it sends ``sig`` to
    ``target`` (``launcher``: the trainer's parent, ``self``: this rank), then waits until this process has the
    stop request (the launcher forwards it), so the run stops after exactly that update."""
    plug = root / f"sig_{target}_{update}_{rank}"
    plug.mkdir()
    (plug / "__init__.py").write_text(
        "import os, signal, time\n"
        "import torch.distributed as dist\n"
        "from xling.xlmplug import stop\n"
        "from xling.xlmplug.tasks.xlm_pretrain import XlmPretrainTask\n\n"
        "_step = XlmPretrainTask.train_step\n\n\n"
        "def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):\n"
        "    rank = dist.get_rank() if dist.is_initialized() else 0\n"
        f"    if update_num == {update - 1} and rank == {rank} and stop.STATE.requested is None:\n"
        f"        os.kill(os.getppid() if {target == 'launcher'} else os.getpid(), signal.{sig})\n"
        "        t0 = time.time()\n"
        "        while stop.STATE.requested is None and time.time() - t0 < 60:\n"
        "            time.sleep(0.01)\n"
        "    return _step(self, sample, model, criterion, optimizer, update_num, ignore_grad)\n\n\n"
        "XlmPretrainTask.train_step = train_step\n")
    return plug


def launch(args: list) -> subprocess.CompletedProcess:
    """`xling pretrain` in its own process (the signal goes to it, not to pytest); a hang fails the test."""
    return subprocess.run([sys.executable, "-m", "xling.cli.main", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def trained(s: dict) -> list[dict]:
    """A summary's curve without its speeds: losses, task losses, learning rates."""
    return [{k: v for k, v in c.items() if k != "wps"} for c in s["curve"]]


def updates_in(checkpoint: Path) -> int:
    from xling.pretrain import checkpoint_updates

    return checkpoint_updates(checkpoint)


def test_sigterm_saves_the_update_it_stopped_after_and_the_rerun_resumes_the_same_training(data_dir, tmp_path):
    """SIGTERM to `xling pretrain` at update 7 of 12 (no interval saves): the trainer finishes update 7, saves
    checkpoint_last.pt and stops; one line says so (exit 130, no traceback). Re-running the same command resumes
    from update 7 and ends with the curve of an uninterrupted run (losses, task losses, learning rates)."""
    plain = tmp_path / "plain"
    cli(*tiny(data_dir, plain, *COMMON))
    out = tmp_path / "stopped"
    plug = signal_plugin(tmp_path, 7, "launcher")
    p = launch(tiny(data_dir, out, *COMMON, "--", "--user-dir", plug))
    text = " ".join(p.stderr.split())
    assert p.returncode == 130 and "Traceback" not in text, p.stderr[-3000:]
    assert ("interrupted: received SIGTERM; the trainer saved checkpoint_last.pt after update 7 and stopped; "
            "re-running resumes from update 7") in text, p.stderr[-3000:]
    assert "SIGTERM received: the trainer finishes its update, saves checkpoint_last.pt and stops" in text
    assert updates_in(out / "checkpoints" / "checkpoint_last.pt") == 7
    assert not (out / "pretrain.json").exists() and not (out / ".xling-pretrain.lock").exists()
    assert "xling: stopped on SIGTERM after update 7" in (out / "train.log").read_text()

    cli(*tiny(data_dir, out, *COMMON, "--", "--user-dir", plug))
    s = summary(out)
    assert [launch["from_update"] for launch in s["launches"]] == [0, 7]
    assert s["num_updates"] == 12 and trained(s) == trained(summary(plain))


def test_every_rank_stops_after_the_same_update_when_one_rank_is_signalled(data_dir, tmp_path):
    """CPU data-parallel training, 2 ranks: only rank 1 receives SIGUSR1, at update 5. The request travels with
    the statistics fairseq sums over the ranks after each update, so rank 0 stops after update 5 as well (a rank
    stopping alone would leave the other waiting in its next all-reduce for ever), rank 0 saves, and the launcher
    says what happened. The re-run resumes from update 5 and trains what an uninterrupted run trains."""
    ddp = ["--cpu-procs", 2, "--batch-size", 8, "--max-updates", 8, "--log-interval", 1, "--save-interval", 0]
    plain = tmp_path / "plain"
    cli(*tiny(data_dir, plain, *ddp))
    out = tmp_path / "stopped"
    plug = signal_plugin(tmp_path, 5, "self", "SIGUSR1", rank=1)
    p = launch(tiny(data_dir, out, *ddp, "--", "--user-dir", plug))
    assert p.returncode == 130, p.stderr[-3000:]
    assert ("the trainer received another rank's stop request; the trainer saved checkpoint_last.pt after "
            "update 5 and stopped") in " ".join(p.stderr.split()), p.stderr[-3000:]
    assert updates_in(out / "checkpoints" / "checkpoint_last.pt") == 5
    rank1 = (out / "train.rank1.log").read_text()
    assert "xling: stopped on SIGUSR1 after update 5" in rank1

    cli(*tiny(data_dir, out, *ddp, "--", "--user-dir", plug))
    s = summary(out)
    assert [launch["from_update"] for launch in s["launches"]] == [0, 5]
    assert trained(s) == trained(summary(plain)) and len(s["curve"]) == 8


def test_stop_line_is_what_the_launcher_reads():
    from xling.pretrain.launch import STOP_LINE_RE
    from xling.xlmplug.stop import STOP_LINE

    m = STOP_LINE_RE.search("2026 | INFO | xling.xlmplug.stop | "
                            + STOP_LINE.format(signal="another rank's stop request", update=123))
    assert m and m.groups() == ("another rank's stop request", "123")
    assert json.dumps(STOP_LINE)  # one line


def test_a_second_signal_or_the_time_limit_stops_the_trainers_at_once(monkeypatch):
    """The launcher's first signal only asks (SIGTERM to the trainer's process group); a second one, or
    GRACEFUL_LIMIT seconds without an exit, kills: a trainer stuck in a collective must not hold a job forever."""
    import signal
    import time

    from xling.pretrain import launch

    def stubborn():  # a trainer that takes a stop request and goes on (as one in the middle of a long update)
        p = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, lambda *a: "
                              "print('asked', flush=True)); print('ready', flush=True); time.sleep(120)"],
                             stdout=subprocess.PIPE, text=True, preexec_fn=os.setsid)
        assert p.stdout.readline().strip() == "ready"
        return p

    p = stubborn()
    stop = launch.GracefulStop([p])
    stop.handler(signal.SIGTERM, None)
    assert stop.signal == "SIGTERM" and p.stdout.readline().strip() == "asked" and p.poll() is None
    with pytest.raises(KeyboardInterrupt, match="received SIGINT again"):
        stop.handler(signal.SIGINT, None)
    stop.timer.cancel()
    launch.kill_processes([p])
    assert p.returncode == -signal.SIGKILL

    monkeypatch.setattr(launch, "GRACEFUL_LIMIT", 1.0)
    p = stubborn()
    stop = launch.GracefulStop([p])
    stop.handler(signal.SIGUSR1, None)
    t0 = time.time()
    assert p.wait(timeout=30) == -signal.SIGKILL and time.time() - t0 < 20
    with pytest.raises(KeyboardInterrupt, match="received SIGTERM$"):  # before any trainer: nothing to save
        launch.GracefulStop([]).handler(signal.SIGTERM, None)


def test_a_dead_launcher_is_gone_even_before_it_is_reaped(monkeypatch):
    """The parent-death signal arrives when the launcher exits, before its own parent reaps it: a zombie answers a
    signal-0 probe like a live process, and the orphaned trainer then kept writing into the dead pipe (its stop
    line lost)."""
    import time

    from xling.xlmplug import stop

    monkeypatch.setenv(stop.LAUNCHER_PID_ENV, str(os.getpid()))
    assert not stop.launcher_gone()  # a live process that is not our parent
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    t0 = time.time()
    while Path(f"/proc/{dead.pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z" and time.time() - t0 < 30:
        time.sleep(0.05)
    monkeypatch.setenv(stop.LAUNCHER_PID_ENV, str(dead.pid))
    assert stop.launcher_gone()  # exited, not reaped yet
    dead.wait()
    assert stop.launcher_gone()  # reaped
    monkeypatch.setenv(stop.LAUNCHER_PID_ENV, str(os.getppid()))
    assert not stop.launcher_gone()  # our parent
    monkeypatch.delenv(stop.LAUNCHER_PID_ENV)
    assert not stop.launcher_gone()  # not started by xling pretrain


def _epoch_ids(task, shards: int, rank: int, state=None, take=None) -> tuple[list[int], dict]:
    """Example ids of the batches rank ``rank`` of ``shards`` takes in epoch 1 (``take`` of them, else the rest of
    the epoch), resumed from ``state``; and the iterator's state after them."""
    itr = task.get_batch_iterator(task.dataset("train"), max_sentences=8, seed=1, epoch=1, num_shards=shards,
                                  shard_id=rank)
    if state is not None:
        itr.load_state_dict(state)
    it, ids = itr.next_epoch_itr(shuffle=True), []
    for i, batch in enumerate(it):
        ids += batch["id"].tolist() if batch else []  # ranks past the end get an empty batch
        if take is not None and i + 1 == take:
            break
    return ids, itr.state_dict()


@pytest.mark.parametrize("before,after,taken", [(4, 2, 3), (2, 4, 3), (3, 4, 2)])
def test_a_run_resumed_on_another_number_of_ranks_trains_each_batch_once(data_dir, before, after, taken):
    """fairseq saves the position in an epoch per rank and resumed at the same position per rank on any number of
    ranks: from 4 ranks to 2 it trained half of the batches done again, from 2 to 4 it passed over as many. Rank r
    of W takes batches r, r+W, ... of one batch order, so the position is rescaled by W/W'. Every example of the
    epoch is trained, and at most W'-1 batches twice when the position is not a multiple (3 ranks to 4)."""
    from test_pretrain import _task

    from xling.xlmplug import resume

    resume.install()
    task = _task(data_dir)
    task.load_dataset("train")
    seen, states = [], []
    for r in range(before):
        ids, state = _epoch_ids(task, before, r, take=taken)
        seen += ids
        states.append(state)
    assert all(s == states[0] for s in states)
    assert states[0]["iterations_in_epoch"] == taken and states[0][resume.SHARDS_KEY] == before
    rest = []
    for r in range(after):
        rest += _epoch_ids(task, after, r, state=states[0])[0]
    every = seen + rest
    assert set(every) == set(range(len(task.dataset("train"))))  # nothing passed over
    repeated = len(every) - len(set(every))
    assert repeated == 0 if (taken * before) % after == 0 else 0 < repeated <= (after - 1) * 8


def test_resuming_a_cpu_ddp_run_on_one_process_keeps_its_batch_and_says_where_it_starts(data_dir, tmp_path):
    """The batch is sequences per update over all ranks: 2 ranks x 8, then 1 rank x 2 micro-batches of 8 (the same
    batches of the epoch: the position is rescaled by the rank count), then 1 x 16 (other batches: the same fraction
    of the epoch). The run's identity holds; another --batch-size is refused."""
    out = tmp_path / "run"
    common = ["--log-interval", 1, "--save-interval", 0]
    cli(*tiny(data_dir, out, "--cpu-procs", 2, "--max-updates", 4, *common))
    cli(*tiny(data_dir, out, "--micro-batch-size", 8, "--max-updates", 6, *common))
    cli(*tiny(data_dir, out, "--max-updates", 8, *common))
    s = summary(out)
    assert [launch["from_update"] for launch in s["launches"]] == [0, 4, 6] and s["num_updates"] == 8
    # the epoch's 1320 examples are 165 batches of 8, or 82 of 16 and one of 8 (shuffled among them: update 7 here)
    assert [c["bsz"] for c in s["curve"][:6]] == [16] * 6 and s["batch_size"] == 16
    commands = [launch["command"] for launch in s["launches"]]
    assert "--batch-size 8 --update-freq 1" in commands[0] and "--batch-size 8 --update-freq 2" in commands[1]
    assert "--batch-size 16 --update-freq 1" in commands[2]
    log = " ".join((out / "train.log").read_text().split())
    assert ("resuming on 1 data-parallel ranks instead of 2: the 8 batches of epoch 1 trained so far are 4 per rank "
            "on 2 ranks; starting each rank at its batch 8") in log
    # 4 x 2 + 2 x 2 = 12 of the epoch's batches of 8, then batches of 16: half as many, 6 of them trained
    assert "(another micro-batch size): 12 of its " in log
    assert "starting each rank at its batch 6, as far into the epoch" in log
    r = cli(*tiny(data_dir, out, "--max-updates", 10, "--batch-size", 8), ok=None)
    assert r.exit_code == 2 and "schedule batch size: 16 -> 8" in r.output
