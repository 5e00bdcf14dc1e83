"""Extractive QA (MLQA): ``<s> question </s></s> context-window </s>``, sliding windows with stride over
long contexts, start/end head, span decoding (best start+end logit, end >= start, bounded length,
best over windows), answers mapped back to context characters through per-piece character offsets.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from xling.xglue.metrics.mlqa_f1 import MlqaF1
from xling.xglue.readers import read_squad
from xling.xglue.runner import Runner
from xling.xglue.tasks import TaskSpec

_SENTENCE_END = re.compile(r"[.!?\u0964\u061f](?:\s|$)|[\u3002\uff01\uff1f]")


def first_sentence(context: str) -> str:
    """The trivial QA baseline: the context's first sentence as the answer to every question (up to the
    first . ! ? \u0964 \u061f followed by a space or the end, or the first \u3002 \uff01 \uff1f)."""
    m = _SENTENCE_END.search(context)
    return context[: m.end()].strip() if m else context.strip()


class QaRunner(Runner):
    """Loaded: ``{"questions": [...], "feats": [one dict a window]}``; training batches windows."""

    max_query = 48
    max_answer = 30

    def __init__(self, spec: TaskSpec, encoder, cfg=None):
        from xling.xglue.heads import PositionHead

        super().__init__(spec)
        self.enc = encoder
        self.doc_stride = cfg.ft.doc_stride if cfg is not None else 0  # 0: half a window
        self.module = PositionHead(encoder.model, encoder.embed_dim, 2)

    def _context(self, context: str):
        """Piece ids and the (start, end) character span of every piece."""
        ids, spans = [], []
        for m in re.finditer(r"\S+", context):
            word, w0 = m.group(), m.start()
            raw = word.encode("utf-8")
            proto = self.enc.spm.encode(word, return_type="proto").pieces  # byte offsets into `word`
            if not proto:
                ids.append(self.enc.dictionary.unk())
                spans.append((w0, m.end()))
            for p in proto:
                ids.append(self.enc.dictionary.index(p.piece))
                spans.append((w0 + len(raw[:p.begin].decode("utf-8", "ignore")),
                              w0 + len(raw[:p.end].decode("utf-8", "ignore"))))
        return ids, spans

    def _windows(self, q_ids, n):
        room = self.enc.max_positions - len(q_ids) - 4
        # --doc-stride pieces between window starts (XGLUE's recipe: 128), at most half a window so that
        # every answer up to half a window long lies whole inside some window
        stride = max(1, min(self.doc_stride, room // 2) if self.doc_stride else room // 2)
        starts = list(range(0, max(1, n - room + stride), stride)) or [0]
        return [(s, min(n, s + room)) for s in starts if s < max(n, 1)], room

    def load(self, data: Path, lang: str, split: str, limit: int | None = None, train: bool = False):
        qs = read_squad(self.spec.path(data, lang, split))
        if limit:
            qs = qs[:limit]
        d = self.enc.dictionary
        feats = []
        for q in qs:
            q_ids = self.enc.piece_ids(self.enc.pieces(q["question"]))[: self.max_query]
            c_ids, spans = self._context(q["context"])
            wins, _room = self._windows(q_ids, len(c_ids))
            ans = q["answers"][0] if q["answers"] else None
            for a, b in wins:
                ids = [d.bos()] + q_ids + [d.eos(), d.eos()] + c_ids[a:b] + [d.eos()]
                off = len(q_ids) + 3
                target = (0, 0)
                if ans is not None:
                    c0, c1 = ans["answer_start"], ans["answer_start"] + len(ans["text"])
                    inside = [i for i in range(a, b) if spans[i][1] > c0 and spans[i][0] < c1]
                    if inside and spans[inside[0]][0] <= c0 + 1 and spans[inside[-1]][1] >= c1 - 1:
                        target = (inside[0] - a + off, inside[-1] - a + off)
                if train and target == (0, 0) and ans is not None and len(wins) > 1:
                    continue  # windows without the answer add little for such small sets
                feats.append({"qid": q["id"], "ids": ids, "off": off, "a": a, "spans": spans,
                              "context": q["context"], "target": target})
        return {"questions": qs, "feats": feats}

    def size(self, item) -> int:
        return len(item["ids"])

    def train_items(self, loaded) -> list:
        return loaded["feats"]

    def collate(self, items: list) -> dict:
        import torch

        tokens = self.enc.collate([f["ids"] for f in items])
        return {"net_input": {"src_tokens": tokens}, "pad_mask": tokens.eq(self.enc.dictionary.pad()),
                "start": torch.tensor([f["target"][0] for f in items]),
                "end": torch.tensor([f["target"][1] for f in items])}

    def loss(self, model, batch: dict):
        import torch

        lg = model(**batch["net_input"]).masked_fill(batch["pad_mask"].unsqueeze(-1), -1e4)
        ce = torch.nn.functional.cross_entropy
        return (ce(lg[..., 0], batch["start"]) + ce(lg[..., 1], batch["end"])) / 2

    def predict(self, model, loaded) -> dict:
        import torch

        best: dict = {}
        with torch.no_grad():
            for _idx, items, batch in self.batches(loaded["feats"]):
                lg = model(**batch["net_input"]).float().cpu()
                for j, f in enumerate(items):
                    n = len(f["ids"]) - 1 - f["off"]
                    s = lg[j, f["off"]: f["off"] + n, 0]
                    e = lg[j, f["off"]: f["off"] + n, 1]
                    k = min(10, n)
                    top_s, top_e = s.topk(k).indices.tolist(), e.topk(k).indices.tolist()
                    for a in top_s:
                        for b in top_e:
                            if b < a or b - a + 1 > self.max_answer:
                                continue
                            sc = float(s[a] + e[b])
                            if sc > best.get(f["qid"], (-1e9, ""))[0]:
                                c0, c1 = f["spans"][f["a"] + a][0], f["spans"][f["a"] + b][1]
                                best[f["qid"]] = (sc, f["context"][c0:c1])
        return {q["id"]: best.get(q["id"], (0, ""))[1] for q in loaded["questions"]}

    def score(self, loaded, predictions, lang: str) -> float:
        gold = {q["id"]: [a["text"] for a in q["answers"]] or [""] for q in loaded["questions"]}
        return MlqaF1(lang).score(gold, predictions)

    def format(self, predictions) -> str:
        return json.dumps(predictions, ensure_ascii=False, indent=0) + "\n"

    def gold_slice(self, loaded) -> str:
        paras = [{"context": q["context"], "qas": [{"id": q["id"], "question": q["question"],
                                                     "answers": q["answers"]}]} for q in loaded["questions"]]
        return json.dumps({"data": [{"title": "slice", "paragraphs": paras}]}, ensure_ascii=False)
