"""ProphetNet (`xling pretrain --arch seq2seq --tasks xdae --decoder prophetnet --ngram N`) on real tatoeba text: the
future n-gram loss (identity with fairseq's label-smoothed cross-entropy at N = 1), incremental main-stream
decoding equal to the full forward, training through the CLI (loss falls, resume, inspect, plain fairseq load),
fine-tuning and generation through `eval xglue --tasks qg`, and the refusals."""
from __future__ import annotations

import json

import pytest

from conftest import SHARED, cli, shared_path, summary, tiny

XGLUE = SHARED / "xglue-real"


def setup(data_dir, ngram, criterion="xling_ngram_loss", *more):
    import xling.xlmplug  # noqa: F401
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    argv = [str(data_dir), "--task", "xling_dae", "--arch", "xling_prophetnet_tiny", "--criterion", criterion,
            "--ngram", str(ngram), "--tokens-per-sample", "64", "--sample-break-mode", "complete", "--cpu",
            "--langs", "de,en,fr", "--mask", "0.35", "--mask-length", "span-poisson", "--replace-length", "1",
            "--poisson-lambda", "3.5", "--permute-sentences", "1", *more]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), argv))
    return tasks.setup_task(cfg.task), cfg


def batch_of(task, n=6):
    task.load_dataset("valid")
    ds = task.dataset("valid")
    return ds.collater([ds[i] for i in range(n)])


def test_ngram_loss_identity_and_streams(data_dir):
    import torch

    from xling.xlmplug.criterions.ngram_loss import shifted, stream_weights

    task, cfg = setup(data_dir, 1)
    torch.manual_seed(0)
    model = task.build_model(cfg.model).eval()
    batch = batch_of(task)
    ngram = task.build_criterion(cfg.criterion)
    _, plain_cfg = setup(data_dir, 1, "label_smoothed_cross_entropy", "--label-smoothing", "0.1")
    plain = task.build_criterion(plain_cfg.criterion)
    a, n_a, log_a = ngram(model, batch)
    b, n_b, log_b = plain(model, batch)
    # N = 1: the future n-gram loss is the main stream's ordinary next-token cross-entropy
    assert n_a == n_b and torch.allclose(a, b, rtol=1e-6) and torch.allclose(log_a["nll_loss"], log_b["nll_loss"])
    # N = 3: the main stream unchanged, two more streams whose targets lie 1 and 2 tokens further
    task3, cfg3 = setup(data_dir, 3)
    torch.manual_seed(0)
    model3 = task3.build_model(cfg3.model).eval()
    logits, extra = model3(**batch["net_input"])
    assert len(extra["ngram_logits"]) == 2 and all(x.shape == logits.shape for x in extra["ngram_logits"])
    loss3, _, log3 = task3.build_criterion(cfg3.criterion)(model3, batch)
    w = stream_weights(3, 0.5)
    assert w == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    t, pad = batch["target"], task.source_dictionary.pad()
    assert torch.equal(shifted(t, 2, pad)[:, :-2], t[:, 2:]) and shifted(t, 2, pad)[:, -2:].eq(pad).all()
    assert log3["stream2_n"] == int(shifted(t, 2, pad).ne(pad).sum()) < log3["stream0_n"]


def test_incremental_main_stream_equals_full_forward(data_dir):
    import torch

    task, cfg = setup(data_dir, 2)
    torch.manual_seed(0)
    model = task.build_model(cfg.model).eval()
    batch = batch_of(task, 3)
    with torch.no_grad():
        # three beams of one source (as fairseq's beam search holds them), each with its own prefix
        src = batch["net_input"]["src_tokens"][:1].expand(3, -1)
        enc = model.encoder(src, src_lengths=batch["net_input"]["src_lengths"][:1].expand(3))
        prev = batch["net_input"]["prev_output_tokens"][:, :7]
        full = model.decoder(prev, encoder_out=enc)[0]
        state, steps = {}, []
        for i in range(prev.size(1)):
            steps.append(model.decoder(prev[:, : i + 1], encoder_out=enc, incremental_state=state)[0])
            if i == 3:  # the beam search reorders the beams: the cached keys and values follow
                order = torch.tensor([2, 0, 0])
                model.decoder.reorder_incremental_state_scripting(state, order)
                prev, full, steps = prev[order], full[order], [s[order] for s in steps]
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


@pytest.fixture(scope="module")
def pn_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("prophetnet") / "run"
    flags = ["--arch", "seq2seq", "--tasks", "xdae", "--decoder", "prophetnet", "--batch-size", 8,
             "--log-interval", 10, "--total-updates", 30, "--lr", "2e-3"]
    dry = cli(*tiny(data_dir, out, *flags, "--max-updates", 20, "--dry-run")).output
    cli(*tiny(data_dir, out, *flags, "--max-updates", 20))
    cli(*tiny(data_dir, out, *flags, "--max-updates", 30))  # resumes at 20
    return out, dry


def test_prophetnet_pretrains_resumes_and_loads(pn_run, tmp_path):
    import torch

    import xling.xlmplug  # noqa: F401
    from fairseq import checkpoint_utils

    out, dry = pn_run
    assert "--criterion xling_ngram_loss" in dry and "--arch xling_prophetnet_tiny --ngram 2" in dry
    s = summary(out)
    assert s["num_updates"] == 30 and [c["num_updates"] for c in s["curve"]] == [10, 20, 30]
    first, last = s["curve"][0], s["curve"][-1]
    assert last["loss"] < first["loss"] - 0.5, (first["loss"], last["loss"])  # observed 10.1 -> 9.4 bits
    assert last["stream1_loss"] < first["stream1_loss"] - 0.5  # the predicting stream learns too
    models, cfg, _task = checkpoint_utils.load_model_ensemble_and_task(
        [str(out / "model" / "model.pt")], arg_overrides={"data": str(out / "model")})
    assert type(models[0]).__name__ == "ProphetNetModel" and models[0].decoder.ngram == 2
    saved = torch.load(out / "model" / "model.pt", map_location="cpu", weights_only=True)["model"]
    assert all(torch.equal(models[0].state_dict()[k], v) for k, v in saved.items())
    assert "prophetnet (ngram 2)" in cli("inspect", out).output


def test_prophetnet_generates_through_eval_xglue(pn_run, tmp_path):
    shared_path("xglue-real", "QG")
    out = tmp_path / "qg"
    cli("eval", "xglue", "--model", pn_run[0] / "model", "--data", XGLUE, "--tasks", "qg", "--zero-shot", "de",
        "--out", out, "--max-train-examples", 64, "--max-eval-examples", 8, "--epochs", 1, "--beam", 2,
        "--max-target-len", 8)
    r = json.loads((out / "results.json").read_text())
    assert set(r["tasks"]["qg"]["splits"]["test"]["langs"]) == {"en", "de"}
    lines = (out / "QG" / "de.prediction").read_text(encoding="utf-8").split("\n")
    assert len([x for x in lines if x.strip()]) == 8  # one generated question per test example


@pytest.mark.parametrize("flags,name", [
    (["--arch", "seq2seq", "--tasks", "xdae", "--decoder", "prophetnet", "--ngram", 0], "--ngram"),
    (["--arch", "seq2seq", "--tasks", "xdae", "--ngram", 3], "--ngram"),
    (["--arch", "seq2seq", "--tasks", "xdae", "--decoder", "lstm"], "--decoder"),
    (["--tasks", "mlm", "--decoder", "prophetnet"], "--decoder"),
], ids=["ngram-0", "ngram-without-prophetnet", "unknown-decoder", "encoder"])
def test_bad_decoder_flags_exit_2(data_dir, tmp_path, flags, name):
    r = cli(*tiny(data_dir, tmp_path / "bad", *flags, "--dry-run"), ok=False)
    assert r.exit_code == 2, r.output
    assert name in r.output and "fix" in r.output.lower()
    assert not (tmp_path / "bad").exists()
