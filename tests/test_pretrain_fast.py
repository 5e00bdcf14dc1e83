"""Fast and low-precision pretraining on CPU (issue 18): `--bf16` trains, the optimised path
(SDPA attention, fused/foreach AdamW, fewer host syncs) trains like the plain one, and its checkpoint
loads in plain fairseq RoBERTa with the same outputs. Tiny configs on real tatoeba text."""
from __future__ import annotations

import os

import numpy as np
import pytest

from conftest import cli, prep_en_fr_de, summary, tiny

pytestmark = pytest.mark.skipif(not (os.path.isdir(os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                                                                "data", "tatoeba"))),
                                reason="shared tatoeba data not available")
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return prep_en_fr_de(tmp_path_factory.mktemp("fast_data"))


def test_bf16_is_not_tpu():
    """fairseq turns --bf16 into --tpu; our entry point keeps tpu off unless --tpu is on the command line."""
    from xling.xlmplug.train import parse_args

    base = ["/nonexistent", "--task", "xling_xlm", "--arch", "xling_xlm_tiny", "--criterion", "xling_mlm_tlm",
            "--cpu"]
    import xling.xlmplug  # noqa: F401

    a = parse_args(base + ["--bf16"])
    assert a.bf16 and not a.tpu
    assert parse_args(base + ["--bf16", "--tpu"]).tpu
    assert not parse_args(base).bf16


def test_bf16_tiny_run_trains_on_cpu(data_dir, tmp_path):
    out = tmp_path / "bf16"
    cli(*tiny(data_dir, out, "--bf16", "--max-updates", 40, "--log-interval", 10))
    s = summary(out)
    assert "--bf16" in s["command"] and s["num_updates"] == 40
    losses = [c["loss"] for c in s["curve"]]
    # observed: 10.15 at update 10 -> 8.92 at update 40 (fp32 follows the same curve within ~0.05)
    assert len(losses) == 4 and losses[-1] < losses[0] - 0.8, losses
    assert np.all(np.isfinite(losses))
    from xling.pretrain.checkpoints import load_state

    state = load_state(out / "checkpoints" / "checkpoint_last.pt")
    assert state["cfg"]["common"]["bf16"] and not state["cfg"]["common"]["tpu"]
