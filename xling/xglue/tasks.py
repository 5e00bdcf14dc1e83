"""Declarative specs of the XGLUE understanding tasks in the official release layout.

Each task is one ``TaskSpec``: its family (the runner that fine-tunes and predicts), file paths per
(language, split), label set, metric and languages. Generation tasks (QG, NTG) fit the same schema as
another ``family`` ("generate") with BLEU-type metrics; they are not declared yet.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel

from xling.errors import XlingError

UPOS = ["ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
        "PUNCT", "SCONJ", "SYM", "VERB", "X"]
NER_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


class TaskSpec(BaseModel):
    name: str
    family: Literal["tag", "classify", "rank", "qa", "generate"]
    metric: str
    langs: list[str]
    train_lang: str = "en"
    # path templates relative to DATA, with {lang} and {split}; "train" may differ from dev/test
    train_file: str
    eval_file: str
    fmt: Literal["conll", "tsv", "squad"]
    labels: Optional[list[str]] = None
    header: bool = False
    pred_ext: str = "prediction"

    def path(self, data: Path, lang: str, split: str) -> Path:
        tpl = self.train_file if split == "train" else self.eval_file
        return Path(data) / tpl.format(lang=lang, split=split)

    def check_files(self, data: Path, langs: list[str], splits: list[str], train: bool) -> None:
        need = [self.path(data, self.train_lang, "train")] if train else []
        need += [self.path(data, lg, sp) for lg in langs for sp in splits]
        missing = [str(p) for p in need if not p.is_file()]
        if missing:
            raise XlingError(f"task {self.name}: missing {len(missing)} file(s): " + ", ".join(missing),
                             file=data, fix=f"expected the official XGLUE layout, e.g. "
                             f"{self.train_file.format(lang=self.train_lang, split='train')} and "
                             f"{self.eval_file.format(lang=langs[0] if langs else 'en', split='dev')}")


TASKS: dict[str, TaskSpec] = {t.name: t for t in [
    TaskSpec(name="ner", family="tag", metric="seqeval_f1", langs=["de", "en", "es", "nl"],
             train_file="NER/{lang}.train", eval_file="NER/{lang}.{split}", fmt="conll", labels=NER_TAGS),
    TaskSpec(name="pos", family="tag", metric="seqeval_precision",
             langs="ar bg de el en es fr hi it nl pl pt ru th tr ur vi zh".split(),
             train_file="POS/{lang}.train", eval_file="POS/{lang}.{split}", fmt="conll", labels=UPOS),
    TaskSpec(name="nc", family="classify", metric="accuracy", langs=["de", "en", "es", "fr", "ru"],
             train_file="NC/xglue.nc.{lang}.train", eval_file="NC/xglue.nc.{lang}.{split}", fmt="tsv",
             labels=["foodanddrink", "news", "sports", "travel", "video", "lifestyle", "entertainment",
                     "finance", "autos", "health"]),
    TaskSpec(name="mlqa", family="qa", metric="mlqa_f1", langs="ar de en es hi vi zh".split(),
             train_file="MLQA/squad1.1/train-v1.1.json",
             eval_file="MLQA/MLQA_V1/{split}/{split}-context-{lang}-question-{lang}.json", fmt="squad"),
    TaskSpec(name="xnli", family="classify", metric="accuracy",
             langs="ar bg de el en es fr hi ru sw th tr ur vi zh".split(),
             train_file="XNLI/{lang}.train", eval_file="XNLI/{lang}.{split}", fmt="tsv",
             labels=["contradiction", "entailment", "neutral"]),
    TaskSpec(name="pawsx", family="classify", metric="accuracy", langs=["de", "en", "es", "fr"],
             train_file="PAWSX/{lang}/train.tsv", eval_file="PAWSX/{lang}/{split}_2k.tsv", fmt="tsv",
             labels=["0", "1"], header=True),
    TaskSpec(name="qadsm", family="classify", metric="accuracy", langs=["de", "en", "fr"],
             train_file="QADSM/xglue.qadsm.{lang}.train", eval_file="QADSM/xglue.qadsm.{lang}.{split}",
             fmt="tsv", labels=["Bad", "Good"]),
    TaskSpec(name="wpr", family="rank", metric="ndcg", langs="de en es fr it pt zh".split(),
             train_file="WPR/xglue.wpr.{lang}.train", eval_file="WPR/xglue.wpr.{lang}.{split}", fmt="tsv",
             labels=["0", "1", "2", "3", "4"]),
    TaskSpec(name="qam", family="classify", metric="accuracy", langs=["de", "en", "fr"],
             train_file="QAM/xglue.qam.{lang}.train", eval_file="QAM/xglue.qam.{lang}.{split}", fmt="tsv",
             labels=["0", "1"]),
]}


def get_tasks(names: str | list[str]) -> list[TaskSpec]:
    if isinstance(names, str):
        names = [n.strip().lower() for n in names.split(",") if n.strip()]
    bad = [n for n in names if n not in TASKS]
    if bad:
        raise XlingError(f"unknown task(s): {', '.join(bad)}", fix="choose from " + ",".join(TASKS))
    return [TASKS[n] for n in names]


def read_conll(path: Path) -> list[tuple[list[str], list[str]]]:
    """Sentences of ``word TAG`` lines separated by blank lines."""
    sents, words, tags = [], [], []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            if words:
                sents.append((words, tags))
            words, tags = [], []
            continue
        if len(parts) < 2:
            raise XlingError("expected `word TAG`", file=path, line=i)
        words.append(parts[0])
        tags.append(parts[-1])
    if words:
        sents.append((words, tags))
    return sents


def read_tag_lines(path: Path) -> list[list[str]]:
    """Prediction/label files for tagging: one tag a line (last column), blank line between sentences."""
    return [tags for _w, tags in _read_single(path)]


def _read_single(path: Path):
    sents, cur = [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if not parts:
            if cur:
                sents.append((None, cur))
            cur = []
        else:
            cur.append(parts[-1])
    if cur:
        sents.append((None, cur))
    return sents
