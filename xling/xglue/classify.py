"""Sentence and sentence-pair classification (NC, XNLI, PAWS-X, QADSM, QAM) from the ``<s>`` state.

Input columns follow the official XGLUE TSV files: the label is the last column, PAWS-X starts with an
id column (and a header line); the first text column is segment A, the remaining text columns joined
with a space are segment B (``<s> A </s></s> B </s>`` as in fairseq's RoBERTa). The head is dropout +
linear on the first position (:class:`xling.xglue.heads.SentenceHead`).
"""
from __future__ import annotations

from pathlib import Path

from xling.errors import XlingError
from xling.xglue.readers import read_tsv_examples
from xling.xglue.runner import Runner
from xling.xglue.tasks import TaskSpec


def segments(spec: TaskSpec, cols: list[str]) -> tuple[str, str | None]:
    text = cols[1:-1] if spec.id_column else cols[:-1]
    return text[0], (" ".join(t.strip() for t in text[1:]) or None)


class Classifier(Runner):
    """Examples: (columns, label, piece ids). One label a line is predicted, in the input's order."""

    n_out: int | None = None  # outputs of the head (default: one per label)

    def __init__(self, spec: TaskSpec, encoder, cfg=None):
        from xling.xglue.heads import SentenceHead

        super().__init__(spec)
        self.enc, self.labels = encoder, list(spec.labels)
        self.lid = {t: i for i, t in enumerate(self.labels)}
        self.module = SentenceHead(encoder.model, encoder.embed_dim, self.n_out or len(self.labels))
        self.header = None

    def check_label(self, label: str, path: Path, i: int) -> None:
        if label not in self.lid:
            raise XlingError(f"label {label!r} outside the {self.spec.name} label set (example {i + 1})",
                             file=path, fix="allowed: " + " ".join(self.labels))

    def load(self, data: Path, lang: str, split: str, limit: int | None = None, train: bool = False):
        path = self.spec.path(data, lang, split)
        header, rows = read_tsv_examples(self.spec, path, limit)
        self.header = header
        out = []
        for i, cols in enumerate(rows):
            label = cols[-1].strip()
            self.check_label(label, path, i)
            a, b = segments(self.spec, cols)
            out.append((cols, label, self.enc.encode(a, b)))
        return out

    def size(self, item) -> int:
        return len(item[2])

    def target(self, items: list):
        import torch

        return torch.tensor([self.lid[e[1]] for e in items], dtype=torch.long)

    def collate(self, items: list) -> dict:
        return {"net_input": {"src_tokens": self.enc.collate([e[2] for e in items])}, "target": self.target(items)}

    def loss(self, model, batch: dict):
        import torch

        return torch.nn.functional.cross_entropy(model(**batch["net_input"]), batch["target"])

    def outputs(self, model, loaded):
        """The head's outputs for every example (N x n_out), in order."""
        import torch

        out = torch.zeros(len(loaded), self.n_out or len(self.labels))
        with torch.no_grad():
            for idx, _items, batch in self.batches(loaded):
                out[idx] = model(**batch["net_input"]).float().cpu()
        return out

    def predict(self, model, loaded) -> list[str]:
        return [self.labels[int(k)] for k in self.outputs(model, loaded).argmax(-1)]

    def score(self, loaded, predictions, lang: str) -> float:
        from xling.xglue.metrics import METRICS

        return METRICS[self.spec.metric]().score([e[1] for e in loaded], predictions)

    def gold_slice(self, loaded) -> str:
        head = [self.header] if self.header is not None else []
        return "".join(ln + "\n" for ln in head + ["\t".join(e[0]) for e in loaded])

    def format(self, predictions) -> str:
        """Official layout: one label a line, in the order of the input file."""
        return "".join(f"{p}\n" for p in predictions)
