"""`xling eval xglue --micro-batch-size`: a batch's share in parts whose gradients accumulate into one update, and
the halving of xling's micro-batch when a step runs out of memory."""
from __future__ import annotations

import json

import pytest

from conftest import SHARED, cli


class LinearRunner:
    """The runner protocol that :func:`xling.xglue.finetune.train` uses, around a linear classifier without
    dropout (so that the updates of whole and split batches can be compared exactly). ``most``: batches of more
    examples run out of memory, as CUDA's allocator does."""

    def __init__(self, most: int = 0):
        import torch

        torch.manual_seed(0)
        self.module, self.most, self.seen = torch.nn.Linear(6, 3), most, []
        self.workers = 0

    def size(self, item):
        return 1

    def collate(self, items):
        import torch

        return {"x": torch.stack([x for x, _ in items]), "y": torch.tensor([y for _, y in items])}

    def loss(self, model, batch):
        import torch

        self.seen.append(len(batch["y"]))
        if self.most and len(batch["y"]) > self.most:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return torch.nn.functional.cross_entropy(model(batch["x"]), batch["y"])


def items(n=21):
    import torch

    g = torch.Generator().manual_seed(3)
    x = torch.randn(n, 6, generator=g)
    return [(x[i], int(x[i, :3].argmax())) for i in range(n)]


def trained(runner, **kw):
    from xling.xglue.finetune import FinetuneConfig, train

    cfg = FinetuneConfig(lr=0.05, epochs=3, batch_size=8, device="cpu", workers=0, **kw)
    info = train(runner, items(), lambda module: 0.0, cfg)
    return [p.detach().clone() for p in runner.module.parameters()], info


def test_micro_batches_give_the_updates_of_whole_batches():
    import torch

    whole, info = trained(LinearRunner())
    split, info3 = trained(LinearRunner(), micro_batch_size=3)
    assert info["steps"] == info3["steps"] == 9 and info3["micro_batch_size"] == 3  # 21 items: batches 8, 8, 5
    for a, b in zip(whole, split):
        assert torch.allclose(a, b, atol=1e-6), (a - b).abs().max()
    assert not torch.allclose(whole[0], LinearRunner().module.weight)  # it trained


def test_a_step_that_runs_out_of_memory_goes_on_in_halves_of_xlings_micro_batch():
    import torch

    from xling.errors import XlingError

    runner = LinearRunner(most=3)
    halved, info = trained(runner)
    assert info["micro_batch_size"] == 2 and runner.seen[:3] == [8, 4, 2]  # 8 and 4 did not fit
    reference, _ = trained(LinearRunner(), micro_batch_size=2)
    for a, b in zip(halved, reference):
        assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(XlingError, match="ran out of memory on a micro-batch of 4 examples") as e:
        trained(LinearRunner(most=3), micro_batch_size=4)  # the user's size: an error with the one to use
    assert "--micro-batch-size 2" in e.value.fix


def test_cli_micro_batches_train_and_are_recorded(tiny_model, tmp_path):  # noqa: F811
    out = tmp_path / "micro"
    cli("eval", "xglue", "--model", tiny_model, "--data", SHARED / "xglue-real", "--tasks", "pos", "--zero-shot",
        "de", "--recipe", "quick", "--epochs", "3", "--lr", "1e-3", "--max-train-examples", "600",
        "--max-eval-examples", "150", "--device", "cpu", "--micro-batch-size", "4", "--out", out)
    r = json.loads((out / "results.json").read_text())["tasks"]["pos"]
    assert r["splits"]["test"]["langs"]["en"]["mean"] > 40  # it trains (majority tag NOUN: ~17)
    assert set(r["micro_batch_size"].values()) == {4}
    res = cli("eval", "xglue", "--model", tiny_model, "--data", SHARED / "xglue-real", "--tasks", "pos",
              "--micro-batch-size", "-1", "--out", tmp_path / "bad", ok=None)
    assert res.exit_code == 2 and "--micro-batch-size must be >= 0" in res.output
