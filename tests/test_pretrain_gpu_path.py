"""What `xling pretrain` does on GPUs, checked on CPU (issue 18): micro-batches as token budgets, one AdamW
parameter group, no attention mask for unpadded batches, and compiled layers that stay compiled when batch
shapes vary. Tiny configs on real tatoeba text."""
from __future__ import annotations

import pytest

from conftest import cli


def epoch_batches(cmd: list[str]) -> list[list[bool]]:
    """The micro-batches of a training command's first epoch, as fairseq's trainer draws them: per batch,
    whether each example is a TLM pair."""
    from xling.pretrain.command import parse_train_args

    cfg, task = parse_train_args(cmd)
    task.load_dataset("train", epoch=1)
    ds = task.dataset("train")
    it = task.get_batch_iterator(ds, max_tokens=cfg.dataset.max_tokens, max_sentences=cfg.dataset.batch_size,
                                 max_positions=task.max_positions(), seed=1, epoch=1,
                                 required_batch_size_multiple=cfg.dataset.required_batch_size_multiple)
    return [[bool(ds.dataset[i]["tlm"]) for i in b] for b in it.frozen_batches]


def test_gpu_micro_batches_are_token_budgets(data_dir, tmp_path, monkeypatch):
    """On a GPU the base preset batches by --max-tokens (64 x 512) with no cap on sequences, so that TLM pairs
    fill micro-batches as 512-token blocks do; before, 64 pairs made a micro-batch of about 2.5k tokens."""
    import shlex

    from xling.pretrain import PretrainOptions
    from xling.pretrain.command import device_notes

    monkeypatch.setattr("xling.pretrain.command.visible_gpus", lambda: 1)
    r = cli("pretrain", "--data", data_dir, "--out", tmp_path / "o", "--preset", "base", "--tlm", "--pairs",
            "en-fr,en-de", "--dry-run")
    cmd = shlex.split(next(ln for ln in r.output.splitlines() if "xling.xlmplug.train" in ln))
    assert "--batch-size" not in cmd and cmd[cmd.index("--max-tokens") + 1] == "32768" and "--cpu" not in cmd
    assert cmd[cmd.index("--update-freq") + 1] == "4" and "--bf16" in cmd
    note = device_notes(PretrainOptions(data=data_dir, out=tmp_path / "o", preset="base"))[0]
    assert "up to 32768 tokens" in note and "--update-freq 4" in note
    cmd = [x for x in cmd if x not in ("--compile-layers", "--compile-loss", "--bf16")] + ["--cpu"]
    budget = epoch_batches(cmd)
    capped = epoch_batches(cmd + ["--batch-size", "64"])
    tlm_budget = [len(b) for b in budget if all(b)]
    tlm_capped = [len(b) for b in capped if all(b)]
    # tatoeba en-fr + en-de, tlm ratio 0.5: 138 MLM blocks and 138 TLM pairs an epoch; observed 4 micro-batches
    # (one of 136 pairs) against 5 (64 + 64 + ... pairs)
    assert sum(map(len, budget)) == sum(map(len, capped)) and len(budget) < len(capped)
    assert max(tlm_capped) <= 64 < max(tlm_budget), (tlm_budget, tlm_capped)
    # --batch-size is the update's: one micro-batch of 48 blocks' worth here; a --micro-batch-size given by the
    # user caps the sequences of a micro-batch, with its token budget, in as many micro-batches as 256 needs
    r = cli("pretrain", "--data", data_dir, "--out", tmp_path / "o", "--preset", "base", "--batch-size", 48,
            "--dry-run")
    assert "--batch-size" not in r.output.split("xling.xlmplug.train")[1].split("\n")[0]
    assert "--update-freq 1 --max-tokens 24576" in r.output
    r = cli("pretrain", "--data", data_dir, "--out", tmp_path / "o", "--preset", "base", "--micro-batch-size", 48,
            "--dry-run")
    assert "--batch-size 32 --update-freq 8 --max-tokens 16384" in r.output


def test_xling_adamw_steps_all_parameters_in_one_group_and_resumes_old_states():
    """fairseq hands the optimizer a list of tensors: one torch group (one fused AdamW call per step, not one
    per parameter tensor). A state saved by the per-tensor grouping of earlier versions still loads."""
    from copy import deepcopy

    import torch

    from xling.xlmplug.optim.adamw import XlingAdamW, XlingAdamWConfig

    cfg = XlingAdamWConfig(lr=[1e-3], adam_betas="(0.9,0.98)", weight_decay=0.01, tpu=False)

    def model(seed):
        torch.manual_seed(seed)
        return [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(2))]

    def step(opt, ps, k):
        for i, p in enumerate(ps):
            p.grad = torch.full_like(p, 0.1 * (k + i + 1))
        opt.step()

    ps = model(0)
    opt = XlingAdamW(cfg, ps)
    assert len(opt.optimizer.param_groups) == 1 and len(opt.optimizer.param_groups[0]["params"]) == 3
    for k in range(3):
        step(opt, ps, k)
    saved = opt.state_dict()
    (group,) = saved["param_groups"]
    old = {**saved, "param_groups": [{**group, "params": [i]} for i in group["params"]]}
    for state in (saved, old):
        qs = [torch.nn.Parameter(p.detach().clone()) for p in ps]
        again = XlingAdamW(cfg, qs)
        again.load_state_dict(deepcopy(state))  # torch keeps the loaded tensors: no sharing between runs
        step(again, qs, 3)
        want = [torch.nn.Parameter(p.detach().clone()) for p in ps]
        ref = XlingAdamW(cfg, want)
        ref.load_state_dict(deepcopy(saved))
        step(ref, want, 3)
        assert all(torch.equal(a, b) for a, b in zip(qs, want))
    assert not torch.equal(qs[0], ps[0])  # the step moved them
    bad = {**old, "param_groups": [{**g, "lr": 0.5 * (i + 1)} for i, g in enumerate(old["param_groups"])]}
    with pytest.raises(ValueError, match="parameter groups"):
        XlingAdamW(cfg, model(1)).load_state_dict(bad)


def test_unpadded_batch_runs_attention_without_a_mask(data_dir, monkeypatch):
    """The collater says whether any row is padded; a batch of full blocks then runs SDPA with no mask at all
    (FlashAttention takes none: with an all-true mask torch picks the slower memory-efficient kernel), with the
    same loss and gradients as with the mask; a batch with padding keeps it."""
    import torch
    from fairseq import tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    import xling.xlmplug  # noqa: F401
    from xling.xlmplug.models.attention import SdpaSelfAttention
    from xling.xlmplug.train import parse_args

    def task_for(mode):
        args = parse_args([str(data_dir), "--task", "xling_xlm", "--arch", "xling_xlm_tiny", "--criterion",
                           "xling_mlm_tlm", "--cpu", "--langs", "en,fr,de", "--pairs", "en-fr,en-de", "--tlm-ratio",
                           "0.5", "--tokens-per-sample", "64", "--dropout", "0", "--attention-dropout", "0",
                           "--sample-break-mode", mode])
        cfg = convert_namespace_to_omegaconf(args)
        task = tasks.setup_task(cfg.task)
        task.load_dataset("train")
        return cfg, task, task.datasets["train"]

    cfg, task, ds = task_for("none")
    full = ds.collater([ds[i] for i in range(8)])  # MLM blocks of exactly 64 tokens
    mixed = ds.collater([ds[i] for i in [*range(4), *range(len(ds) - 4, len(ds))]])  # and TLM pairs
    assert full["net_input"]["padded"] is False and full["net_input"]["src_tokens"].shape == (8, 64)
    assert mixed["net_input"]["padded"] is True
    masks = []
    forward = SdpaSelfAttention.forward

    def spy(self, query, key, value, key_padding_mask=None, **kw):
        masks.append(key_padding_mask)
        return forward(self, query, key, value, key_padding_mask, **kw)

    monkeypatch.setattr(SdpaSelfAttention, "forward", spy)
    torch.manual_seed(0)
    model = task.build_model(cfg.model)
    criterion = task.build_criterion(cfg.criterion)

    def run(sample):
        masks.clear()
        model.zero_grad()
        loss, _, _ = criterion(model, sample)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None], list(masks)

    unknown = {**full, "net_input": {k: v for k, v in full["net_input"].items() if k != "padded"}}
    (l1, g1, m1), (l2, g2, m2) = run(full), run(unknown)
    assert len(m1) == 2 and all(m is None for m in m1) and all(m is not None and not m.any() for m in m2)
    assert torch.allclose(l1, l2, rtol=1e-6) and all(torch.allclose(a, b, atol=1e-7, rtol=1e-5) for a, b in zip(g1, g2))
    run(mixed)
    assert all(m is not None for m in masks)
    cfg, task, ds = task_for("complete")  # xling pretrain's blocks: sentences kept whole, so rows differ
    assert ds.collater([ds[i] for i in range(8)])["net_input"]["padded"] is True


def test_compiled_layers_stay_compiled_as_batch_shapes_vary(data_dir):
    """torch.compile keeps at most 8 compiled versions of a function (``recompile_limit``), then runs it eager.
    The first layer used to get a transposed (non-contiguous) input and the others a contiguous one, doubling the
    versions: varying batch shapes plus validation reached the limit (observed on CPU: 8 versions and dynamo's
    warning, after which new shapes ran eager). A contiguous input keeps them at 6: static and dynamic shapes,
    with and without an attention mask, and validation's no-grad eval."""
    import random

    import torch
    import torch._dynamo
    from fairseq import tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.modules.transformer_layer import TransformerEncoderLayerBase
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list

    import xling.xlmplug  # noqa: F401
    from xling.xlmplug.train import parse_args

    torch._dynamo.reset()
    args = parse_args([str(data_dir), "--task", "xling_xlm", "--arch", "xling_xlm_base", "--encoder-embed-dim", "32",
                       "--encoder-ffn-embed-dim", "64", "--encoder-attention-heads", "2", "--criterion",
                       "xling_mlm_tlm", "--cpu", "--langs", "en,fr,de", "--tokens-per-sample", "64", "--compile-layers"])
    cfg = convert_namespace_to_omegaconf(args)
    model = tasks.setup_task(cfg.task).build_model(cfg.model)
    rng = random.Random(0)
    shapes = [(rng.randint(2, 64), rng.randint(8, 64), i % 3 > 0) for i in range(20)]

    def step(b, t, padded, train=True):
        x = torch.randint(5, 100, (b, t))
        if padded:
            x[0, -3:] = 1
        model.train(train)
        with torch.set_grad_enabled(train):
            out = model(x, padded=padded)[0]
        if train:
            out.sum().backward()

    for b, t, padded in shapes:
        step(b, t, padded)
    for b, t, padded in shapes[:4]:
        step(b, t, padded, train=False)
    for b, t, padded in shapes[4:12]:
        step(b, t, padded)
    versions = len(_debug_get_cache_entry_list(TransformerEncoderLayerBase.forward.__code__))
    assert 2 <= versions <= 6, versions
