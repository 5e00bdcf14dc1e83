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


def param_groups(params) -> list[dict]:
    """torch's reading of ``params``: the tensors form one group (one fused kernel for all of them), dicts are
    groups of their own. (A group per tensor made the step one fused AdamW call, and its Python bookkeeping, per
    parameter tensor: about 200 a step for XLM-R base.)"""
    params = list(params)
    tensors = [p for p in params if not isinstance(p, dict)]
    return ([{"params": tensors}] if tensors else []) + [g for g in params if isinstance(g, dict)]


def merged_groups(state_dict: dict, groups: int) -> dict:
    """An optimizer state saved with one group per parameter tensor (xling_adamw before a single group; its
    groups differ only in their parameters), merged into one group when this optimizer has ``groups == 1``."""
    saved = state_dict.get("param_groups", [])
    if groups != 1 or len(saved) <= 1:
        return state_dict
    settings = [{k: v for k, v in g.items() if k != "params"} for g in saved]
    if any(s != settings[0] for s in settings[1:]):
        return state_dict  # real groups: torch's own error
    return {**state_dict, "param_groups": [{**settings[0], "params": [i for g in saved for i in g["params"]]}]}


@register_optimizer("xling_adamw", dataclass=XlingAdamWConfig)
class XlingAdamW(FairseqAdam):
    """fairseq's ``adam`` options and checkpoint overrides, torch's AdamW kernels.

    Given low-precision parameters (fairseq's ``--memory-efficient-bf16``/``--memory-efficient-fp16`` hand over
    the model's own bf16/fp16 tensors) it keeps fp32 master weights itself, as ``FP16Optimizer`` does for
    ``--bf16``, but moves every gradient and weight between them in a few multi-tensor calls instead of a
    copy per parameter: each step copies the gradients into fp32 buffers, scales them, runs AdamW on the fp32
    masters and copies them back into the model."""

    def __init__(self, cfg: XlingAdamWConfig, params):
        FairseqOptimizer.__init__(self, cfg)  # FairseqAdam's own __init__ would build fairseq's Adam
        if cfg.fp16_adam_stats or cfg.use_old_adam or cfg.tpu:
            raise ValueError("xling_adamw does not take --fp16-adam-stats, --use-old-adam or --tpu: use --optimizer adam")
        groups = param_groups(params)
        tensors = [p for g in groups for p in g["params"]]
        self._model_params, self._masters, self._grad_factor = None, None, 1.0
        if any(p.dtype in (torch.bfloat16, torch.float16) for p in tensors):
            self._model_params = tensors
            self._masters = [p.detach().float() for p in tensors]
            self._grads = [torch.zeros_like(m) for m in self._masters]
            it = iter(self._masters)
            groups = [{**g, "params": [next(it) for _ in g["params"]]} for g in groups]
            tensors = self._masters
        self._optimizer = torch.optim.AdamW(groups, **self.optimizer_config,
                                            **adamw_kernels(cfg.adam_impl, tensors))

    @property
    def supports_flat_params(self):
        return True  # fairseq's FP16Optimizer (--fp16/--bf16) hands over one flat fp32 tensor

    @property
    def supports_memory_efficient_fp16(self):
        return True  # low-precision parameters: fp32 masters here (class doc)

    @property
    def params(self):
        """The model's parameters (with fp32 masters: the low-precision tensors that hold the gradients)."""
        if self._masters is None:
            yield from super().params
        else:
            yield from self._model_params

    def step(self, closure=None, scale=1.0, groups=None):
        if self._masters is None:
            return super().step(closure, scale, groups)
        factor, self._grad_factor = self._grad_factor / scale, 1.0
        live = [i for i, p in enumerate(self._model_params) if p.grad is not None]
        for i, m in enumerate(self._masters):  # a parameter without gradient is not updated (torch skips it)
            m.grad = self._grads[i] if self._model_params[i].grad is not None else None
        grads = [self._grads[i] for i in live]
        if grads:
            torch._foreach_copy_(grads, [self._model_params[i].grad.detach() for i in live])
            if torch.is_tensor(factor) or factor != 1.0:
                torch._foreach_mul_(grads, factor)
        self._optimizer.step(closure)
        with torch.no_grad():
            torch._foreach_copy_(self._model_params, self._masters)

    def load_state_dict(self, state_dict, optimizer_overrides=None):
        super().load_state_dict(merged_groups(state_dict, len(self._optimizer.param_groups)), optimizer_overrides)

    def zero_grad(self):
        if self._masters is None:
            return super().zero_grad()
        for p in self._model_params:  # the fp32 gradient buffers stay allocated; step overwrites them
            p.grad = None
        self._grad_factor = 1.0

    def multiply_grads(self, c):
        """fairseq's ``multiply_grads`` (every gradient times ``c``) in one multi-tensor call instead of a
        kernel per parameter (fp32 and autocast runs; ``--fp16``/``--bf16`` scale their flat fp32 copy); with fp32
        masters the factor waits for the step, which applies it to the fp32 copies (no bf16 rounding)."""
        if self._masters is not None:
            self._grad_factor = self._grad_factor * c
            return
        grads = [p.grad for p in self.params if p.grad is not None]
        if grads:
            torch._foreach_mul_(grads, c)

    def clip_grad_norm(self, max_norm, aggregate_norm_fn=None):
        """fairseq's clip (``max_norm / (norm + 1e-6)``, capped at 1) with multi-tensor norm (computed in fp32,
        also for bf16/fp16 gradients) and scaling."""
        params = [p for p in self.params if p.grad is not None]
        if not params or any(hasattr(p, "expert") for p in params):
            return super().clip_grad_norm(max_norm, aggregate_norm_fn)  # MoE experts: fairseq's own clip
        norms = torch._foreach_norm([p.grad for p in params], 2.0, dtype=torch.float32)
        total = torch.linalg.vector_norm(torch.stack(norms), 2.0)
        if aggregate_norm_fn is not None:
            total = aggregate_norm_fn(total)
        if max_norm > 0:  # takes the parameters (scales their .grad)
            torch.nn.utils.clip_grads_with_norm_(params, max_norm, total, foreach=True)
        return total
