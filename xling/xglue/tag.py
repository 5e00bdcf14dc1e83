"""Token tagging (POS, NER): first-piece labelling, word-level predictions."""
from __future__ import annotations

from pathlib import Path

from xling.errors import XlingError
from xling.xglue.tasks import TaskSpec, read_conll


def _check_labels(sents, labels, path):
    allowed = set(labels)
    for i, (_w, tags) in enumerate(sents):
        bad = sorted(set(tags) - allowed)
        if bad:
            raise XlingError(f"label(s) {', '.join(bad)} outside the task's label set (sentence {i + 1})",
                             file=path, fix="allowed: " + " ".join(labels))


class Tagger:
    def __init__(self, encoder, spec: TaskSpec):
        import torch

        self.enc, self.spec, self.labels = encoder, spec, list(spec.labels)
        self.lid = {t: i for i, t in enumerate(self.labels)}
        self.head = torch.nn.Linear(encoder.embed_dim, len(self.labels))
        self.module = torch.nn.ModuleDict({"encoder": encoder.model, "head": self.head})

    def _encode(self, words):
        """fairseq ids and the index of each word's first piece (None if truncated away)."""
        d = self.enc.dictionary
        ids, first = [d.bos()], []
        limit = self.enc.max_positions - 1
        for w in words:
            p = self.enc.piece_ids(self.enc.pieces(w)) or [d.unk()]
            if len(ids) + len(p) > limit:
                first.append(None)
                continue
            first.append(len(ids))
            ids += p
        return ids + [d.eos()], first

    def load(self, path: Path, max_examples: int | None = None, train: bool = False):
        sents = read_conll(path)
        if max_examples:
            sents = sents[:max_examples]
        _check_labels(sents, self.labels, path)
        return [(w, t, *self._encode(w)) for w, t in sents]

    def _logits(self, batch):
        x = self.enc.features(self.enc.collate([b[2] for b in batch]))
        return self.head(x)

    def loss(self, batch):
        import torch

        logits = self._logits(batch)
        target = torch.full(logits.shape[:2], -100, dtype=torch.long)
        for i, (_w, tags, _ids, first) in enumerate(batch):
            for t, pos in zip(tags, first):
                if pos is not None:
                    target[i, pos] = self.lid[t]
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1),
                                                 ignore_index=-100)

    def predict(self, examples, batch_size: int = 32) -> list[list[str]]:
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, len(examples), batch_size):
                batch = examples[i:i + batch_size]
                best = self._logits(batch).argmax(-1)
                for j, (_w, _t, _ids, first) in enumerate(batch):
                    out.append([self.labels[int(best[j, p])] if p is not None else self.labels[0]
                                for p in first])
        return out

    def examples(self, loaded):
        return loaded

    def score(self, examples, pred, lang):
        from xling.xglue.metrics import METRICS

        return METRICS[self.spec.metric]().score([e[1] for e in examples], pred)

    @staticmethod
    def gold_slice(examples) -> str:
        return "".join("\n".join(f"{w} {t}" for w, t in zip(e[0], e[1])) + "\n\n" for e in examples)

    @staticmethod
    def format(preds) -> str:
        """Official layout: one tag a line, a blank line after each sentence."""
        return "".join("\n".join(s) + "\n\n" for s in preds)
