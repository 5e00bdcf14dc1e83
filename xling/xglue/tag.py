"""Token tagging (POS, NER): each word is represented by one of its pieces or their mean, as
``--word-pooling`` says (:mod:`xling.xglue.tag_pooling`, :class:`WordHead`); one tag a word is
predicted and written in the official layout (one tag a line, a blank line after each sentence).
Training skips the words cut off by the length limit; prediction tags them too: a sentence longer
than the limit is tagged in consecutive windows, each starting at the first word the previous one
could not hold (every word gets a predicted tag, as the official scorer expects one a word)."""
from __future__ import annotations

from pathlib import Path

from xling.errors import XlingError
from xling.xglue.readers import read_conll
from xling.xglue.runner import Runner
from xling.xglue.tag_pooling import DEFAULT, bare_id, check, word_spans
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
        self.pooling = check(getattr(cfg, "word_pooling", DEFAULT) if cfg is not None else DEFAULT)
        self.bare = bare_id(encoder.dictionary)

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

    def _windows(self, words: list[str]) -> list[tuple[int, list[int], list[int]]]:
        """(first word, piece ids, first-piece positions) of consecutive windows covering every word."""
        out, k = [], 0
        while k < len(words):
            ids, first = self._encode(words[k:])
            n = first.index(None) if None in first else len(first)
            if n == 0:  # one word longer than the limit on its own: its first pieces stand for it
                d = self.enc.dictionary
                p = (self.enc.piece_ids(self.enc.pieces(words[k])) or [d.unk()])[: self.enc.max_positions - 2]
                ids, first, n = [d.bos()] + p + [d.eos()], [1], 1
            out.append((k, ids, first[:n]))
            k += n
        return out

    def size(self, item) -> int:
        return len(item[2])

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
        length = torch.ones((len(items), n), dtype=torch.long)
        target = torch.full((len(items), n), IGNORE, dtype=torch.long)
        for i, (_w, tags, ids, first) in enumerate(items):
            for j, (t, span) in enumerate(zip(tags, word_spans(ids, first, self.pooling, self.bare))):
                if span is not None:
                    (pos[i, j], length[i, j]), target[i, j] = span, self.lid[t]
        net_input = {"src_tokens": self.enc.collate([e[2] for e in items]), "word_pos": pos}
        if self.pooling == "mean":
            net_input["word_len"] = length
        return {"net_input": net_input, "target": target}

    def loss(self, model, batch: dict):
        import torch

        logits = model(**batch["net_input"])
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), batch["target"].reshape(-1),
                                                 ignore_index=IGNORE)

    def predict(self, model, loaded) -> list[list[str]]:
        import torch

        windows = [(s, k, (w[k:k + len(first)], t[k:k + len(first)], ids, first)) for s, (w, t, ids0, first0)
                   in enumerate(loaded) for k, ids, first in
                   ([(0, ids0, first0)] if None not in first0 else self._windows(w))]
        out: list[list] = [[None] * len(e[0]) for e in loaded]
        with torch.no_grad():
            for idx, _items, batch in self.batches([x[2] for x in windows]):
                best = model(**batch["net_input"]).argmax(-1).tolist()
                for i, row in zip(idx, best):
                    s, k, (_w, _t, _ids, first) = windows[i]
                    for j in range(len(first)):
                        out[s][k + j] = self.labels[row[j]]
        return out

    def score(self, loaded, predictions, lang: str) -> float:
        from xling.xglue.metrics import METRICS

        return METRICS[self.spec.metric]().score([e[1] for e in loaded], predictions)

    def gold_slice(self, loaded) -> str:
        return "".join("\n".join(f"{w} {t}" for w, t in zip(e[0], e[1])) + "\n\n" for e in loaded)

    def format(self, predictions) -> str:
        """Official layout: one tag a line, a blank line after each sentence."""
        return "".join("\n".join(s) + "\n\n" for s in predictions)
