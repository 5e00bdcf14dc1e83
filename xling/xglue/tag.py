"""Token tagging (POS, NER): each word is represented by its first piece (:class:`WordHead`); one tag
a word is predicted and written in the official layout (one tag a line, a blank line after each
sentence). Words cut off by the length limit get the first label."""
from __future__ import annotations

from pathlib import Path

from xling.errors import XlingError
from xling.xglue.readers import read_conll
from xling.xglue.runner import Runner
from xling.xglue.tasks import TaskSpec

IGNORE = -100  # target of a padding or truncated word


def _check_labels(sents, labels, path):
    allowed = set(labels)
    for i, (_w, tags) in enumerate(sents):
        bad = sorted(set(tags) - allowed)
        if bad:
            raise XlingError(f"label(s) {', '.join(bad)} outside the task's label set (sentence {i + 1})",
                             file=path, fix="allowed: " + " ".join(labels))


class Tagger(Runner):
    """Examples: (words, tags, piece ids, position of each word's first piece or None if truncated)."""

    def __init__(self, spec: TaskSpec, encoder, cfg=None):
        from xling.xglue.heads import WordHead

        super().__init__(spec)
        self.enc, self.labels = encoder, list(spec.labels)
        self.lid = {t: i for i, t in enumerate(self.labels)}
        self.module = WordHead(encoder.model, encoder.embed_dim, len(self.labels))

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

    def load(self, data: Path, lang: str, split: str, limit: int | None = None, train: bool = False):
        path = self.spec.path(data, lang, split)
        sents = read_conll(path)
        if limit:
            sents = sents[:limit]
        _check_labels(sents, self.labels, path)
        return [(w, t, *self._encode(w)) for w, t in sents]

    def collate(self, items: list) -> dict:
        import torch

        n = max(1, max(len(e[3]) for e in items))
        pos = torch.zeros((len(items), n), dtype=torch.long)
        target = torch.full((len(items), n), IGNORE, dtype=torch.long)
        for i, (_w, tags, _ids, first) in enumerate(items):
            for j, (t, p) in enumerate(zip(tags, first)):
                if p is not None:
                    pos[i, j], target[i, j] = p, self.lid[t]
        return {"net_input": {"src_tokens": self.enc.collate([e[2] for e in items]), "word_pos": pos},
                "target": target}

    def loss(self, model, batch: dict):
        import torch

        logits = model(**batch["net_input"])
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), batch["target"].reshape(-1),
                                                 ignore_index=IGNORE)

    def predict(self, model, loaded) -> list[list[str]]:
        import torch

        out = []
        with torch.no_grad():
            for items, batch in self.batches(loaded):
                best = model(**batch["net_input"]).argmax(-1)
                for i, (_w, _t, _ids, first) in enumerate(items):
                    out.append([self.labels[int(best[i, j])] if p is not None else self.labels[0]
                                for j, p in enumerate(first)])
        return out

    def score(self, loaded, predictions, lang: str) -> float:
        from xling.xglue.metrics import METRICS

        return METRICS[self.spec.metric]().score([e[1] for e in loaded], predictions)

    def gold_slice(self, loaded) -> str:
        return "".join("\n".join(f"{w} {t}" for w, t in zip(e[0], e[1])) + "\n\n" for e in loaded)

    def format(self, predictions) -> str:
        """Official layout: one tag a line, a blank line after each sentence."""
        return "".join("\n".join(s) + "\n\n" for s in predictions)
