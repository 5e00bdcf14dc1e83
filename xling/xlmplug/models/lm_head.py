"""The masked-LM head of ``xling_xlm``: fairseq's :class:`RobertaLMHead` (same parameters and names, the
output projection tied to the token embeddings), whose output projection pads the vocabulary while training.

XLM-R's 250,002-row vocabulary is not a multiple of 8, so the logits' rows (and the weight gradient's
operands) are not 16-byte aligned and cuBLAS falls back to slow kernels for the three largest matrix products
of a masked-LM update (measured on an H200: sm80 ``align2`` kernels at about 280 TFLOP/s). While training,
the projection runs on the weight padded with zero rows to a multiple of ``pad_to`` and the bias padded with
-inf, so the logits have ``V + extra`` columns whose extra ones are -inf: softmax, cross-entropy and argmax over
them are those over the vocabulary (the extra columns get probability 0 and zero gradient), and no copy cuts
them off (a slice's backward would write the whole N×V gradient once more). Evaluation, and CPU training (no
such kernels), run fairseq's own projection. Under bf16 autocast (``--amp-bf16``) the padded path adds the bias
in bf16, so the logits stay bf16.
"""
from __future__ import annotations

import torch.nn.functional as F
from fairseq.models.roberta.model import RobertaLMHead


class XlmLMHead(RobertaLMHead):
    """RoBERTa's LM head; ``pad_to`` > 0 pads the vocabulary of the training projection (module doc)."""

    pad_devices = ("cuda",)  # where alignment pays; on CPU the padded copy is pure cost

    def __init__(self, embed_dim, output_dim, activation_fn, weight=None, pad_to: int = 8):
        super().__init__(embed_dim, output_dim, activation_fn, weight)
        self.pad_to = int(pad_to)

    def forward(self, features, masked_tokens=None, **kwargs):
        vocab = self.weight.size(0)
        pads = self.pad_to > 0 and self.training and features.device.type in self.pad_devices
        extra = (-vocab) % self.pad_to if pads else 0
        if not extra:
            return super().forward(features, masked_tokens, **kwargs)
        if masked_tokens is not None:
            features = features[masked_tokens, :]
        x = self.layer_norm(self.activation_fn(self.dense(features)))
        logits = F.linear(x, F.pad(self.weight, (0, 0, 0, extra)))
        # the bias in the logits' dtype (under bf16 autocast they stay bf16, as with fairseq's --bf16); -inf in the
        # extra columns, so that softmax and cross-entropy over all columns are those over the vocabulary
        return logits + F.pad(self.bias, (0, extra), value=float("-inf")).to(logits.dtype)
