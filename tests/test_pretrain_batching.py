"""`--batch-size` is sequences per update over all ranks, the same on any number of GPUs, nodes or CPU
processes; `--micro-batch-size` only changes how an update is split (xling.pretrain.batching)."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from conftest import cli, tiny


def split(preset="base", gpus=1, nodes=1, cpu_procs=1, **kw):
    from xling.pretrain import PRESETS, PretrainOptions
    from xling.pretrain.batching import plan_batching

    opts = PretrainOptions(data=Path("d"), out=Path("o"), preset=preset, nodes=nodes, cpu_procs=cpu_procs, **kw)
    b = plan_batching(opts, PRESETS[preset], gpus)
    return b.world, b.update_freq, b.micro, b.max_tokens, b.args()


@pytest.mark.parametrize("kw,expected", [
    # XLM-R base, 256 x 512 tokens per update: 1 GPU takes 4 micro-batches of 64 blocks' worth, 8 GPUs one of 32
    (dict(), (1, 4, 64, 32768, ["--update-freq", "4", "--max-tokens", "32768"])),
    (dict(gpus=8), (8, 1, 32, 16384, ["--update-freq", "1", "--max-tokens", "16384"])),
    (dict(gpus=8, nodes=4), (32, 1, 8, 4096, ["--update-freq", "1", "--max-tokens", "4096"])),
    # 3 GPUs: a token budget of 256 x 512 / 6 (whole blocks: 42 a micro-batch)
    (dict(gpus=3), (3, 2, 42, 21845, ["--update-freq", "2", "--max-tokens", "21845",
                                       "--required-batch-size-multiple", "1"])),
    (dict(preset="large"), (1, 8, 32, 16384, ["--update-freq", "8", "--max-tokens", "16384"])),
    (dict(gpus=8, batch_size=8192), (8, 16, 64, 32768, ["--update-freq", "16", "--max-tokens", "32768"])),
    # a micro-batch cap: whole sequences, the fewest micro-batches that split 256 evenly (48 -> 8 x 32)
    (dict(micro_batch_size=48), (1, 8, 32, 16384, ["--batch-size", "32", "--update-freq", "8", "--max-tokens", "16384"])),
    # CPU: whole sequences, the preset's micro-batch at most
    (dict(gpus=0), (1, 8, 32, None, ["--batch-size", "32", "--update-freq", "8"])),
    (dict(gpus=0, cpu_procs=2, preset="tiny"), (2, 1, 8, None, ["--batch-size", "8", "--update-freq", "1"])),
    (dict(gpus=0, preset="tiny", micro_batch_size=5), (1, 4, 4, None, ["--batch-size", "4", "--update-freq", "4",
                                                                       "--required-batch-size-multiple", "1"])),
])
def test_an_update_holds_the_batch_on_any_number_of_devices(kw, expected):
    world, freq, micro, max_tokens, args = split(**kw)
    assert (world, freq, micro, max_tokens, args) == expected
    batch = kw.get("batch_size", 16 if kw.get("preset") == "tiny" else 256)
    if max_tokens is None:
        assert world * freq * micro == batch
    else:
        assert batch * 512 - world * freq < world * freq * max_tokens <= batch * 512


def test_a_batch_that_does_not_split_over_the_ranks_is_refused_before_anything_is_written(data_dir, tmp_path):
    out = tmp_path / "run"
    r = cli(*tiny(data_dir, out, "--cpu-procs", 3), ok=None)
    assert r.exit_code == 2 and "--batch-size 16 sequences per update do not split evenly over 3" in r.output
    assert "fix: use --batch-size 15 or 18" in " ".join(r.output.split())
    r = cli(*tiny(data_dir, out, "--cpu-procs", 2, "--batch-size", 1), ok=None)
    assert r.exit_code == 2 and "fewer sequences per update than the 2 data-parallel processes" in r.output
    r = cli(*tiny(data_dir, out, "--micro-batch-size", 0), ok=None)
    assert r.exit_code == 2 and "--micro-batch-size must be at least 1" in r.output
    assert not out.exists()


def test_a_dry_run_plans_two_nodes_of_eight_gpus_from_a_machine_without_them(data_dir, tmp_path):
    """A cluster's login node has no GPUs: --dry-run prints the command of node rank 1 of 2 x 8 GPUs and how the
    batch is split over 16; training itself still refuses GPUs that are not visible."""
    import torch

    out = tmp_path / "o"
    args = ["pretrain", "--data", data_dir, "--out", out, "--preset", "base", "--gpus", 8, "--nodes", 2,
            "--master-addr", "10.0.0.1", "--master-port", 1234, "--node-rank", 1]
    r = cli(*args, "--dry-run")
    text = " ".join(r.output.split())
    assert "--distributed-init-method tcp://10.0.0.1:1234" in text
    # the old spelling (--master ADDR:PORT) still works, with a one-line notice; disagreeing spellings are refused
    old = [a for a in args if a not in ("--master-addr", "10.0.0.1", "--master-port", 1234)]
    r_old = cli(*old, "--master", "10.0.0.1:1234", "--dry-run")
    assert " ".join(r_old.output.split()).count("--master is deprecated: use --master-addr/--master-port") == 1
    assert "--distributed-init-method tcp://10.0.0.1:1234" in " ".join(r_old.output.split())
    r_bad = cli(*args, "--master", "10.0.0.2:1234", "--dry-run", ok=None)
    assert r_bad.exit_code == 2 and "disagree" in r_bad.output
    assert ("batch 256 sequences per update: 16 GPUs x --update-freq 1 x micro-batches of up to 8192 tokens "
            "(--max-tokens: 16 x 512-token blocks") in text and "up to 131072 tokens per update" in text
    cmd = shlex.split(next(ln for ln in r.output.splitlines() if "xling.xlmplug.train" in ln))
    assert cmd[cmd.index("--max-tokens") + 1] == "8192" and "--batch-size" not in cmd
    assert cmd[cmd.index("--distributed-rank") + 1] == "8" and cmd[cmd.index("--distributed-world-size") + 1] == "16"
    if torch.cuda.device_count() < 8:
        assert f"8 GPUs per node asked for, {torch.cuda.device_count()} visible here" in text
        r = cli(*args, "--max-updates", 1, ok=None)
        assert r.exit_code == 2 and "GPU(s) are visible" in r.output
    assert not out.exists()


def test_the_batch_not_its_split_is_the_runs_identity_and_older_records_still_resume(tmp_path):
    """run.json written before this version kept --batch-size/--update-freq/--max-tokens (per device); such a run
    resumes (its batch taken as the one asked for), while another batch or learning rate is refused."""
    from xling.errors import XlingError
    from xling.pretrain import DataInfo, PretrainOptions, build_command
    from xling.pretrain.identity import check_identity, run_identity

    opts = PretrainOptions(data=tmp_path, out=tmp_path / "o", preset="base", gpus=1, max_updates=1000)
    info = DataInfo(["en", "fr"], [], 0.0, True, 1000, {})
    ident = run_identity(opts, info, build_command(opts, info), 256)
    assert ident["schedule"]["batch size"] == 256 and not {"--update-freq", "--max-tokens"} & set(ident["schedule"])
    (opts.checkpoint_dir).mkdir(parents=True)
    (opts.checkpoint_dir / "checkpoint_last.pt").write_bytes(b"x")
    legacy = json.loads(json.dumps(ident))
    del legacy["schedule"]["batch size"]
    legacy["schedule"].update({"--batch-size": "32", "--update-freq": "8"})
    (opts.out / "run.json").write_text(json.dumps({"identity": legacy}))
    assert check_identity(opts, ident) == []
    legacy["schedule"]["--lr"] = "0.001"
    (opts.out / "run.json").write_text(json.dumps({"identity": legacy}))
    with pytest.raises(XlingError, match="schedule --lr: 0.001 -> 0.0006"):
        check_identity(opts, ident)
    (opts.out / "run.json").write_text(json.dumps({"identity": ident}))
    eight = PretrainOptions(data=tmp_path, out=tmp_path / "o", preset="base", gpus=8, max_updates=1000)
    moved = run_identity(eight, info, build_command(eight, info), 256)
    assert check_identity(opts, moved) == []
    with pytest.raises(XlingError, match="schedule batch size: 256 -> 512"):
        check_identity(opts, run_identity(opts, info, build_command(opts, info), 512))
