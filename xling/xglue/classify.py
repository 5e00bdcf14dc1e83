"""Sentence and sentence-pair classification (NC, XNLI, PAWS-X, QADSM, QAM) from the ``<s>`` state.

Input columns follow the official XGLUE TSV files: the label is the last column, PAWS-X starts with an
id column (and a header line); the first text column is segment A, the remaining text columns joined
with a space are segment B (``<s> A </s></s> B </s>`` as in fairseq's RoBERTa). The head (dropout +
linear on the first position) is a few lines written here as the shared fine-tuning loop drives it.
"""
from __future__ import annotations

from pathlib import Path

from xling.errors import XlingError
from xling.xglue.tasks import TaskSpec

SKIP_ID = {"pawsx"}  # tasks whose first column is an id, not text


def read_rows(spec: TaskSpec, path: Path, max_examples: int | None = None):
    """(header line or None, rows as column lists); every row needs the same column count >= 2."""
    lines = [ln for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    header = lines[0] if spec.header and lines else None
    body = lines[1:] if spec.header else lines
    rows, width = [], None
    for i, ln in enumerate(body, 2 if spec.header else 1):
        cols = ln.split("\t")
        need = 3 if spec.name in SKIP_ID else 2
        if len(cols) < need or (width is not None and len(cols) != width):
            want = width or f"at least {need}"
            raise XlingError(f"expected {want} tab-separated columns, got {len(cols)}", file=path, line=i,
                             fix=f"official {spec.name} layout: text columns then the label")
        width = len(cols)
        rows.append(cols)
    return header, rows[:max_examples] if max_examples else rows


def segments(spec: TaskSpec, cols: list[str]) -> tuple[str, str | None]:
    text = cols[1:-1] if spec.name in SKIP_ID else cols[:-1]
    return text[0], (" ".join(t.strip() for t in text[1:]) or None)


class Classifier:
    def __init__(self, encoder, spec: TaskSpec, n_out: int | None = None):
        import torch

        self.enc, self.spec, self.labels = encoder, spec, list(spec.labels)
        self.lid = {t: i for i, t in enumerate(self.labels)}
        self.head = torch.nn.Sequential(torch.nn.Dropout(0.1),
                                        torch.nn.Linear(encoder.embed_dim, n_out or len(self.labels)))
        self.module = torch.nn.ModuleDict({"encoder": encoder.model, "head": self.head})
        self.header = None

    def check_label(self, label: str, path: Path, i: int) -> None:
        if label not in self.lid:
            raise XlingError(f"label {label!r} outside the {self.spec.name} label set (example {i + 1})",
                             file=path, fix="allowed: " + " ".join(self.labels))

    def load(self, path: Path, max_examples: int | None = None, train: bool = False):
        header, rows = read_rows(self.spec, path, max_examples)
        self.header = header
        out = []
        for i, cols in enumerate(rows):
            label = cols[-1].strip()
            self.check_label(label, path, i)
            a, b = segments(self.spec, cols)
            out.append((cols, label, self.enc.encode(a, b)))
        return out

    def examples(self, loaded):
        return loaded

    def _logits(self, batch):
        x = self.enc.features(self.enc.collate([b[2] for b in batch]))
        return self.head(x[:, 0, :])

    def loss(self, batch):
        import torch

        target = torch.tensor([self.lid[b[1]] for b in batch], dtype=torch.long)
        return torch.nn.functional.cross_entropy(self._logits(batch), target)

    def _outputs(self, examples, batch_size: int = 32):
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, len(examples), batch_size):
                out.append(self._logits(examples[i:i + batch_size]))
        return torch.cat(out) if out else torch.zeros(0, len(self.labels))

    def predict(self, examples) -> list[str]:
        return [self.labels[int(k)] for k in self._outputs(examples).argmax(-1)]

    def score(self, examples, pred, lang):
        from xling.xglue.metrics import METRICS

        return METRICS[self.spec.metric]().score([e[1] for e in examples], pred)

    def gold_slice(self, examples) -> str:
        head = [self.header] if self.header is not None else []
        return "".join(ln + "\n" for ln in head + ["\t".join(e[0]) for e in examples])

    @staticmethod
    def format(preds) -> str:
        """Official layout: one label a line, in the order of the input file."""
        return "".join(f"{p}\n" for p in preds)
