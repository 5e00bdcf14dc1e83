"""Optimizer ``xling_adamw``: fairseq's ``adam`` (decoupled weight decay, i.e. AdamW) run by
:class:`torch.optim.AdamW` with one fused CUDA kernel over all parameters (``fused=True``) on GPUs and
multi-tensor ``foreach`` kernels on CPU, and a ``foreach`` gradient-norm clip.

fairseq's ``adam`` runs a Python loop of about ten element-wise kernels per parameter tensor unless apex's
FusedAdam is installed. Same flags as ``adam`` (``--adam-betas``, ``--adam-eps``, ``--weight-decay``), and the
same update as apex's FusedAdam (what fairseq's ``adam`` uses on GPUs where apex is installed). It differs from
fairseq's Python Adam only in where ``eps`` sits: ``lr·m̂/(sqrt(v̂) + eps)`` with the bias-corrected ``v̂``
(torch, apex) instead of ``lr·m̂/(sqrt(v̂) + eps/sqrt(1-β2^t))``: an ``eps``-sized change of each step
(see tests/test_pretrain_fast.py).
"""

from dataclasses import dataclass, field

import torch
from fairseq.optim import register_optimizer
from fairseq.optim.adam import FairseqAdam, FairseqAdamConfig
from fairseq.optim.fairseq_optimizer import FairseqOptimizer

IMPLS = ("auto", "fused", "foreach", "for-loop")


@dataclass
class XlingAdamWConfig(FairseqAdamConfig):
    adam_impl: str = field(default="auto", metadata={
        "help": "torch AdamW kernels: fused (one CUDA kernel), foreach (multi-tensor), for-loop, or auto "
                "(fused on CUDA, foreach elsewhere)"})


def adamw_kernels(impl: str, params: list) -> dict:
    """``torch.optim.AdamW``'s ``fused``/``foreach`` arguments for ``impl`` and where the parameters live."""
    if impl not in IMPLS:
        raise ValueError(f"--adam-impl must be one of {', '.join(IMPLS)}, not {impl!r}")
    if impl == "auto":
        impl = "fused" if params and all(p.is_cuda for p in params) else "foreach"
    return {"fused": impl == "fused", "foreach": impl == "foreach"}


@register_optimizer("xling_adamw", dataclass=XlingAdamWConfig)
class XlingAdamW(FairseqAdam):
    """fairseq's ``adam`` options and checkpoint overrides, torch's AdamW kernels."""

    def __init__(self, cfg: XlingAdamWConfig, params):
        FairseqOptimizer.__init__(self, cfg)  # FairseqAdam's own __init__ would build fairseq's Adam
        if cfg.fp16_adam_stats or cfg.use_old_adam or cfg.tpu:
            raise ValueError("xling_adamw does not take --fp16-adam-stats, --use-old-adam or --tpu: use --optimizer adam")
        params = list(params)
        tensors = [p for g in params for p in (g["params"] if isinstance(g, dict) else [g])]
        self._optimizer = torch.optim.AdamW(params, **self.optimizer_config,
                                            **adamw_kernels(cfg.adam_impl, tensors))

    @property
    def supports_flat_params(self):
        return True  # fairseq's FP16Optimizer (--fp16/--bf16) hands over one flat fp32 tensor

    def multiply_grads(self, c):
        """fairseq's ``multiply_grads`` (every gradient times ``c``) in one multi-tensor call instead of a
        kernel per parameter (fp32 and autocast runs; ``--fp16``/``--bf16`` scale their flat fp32 copy)."""
        grads = [p.grad for p in self.params if p.grad is not None]
        if grads:
            torch._foreach_mul_(grads, c)

    def clip_grad_norm(self, max_norm, aggregate_norm_fn=None):
        """fairseq's clip (``max_norm / (norm + 1e-6)``, capped at 1) with multi-tensor norm and scaling."""
        params = [p for p in self.params if p.grad is not None]
        if not params or any(hasattr(p, "expert") for p in params):
            return super().clip_grad_norm(max_norm, aggregate_norm_fn)  # MoE experts: fairseq's own clip
        total = torch.nn.utils.get_total_norm([p.grad for p in params], foreach=True)
        if aggregate_norm_fn is not None:
            total = aggregate_norm_fn(total)
        if max_norm > 0:  # takes the parameters (scales their .grad)
            torch.nn.utils.clip_grads_with_norm_(params, max_norm, total, foreach=True)
        return total
