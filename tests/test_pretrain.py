"""`xling pretrain` / `xling inspect` and the fairseq plugin `xling.xlmplug`, on real tatoeba text (CPU, tiny)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from xling.cli.main import app

from conftest import summary, tiny  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TATOEBA = SHARED / "tatoeba"
pytestmark = pytest.mark.skipif(not TATOEBA.is_dir(), reason="shared tatoeba data not available")

runner = CliRunner()
os.environ.setdefault("OMP_NUM_THREADS", "1")


def cli(*args):
    r = runner.invoke(app, [str(a) for a in args])
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r


def ok(*args):
    r = cli(*args)
    assert r.exit_code == 0, r.output
    return r


def load_model_dir(model_dir):
    import xling.xlmplug  # noqa: F401
    from fairseq import checkpoint_utils

    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
        [str(model_dir / "model.pt")], arg_overrides={"data": str(model_dir)})
    return models[0].eval(), task


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def mlm_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("mlm") / "run"
    r = ok(*tiny(data_dir, out, "--max-updates", 200, "--log-interval", 10))
    return out, r.output


def test_mlm_only_loss_drops_and_model_dir_loads(mlm_run, tmp_path):
    out, output = mlm_run
    s = summary(out)
    curve = s["curve"]
    assert s["num_updates"] == 200 and s["pairs"] == [] and s["tlm_ratio"] == 0
    assert [c["num_updates"] for c in curve] == list(range(10, 201, 10))
    assert all("tlm_loss" not in c for c in curve) and all("mlm_loss" in c for c in curve)
    # observed: 10.4 bits at update 10 -> 8.1-8.6 at update 200 (log2 |V| = 10.2)
    first, last = curve[0]["loss"], np.mean([c["loss"] for c in curve[-3:]])
    assert last < first - 1.5, (first, last)
    assert s["valid"] and s["valid"][-1]["valid_loss"] < first - 1.5
    assert "last loss" in output

    # the model directory is a standard one: only model.pt, dict.txt, sentencepiece.bpe.model (and the hidden
    # record of what xling wrote there, xling.outputs.RECORD)
    md = out / "model"
    assert sorted(p.name for p in md.iterdir() if p.name != ".xling-outputs.json") == [
        "dict.txt", "model.pt", "sentencepiece.bpe.model"]
    copy = tmp_path / "md"
    shutil.copytree(md, copy)  # no manifest, no data next to it
    import torch

    model, task = load_model_dir(copy)
    assert type(model).__mro__[1].__name__ == "RobertaModel"
    assert task.langs == ["de", "en", "fr"]
    assert len(task.source_dictionary) == sum(1 for _ in open(copy / "dict.txt")) + 5
    tokens = torch.tensor([[0, 50, 60, 70, 2], [0, 80, 90, 2, 1]])
    feats, extra = model(tokens, features_only=True)
    assert feats.shape == (2, 5, 64) and isinstance(extra, dict)
    logits, _ = model(tokens)
    assert logits.shape == (2, 5, len(task.source_dictionary))
    # explicit 0-based positions equal RoBERTa's implicit ones
    pos = torch.arange(5).expand(2, 5)
    assert torch.allclose(model(tokens, features_only=True, positions=pos)[0][0], feats[0], atol=1e-5)

    r = ok("inspect", out / "model", "--json", tmp_path / "inspect.json")
    rep = json.loads((tmp_path / "inspect.json").read_text())
    assert rep["updates"] == 200 and rep["layers"] == 2 and rep["embed_dim"] == 64
    assert rep["vocab_size"] == len(task.source_dictionary) and rep["langs"] == ["de", "en", "fr"]
    assert rep["arch"] == "xling_xlm_tiny" and not rep["has_optimizer_state"]
    assert rep["valid_loss"] == pytest.approx(min(v["valid_loss"] for v in s["valid"]), abs=2e-3)
    assert "xling_xlm_tiny" in r.output and "200" in r.output


def test_mlm_tlm_run_logs_both_losses(data_dir, tmp_path):
    out = tmp_path / "run"
    ok(*tiny(data_dir, out, "--tlm", "--lang-embeddings", "--max-updates", 200, "--log-interval", 20))
    s = summary(out)
    assert s["pairs"] == ["en-de", "en-fr"] and s["tlm_ratio"] == 0.5
    curve = s["curve"]
    # observed: mlm 10.5 -> 8.5, tlm 10.4 -> 8.3 bits over 200 updates
    for key in ("loss", "mlm_loss", "tlm_loss"):
        assert curve[-1][key] < curve[0][key] - 1.2, (key, curve[0][key], curve[-1][key])
    last_ck = out / "checkpoints" / "checkpoint_last.pt"
    stamp = last_ck.stat().st_mtime_ns
    rep = json.loads(json.dumps(__import__("xling.checkpoint_info", fromlist=["x"]).inspect_checkpoint(out)))
    assert rep["lang_embeddings"] and rep["pairs"] == ["en-de", "en-fr"] and rep["train_tlm_loss"] is not None
    # re-running a finished run skips it, also with options that are not part of its identity (logging)
    r = ok(*tiny(data_dir, out, "--tlm", "--lang-embeddings", "--max-updates", 200, "--log-interval", 20))
    assert "up to date" in r.output and last_ck.stat().st_mtime_ns == stamp
    r = ok(*tiny(data_dir, out, "--tlm", "--lang-embeddings", "--max-updates", 200, "--log-interval", 50))
    assert "up to date" in r.output and last_ck.stat().st_mtime_ns == stamp


def _task(data_dir, **cfg):
    import xling.xlmplug  # noqa: F401
    from fairseq import tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.options import get_training_parser, parse_args_and_arch

    argv = [str(data_dir), "--task", "xling_xlm", "--arch", "xling_xlm_tiny", "--criterion", "xling_mlm_tlm",
            "--tokens-per-sample", "64", "--cpu"]
    for k, v in cfg.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    args = parse_args_and_arch(get_training_parser(), argv)
    c = convert_namespace_to_omegaconf(args)
    return tasks.setup_task(c.task)


def _batches(task, split="train", bsz=32, epoch=1):
    task.load_dataset(split)
    itr = task.get_batch_iterator(task.dataset(split), max_sentences=bsz, seed=1, epoch=epoch)
    return list(itr.next_epoch_itr(shuffle=False))


def test_tlm_batches_hold_both_languages_with_restarted_positions(data_dir):
    import sentencepiece as spm

    task = _task(data_dir, langs="de,en,fr", pairs="en-fr,en-de", tlm_ratio=1.0, sample_break_mode="eos")
    d = task.source_dictionary
    sp = spm.SentencePieceProcessor(model_file=str(data_dir / "spm.model"))
    texts = {p: [(data_dir / "para" / f"train.{p}.{l}.txt").read_text().splitlines() for l in p.split("-")]
             for p in ("en-fr", "en-de")}
    batches = _batches(task)
    n_rows = 0
    for b in batches:
        assert bool(b["tlm"].all())
        src, pos, lang = (b["net_input"][k] for k in ("src_tokens", "positions", "lang_ids"))
        for i in range(src.size(0)):
            row = src[i][src[i].ne(d.pad())]
            eos = (row == d.eos()).nonzero().flatten().tolist()
            assert row[0] == d.bos() and len(eos) == 2 and eos[1] == len(row) - 1
            cut = eos[0] + 1
            p = pos[i][: len(row)].tolist()
            assert p == list(range(cut)) + list(range(len(row) - cut))  # positions restart at the target
            li = lang[i][: len(row)].tolist()
            assert set(li[:cut]) == {task.lang_index["en"]}
            tgt_lang = li[cut]
            assert set(li[cut:]) == {tgt_lang} and tgt_lang in (task.lang_index["fr"], task.lang_index["de"])
            n_rows += 1
    assert n_rows == len(task.dataset("train"))
    # unmasked, the two segments are a real translation pair of the corpus, in the right languages
    inner = task.dataset("train").dataset
    for j in range(0, len(inner), 97):
        ex = inner[j]
        t = ex["tokens"].tolist()
        cut = t.index(d.eos()) + 1
        to_text = lambda ids: sp.decode([i - 1 for i in ids if i > d.eos()])  # noqa: E731
        src_text, tgt_text = to_text(t[1:cut - 1]), to_text(t[cut:-1])
        pair = "en-fr" if ex["lang"][-1].item() == task.lang_index["fr"] else "en-de"
        en, other = texts[pair]
        hits = [k for k, s in enumerate(en) if s.startswith(src_text)]  # a side may be cut to 31 tokens
        assert hits and len(src_text) > 3, src_text
        assert tgt_text and any(other[k].startswith(tgt_text) for k in hits), (src_text, tgt_text)
    # about 15% of the non-special tokens (all but <s> and the two </s>) are prediction targets
    tgt = sum(int(b["target"].ne(d.pad()).sum()) for b in batches)
    real = sum(int((b["net_input"]["src_lengths"] - 3).sum()) for b in batches)
    assert 0.13 < tgt / real < 0.17


@pytest.mark.parametrize("alpha", [0.3, 1.0])
def test_language_sampling_follows_alpha(data_dir, alpha):
    task = _task(data_dir, langs="de,en,fr", alpha=alpha, sample_break_mode="eos")
    man = json.loads((data_dir / "manifest.json").read_text())
    n = np.array([man["mono"][l]["sentences"]["train"] for l in task.langs], dtype=float)
    q = (n / n.sum()) ** alpha
    q /= q.sum()
    counts = np.zeros(len(task.langs))
    for b in _batches(task):
        counts += np.bincount(b["lang"].numpy(), minlength=len(task.langs))
    freq = counts / counts.sum()
    assert counts.sum() == pytest.approx(n.sum(), abs=3)
    assert np.abs(freq - q).max() < 0.01, (freq, q)
    if alpha < 1:  # smoothing really up-samples the smaller languages
        assert freq[task.langs.index("en")] < n[task.langs.index("en")] / n.sum() - 0.05


def test_span_masking_geometric():
    from xling.xlmplug.masking import mask_positions

    rng = np.random.default_rng(0)
    maskable = np.ones(400, dtype=bool)
    runs, covered = [], []
    for _ in range(200):
        m = mask_positions(maskable, rng, 0.15, span_p=0.3, max_span=10)
        covered.append(m.mean())
        edges = np.diff(np.concatenate([[0], m.astype(int), [0]]))
        runs += list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))
    assert 0.14 < np.mean(covered) < 0.17
    assert 2.3 < np.mean(runs) < 4.5 and max(runs) > 5  # geometric(0.3): mean 3.3 before merging/clipping
    single = mask_positions(maskable, rng, 0.15)
    assert single.sum() in (60, 61)


def test_cpu_ddp_two_processes(data_dir, tmp_path):
    out = tmp_path / "ddp"
    r = ok(*tiny(data_dir, out, "--cpu-procs", 2, "--max-updates", 20, "--log-interval", 5, "--batch-size", 24))
    s = summary(out)
    assert s["num_updates"] == 20
    # 2 ranks x 12 sentences per update (fairseq would have cut a batch of 12 to 8: a multiple of 8 or fewer)
    assert all(c["bsz"] == 24 for c in s["curve"])
    assert "--batch-size 12 --update-freq 1 --required-batch-size-multiple 1" in s["command"]
    assert (out / "train.rank1.log").exists() and "distributed" in (out / "train.log").read_text()
    assert "--distributed-world-size 2" in s["command"]
    assert "last loss" in r.output


def test_resume_gives_the_uninterrupted_loss_curve(data_dir, tmp_path):
    common = ["--tlm", "--total-updates", 40, "--log-interval", 1]
    ok(*tiny(data_dir, tmp_path / "a", *common, "--max-updates", 40))
    ok(*tiny(data_dir, tmp_path / "b", *common, "--max-updates", 20))
    assert summary(tmp_path / "b")["num_updates"] == 20
    ok(*tiny(data_dir, tmp_path / "b", *common, "--max-updates", 40))
    a, b = summary(tmp_path / "a")["curve"], summary(tmp_path / "b")["curve"]
    assert [c["num_updates"] for c in b] == list(range(1, 41))
    for x, y in zip(a, b):
        assert x["num_updates"] == y["num_updates"]
        assert x.keys() == y.keys()
        for key in ("loss", "mlm_loss", "tlm_loss"):
            if key in x:
                assert x[key] == pytest.approx(y[key], abs=2e-3), (x, y)


def test_dry_run_prints_fairseq_command(data_dir, tmp_path):
    r = ok(*tiny(data_dir, tmp_path / "x", "--tlm", "--pairs", "en-fr", "--cpu-procs", 2, "--dry-run",
                 "--", "--clip-norm", "0.5"))
    lines = [ln for ln in r.output.splitlines() if "xling.xlmplug.train" in ln]
    assert len(lines) == 2
    for rank, ln in enumerate(lines):
        assert "--task xling_xlm" in ln and "--pairs en-fr" in ln and "--langs de,en,fr" in ln
        assert f"--distributed-rank {rank}" in ln and "--distributed-backend gloo" in ln
        assert ln.rstrip().endswith("--clip-norm 0.5")
    assert not (tmp_path / "x").exists()


def test_user_dir_plugin_import(tmp_path):
    plug = Path(__file__).resolve().parents[1] / "xling" / "xlmplug"
    code = ("import argparse\n"
            "from fairseq import utils\n"
            f"utils.import_user_module(argparse.Namespace(user_dir={str(plug)!r}))\n"
            "from fairseq.tasks import TASK_REGISTRY\nfrom fairseq.models import ARCH_MODEL_REGISTRY\n"
            "assert 'xling_xlm' in TASK_REGISTRY and 'xling_xlm_large' in ARCH_MODEL_REGISTRY\nprint('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]


def test_bad_inputs_exit_2_before_training(data_dir, mlm_run, tmp_path):
    import torch

    out = tmp_path / "bad"
    # data dir without a manifest
    r = cli(*tiny(data_dir / "mono", out))
    assert r.exit_code == 2 and "manifest.json is missing" in r.output
    # manifest but no dict
    nodict = tmp_path / "nodict"
    nodict.mkdir()
    shutil.copy(data_dir / "manifest.json", nodict)
    r = cli(*tiny(nodict, out))
    assert r.exit_code == 2 and "dict.txt is missing" in r.output
    # a pair that was not prepared
    r = cli(*tiny(data_dir, out, "--tlm", "--pairs", "en-ru"))
    assert r.exit_code == 2 and "pair 'en-ru' was not prepared" in r.output and "en-de" in r.output
    # more GPUs than visible
    n = torch.cuda.device_count()
    r = cli(*tiny(data_dir, out, "--gpus", n + 1))
    assert r.exit_code == 2 and f"{n} GPU(s) are visible" in r.output
    assert not out.exists()
    # dict of the data vs vocabulary of the checkpoint to resume: the classic XLM mismatch
    run, _ = mlm_run
    other = tmp_path / "data2"
    shutil.copytree(data_dir, other)
    with open(other / "dict.txt", "a", encoding="utf-8") as f:
        f.write("".join(f"extrapiece{i} 1\n" for i in range(7)))
    last = run / "checkpoints" / "checkpoint_last.pt"
    before = {p.name: sha(p) for p in (run / "checkpoints").iterdir()}
    r = cli(*tiny(other, run, "--max-updates", 250))
    assert r.exit_code == 2 and "vocabulary mismatch" in r.output
    n_old = sum(1 for _ in open(data_dir / "dict.txt")) + 5
    assert f"gives {n_old + 7} symbols" in r.output and f"has {n_old}" in r.output  # both sizes named
    assert {p.name: sha(p) for p in (run / "checkpoints").iterdir()} == before and last.exists()


def test_init_continues_from_a_model_dir_and_adds_a_missing_lm_head(data_dir, mlm_run, tmp_path):
    import torch

    run, _ = mlm_run
    src = tmp_path / "encoder_only"
    shutil.copytree(run / "model", src)
    state = torch.load(src / "model.pt", map_location="cpu", weights_only=True)
    state["model"] = {k: v for k, v in state["model"].items() if ".lm_head." not in k}  # like an encoder import
    torch.save(state, src / "model.pt")
    out = tmp_path / "cont"
    ok(*tiny(data_dir, out, "--init", src, "--max-updates", 20, "--log-interval", 5))
    init = torch.load(out / "init" / "model.pt", map_location="cpu", weights_only=True)
    assert sorted(init["extra_state"]["init_added"]) == sorted(
        k for k in torch.load(run / "model" / "model.pt", weights_only=True)["model"] if ".lm_head." in k)
    for k, v in state["model"].items():  # every encoder weight carried over as is
        assert torch.equal(init["model"][k], v), k
    assert summary(out)["num_updates"] == 20
    # from a full model directory (with its LM head) the first loss is far below a fresh model's
    # (observed: 8.4 vs 10.2-10.4 bits)
    ok(*tiny(data_dir, tmp_path / "cont_full", "--init", run / "model", "--max-updates", 10, "--log-interval", 5))
    assert summary(tmp_path / "cont_full")["curve"][0]["loss"] < summary(run)["curve"][0]["loss"] - 1.0
    # a data/vocab mismatch names both sizes and starts nothing
    other = tmp_path / "data2"
    shutil.copytree(data_dir, other)
    with open(other / "dict.txt", "a", encoding="utf-8") as f:
        f.write("".join(f"extrapiece{i} 1\n" for i in range(3)))
    n = sum(1 for _ in open(data_dir / "dict.txt"))
    r = cli(*tiny(other, tmp_path / "cont2", "--init", run / "model"))
    assert r.exit_code == 2 and f"dict.txt has {n} entries" in r.output and f"has {n + 3}" in r.output
    assert not (tmp_path / "cont2").exists()


def test_multi_node_gpu_command(tmp_path):
    """The GPU launch flags (fairseq spawns one process per GPU; rank offset per node)."""
    from xling.pretrain import DataInfo, PretrainOptions, build_command, rank_commands

    opts = PretrainOptions(data=tmp_path, out=tmp_path / "o", preset="large", gpus=8, nodes=2, node_rank=1,
                           master="10.0.0.1:12345", precision="bf16", max_updates=1000)
    info = DataInfo(["en", "fr"], ["en-fr"], 0.5, True, 1000, {})
    cmd = build_command(opts, info)
    text = " ".join(cmd)
    assert "--arch xling_xlm_large" in text and "--bf16" in text and "--cpu" not in cmd
    assert "--distributed-world-size 16" in text and "--distributed-rank 8" in text
    assert "--distributed-init-method tcp://10.0.0.1:12345" in text and "--ddp-backend pytorch_ddp" in text
    assert "--pairs en-fr --tlm-ratio 0.5" in text and "--max-update 1000" in text
    assert rank_commands(opts, cmd, 1) == [cmd]  # one launcher process per node


def test_library_plan_picks_the_architecture_and_checks_noise(data_dir, tmp_path):
    """`xling.pretrain.plan` is what the CLI calls: --tasks xdae picks the encoder-decoder, noise options on an
    encoder are refused with the CLI's flag names, and the objectives are validated by the registry."""
    from xling import pretrain as lib
    from xling.errors import XlingError

    out = tmp_path / "p"
    p = lib.plan(lib.PretrainOptions(data=data_dir, out=out, preset="tiny", tasks=["xdae"]))
    assert p.arch == "seq2seq" and "xling_dae" in p.command and p.max_updates == 300
    p = lib.plan(lib.PretrainOptions(data=data_dir, out=out, preset="tiny", tasks=["mlm", "clwr"],
                                     task_weights=[1, 0.5]))
    assert p.arch == "encoder" and p.info.tasks == ["mlm", "clwr"] and p.info.task_weights == [1.0, 0.5]
    with pytest.raises(XlingError, match="--mask-ratio, --word-blank"):
        lib.plan(lib.PretrainOptions(data=data_dir, out=out, preset="tiny"),
                 lib.NoiseOptions(mask=0.5, word_blank=0.1))
    with pytest.raises(XlingError, match="--mask-ratio must be within"):
        lib.plan(lib.PretrainOptions(data=data_dir, out=out, preset="tiny"), lib.NoiseOptions(mask=1.5), "seq2seq")
    with pytest.raises(XlingError, match="--arch must be encoder or seq2seq"):
        lib.plan(lib.PretrainOptions(data=data_dir, out=out, preset="tiny"), arch="decoder")
    assert not out.exists()
