"""`xling export hf` / `xling import hf` on a tiny random fairseq XLM-R-layout model, and bad inputs."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xling.cli.main import app

transformers = pytest.importorskip("transformers")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
runner = CliRunner()


def _lines(n=40):
    if not (DATA / "tatoeba").is_dir():
        pytest.skip("shared data absent")
    out = []
    for lang in ("de", "ru", "el", "ar", "hi", "zh", "ja", "th"):
        f = DATA / "tatoeba" / f"tatoeba.{lang}-en.{lang}"
        out += [ln for ln in f.read_text(encoding="utf-8").split("\n") if ln.strip()][:n]
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A random 2-layer fairseq roberta with a real SentencePiece vocabulary over 8 scripts."""
    import sentencepiece as spm
    import torch

    from xling.convert import layout
    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    from fairseq import tasks

    root = tmp_path_factory.mktemp("tiny")
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(_lines(120)), model_writer=buf, vocab_size=2000,
                                   model_type="unigram", character_coverage=1.0, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    pieces = [sp.IdToPiece(i) for i in range(3, sp.GetPieceSize())]
    dims = layout.Dims(layers=2, hidden=32, heads=4, ffn=64, max_positions=64)
    scratch = root / "scratch"
    scratch.mkdir()
    layout.write_dict(scratch / "dict.txt", pieces)
    args = layout.fairseq_args(dims, scratch)
    torch.manual_seed(1)
    model = tasks.setup_task(args).build_model(args)
    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("version")}
    for k in sd:        # make norms and biases non-trivial so a swapped name cannot pass
        if "norm" in k or k.endswith("bias"):
            sd[k] = torch.randn_like(sd[k]) * 0.1 + (1.0 if k.endswith("weight") else 0.0)
    sd["encoder.lm_head.weight"] = sd["encoder.sentence_encoder.embed_tokens.weight"]
    out = root / "model"
    out.mkdir()
    layout.write_model_dir(out, sd, dims, pieces, buf.getvalue())
    return out


@pytest.fixture(scope="module")
def tiny_xling_xlm(tiny, tmp_path_factory):
    """The same vocabulary in a model of `xling pretrain`'s own architecture (xling_xlm_tiny)."""
    import shutil

    import torch

    pytest.importorskip("xling.xlmplug")
    import xling.xlmplug  # noqa: F401  (registers the architecture)
    from fairseq import options, tasks

    out = tmp_path_factory.mktemp("xlm") / "model"
    out.mkdir()
    for name in ("dict.txt", "sentencepiece.bpe.model"):
        shutil.copyfile(tiny / name, out / name)
    args = options.parse_args_and_arch(options.get_training_parser(), [
        str(out), "--task", "masked_lm", "--criterion", "masked_lm", "--arch", "xling_xlm_tiny",
        "--tokens-per-sample", "64", "--max-positions", "64"])
    torch.manual_seed(2)
    model = tasks.setup_task(args).build_model(args)
    args.data = "."
    torch.save({"args": args, "model": model.state_dict(), "extra_state": {"train_iterator": None},
                "optimizer_history": [{"criterion_name": "x", "optimizer_name": "x",
                                       "lr_scheduler_state": {"best": None}, "num_updates": 0}],
                "last_optimizer_state": None}, out / "model.pt")
    return out


def test_export_of_an_xling_pretrain_architecture(tiny_xling_xlm, tmp_path):
    import torch
    hf_dir = tmp_path / "hf"
    res = runner.invoke(app, ["export", "hf", str(tiny_xling_xlm), "--out", str(hf_dir)])
    assert res.exit_code == 0, res.output
    hub = _hub(tiny_xling_xlm)
    mlm = transformers.XLMRobertaForMaskedLM.from_pretrained(str(hf_dir)).eval()
    ids = hub.encode(_lines(1)[0])
    with torch.no_grad():
        logits, _ = hub.model(ids[None])
        assert float((logits - mlm(ids[None]).logits).abs().max()) < 1e-4


def _hub(d):
    from xling.fairseq_compat import ensure_fairseq
    ensure_fairseq()
    from fairseq.models.roberta import RobertaModel
    h = RobertaModel.from_pretrained(str(d), "model.pt", bpe="sentencepiece")
    return h.eval()


def test_round_trip_identical_and_forward_agrees(tiny, tmp_path):
    import torch
    hf_dir, back = tmp_path / "hf", tmp_path / "back"
    res = runner.invoke(app, ["export", "hf", str(tiny), "--out", str(hf_dir)])
    assert res.exit_code == 0, res.output
    assert {"config.json", "model.safetensors", "tokenizer.json", "sentencepiece.bpe.model"} <= \
        {p.name for p in hf_dir.iterdir()}
    assert json.loads((hf_dir / "config.json").read_text())["model_type"] == "xlm-roberta"
    res = runner.invoke(app, ["import", "hf", str(hf_dir), "--out", str(back)])
    assert res.exit_code == 0, res.output
    a = torch.load(tiny / "model.pt", weights_only=True)["model"]
    b = torch.load(back / "model.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    hub = _hub(tiny)
    tok = transformers.AutoTokenizer.from_pretrained(str(hf_dir))
    mlm = transformers.XLMRobertaForMaskedLM.from_pretrained(str(hf_dir)).eval()
    worst_h = worst_l = 0.0
    n = 0
    for line in _lines(5):
        ids = hub.encode(line)
        assert tok(line)["input_ids"] == ids.tolist(), line
        with torch.no_grad():
            logits, extra = hub.model(ids[None], return_all_hiddens=True)
            hidden = extra["inner_states"][-1].transpose(0, 1)
            out = mlm(ids[None], output_hidden_states=True)
        worst_h = max(worst_h, float((hidden - out.hidden_states[-1]).abs().max()))
        worst_l = max(worst_l, float((logits - out.logits).abs().max()))
        n += 1
    assert n == 40 and worst_h < 1e-4 and worst_l < 1e-4, (worst_h, worst_l)


def test_export_of_an_old_style_fairseq_checkpoint(tiny, tmp_path):
    """Published XLM-R checkpoints use fairseq's old names (decoder.*, emb_layer_norm)."""
    import shutil

    import torch
    old = tmp_path / "old"
    shutil.copytree(tiny, old)
    ck = torch.load(old / "model.pt", weights_only=True)
    ck["model"] = {k.replace("encoder.", "decoder.", 1).replace(".layernorm_embedding.", ".emb_layer_norm."): v
                   for k, v in ck["model"].items()}
    torch.save(ck, old / "model.pt")
    res = runner.invoke(app, ["export", "hf", str(old), "--out", str(tmp_path / "hf")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["import", "hf", str(tmp_path / "hf"), "--out", str(tmp_path / "back")])
    assert res.exit_code == 0, res.output
    a = torch.load(tiny / "model.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "back" / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_export_rerun_skips(tiny, tmp_path):
    hf_dir = tmp_path / "hf"
    assert runner.invoke(app, ["export", "hf", str(tiny), "--out", str(hf_dir)]).exit_code == 0
    before = (hf_dir / "model.safetensors").stat().st_mtime_ns
    res = runner.invoke(app, ["export", "hf", str(tiny), "--out", str(hf_dir)])
    assert res.exit_code == 0 and "already exported" in res.output
    assert (hf_dir / "model.safetensors").stat().st_mtime_ns == before


def test_export_of_a_directory_that_is_not_a_model(tmp_path):
    d = tmp_path / "notamodel"
    d.mkdir()
    (d / "dict.txt").write_text("a 1\n")
    res = runner.invoke(app, ["export", "hf", str(d), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "missing model.pt, sentencepiece.bpe.model" in res.output
    assert not (tmp_path / "o").exists()


def test_truncated_checkpoint_is_exit_2_and_writes_nothing(tiny, tmp_path):
    import shutil
    d = tmp_path / "cut"
    shutil.copytree(tiny, d)
    raw = (d / "model.pt").read_bytes()
    (d / "model.pt").write_bytes(raw[: len(raw) // 2])
    res = runner.invoke(app, ["export", "hf", str(d), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "cannot read the checkpoint" in res.output, res.output
    assert not (tmp_path / "o").exists()


def test_import_hf_bad_inputs(tiny, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(app, ["import", "hf", str(empty), "--out", str(tmp_path / "o1")])
    assert res.exit_code == 2 and "missing config.json" in res.output
    hf_dir = tmp_path / "hf"
    assert runner.invoke(app, ["export", "hf", str(tiny), "--out", str(hf_dir)]).exit_code == 0
    raw = (hf_dir / "model.safetensors").read_bytes()
    (hf_dir / "model.safetensors").write_bytes(raw[: len(raw) - 5000])
    res = runner.invoke(app, ["import", "hf", str(hf_dir), "--out", str(tmp_path / "o2")])
    assert res.exit_code == 2 and "cannot read the weights" in res.output, res.output
    assert not (tmp_path / "o2").exists()
    cfg = json.loads((hf_dir / "config.json").read_text())
    cfg["model_type"] = "gpt2"
    (hf_dir / "config.json").write_text(json.dumps(cfg))
    res = runner.invoke(app, ["import", "hf", str(hf_dir), "--out", str(tmp_path / "o3")])
    assert res.exit_code == 2 and "not a BERT-family encoder" in res.output
