"""The networks the understanding runners fine-tune: a pretrained encoder (fairseq RoBERTa-style,
called with ``features_only=True``) and a small task head, as one ``nn.Module`` whose ``forward``
takes tensors only (so a device move or a DDP wrapper sees the whole network)."""
from __future__ import annotations

import torch
from torch import nn

from xling.xglue.tag_pooling import pool


class PositionHead(nn.Module):
    """A linear head on every position: B x T x ``n_out`` (QA start/end logits)."""

    def __init__(self, encoder: nn.Module, dim: int, n_out: int):
        super().__init__()
        self.encoder, self.head = encoder, nn.Linear(dim, n_out)

    def forward(self, src_tokens):
        x, _ = self.encoder(src_tokens, features_only=True)
        return self.head(x)


class SentenceHead(nn.Module):
    """Dropout and a linear head on the first (``<s>``) position: B x ``n_out`` (classification, ranking)."""

    def __init__(self, encoder: nn.Module, dim: int, n_out: int, dropout: float = 0.1):
        super().__init__()
        self.encoder, self.head = encoder, nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, n_out))

    def forward(self, src_tokens):
        x, _ = self.encoder(src_tokens, features_only=True)
        return self.head(x[:, 0, :])


class WordHead(nn.Module):
    """A linear head on one vector per word: B x W x ``n_out`` (tagging). ``word_pos`` (B x W) holds the
    position of the piece that represents each word (any valid position for padding and truncated words:
    the runner masks them); with ``word_len`` (B x W) a word is the mean of its ``word_len`` pieces from
    ``word_pos`` on (:mod:`xling.xglue.tag_pooling`, ``--word-pooling mean``)."""

    def __init__(self, encoder: nn.Module, dim: int, n_out: int):
        super().__init__()
        self.encoder, self.head = encoder, nn.Linear(dim, n_out)

    def forward(self, src_tokens, word_pos, word_len=None):
        x, _ = self.encoder(src_tokens, features_only=True)
        if word_len is not None:
            return self.head(pool(x, word_pos, word_len))
        words = torch.gather(x, 1, word_pos.unsqueeze(-1).expand(-1, -1, x.size(-1)))
        return self.head(words)
