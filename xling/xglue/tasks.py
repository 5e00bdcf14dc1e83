"""Declarative specs of the XGLUE understanding tasks in the official release layout.

Each task is one ``TaskSpec``: its family (the runner that fine-tunes and predicts, see
:mod:`xling.xglue.runner`), file paths per (language, split), file format (read by
:mod:`xling.xglue.readers`), label set, metric and languages. Generation tasks (QG, NTG) are the
``family`` "generate": a source and a target file per (language, split), ``{side}`` in the path
template being ``src`` or ``tgt``; the target file is the gold file that scoring reads.
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
    fmt: Literal["conll", "tsv", "squad", "lines"]
    labels: Optional[list[str]] = None
    header: bool = False
    id_column: bool = False  # TSV: the first column is an id, not text (PAWS-X)
    pred_ext: str = "prediction"
    sides: list[str] = []  # generation: ["src", "tgt"], the {side} of the path templates

    def path(self, data: Path, lang: str, split: str, side: str = "tgt") -> Path:
        """The file of (lang, split); for generation tasks the ``side`` one (default: the gold targets)."""
        tpl = self.train_file if split == "train" else self.eval_file
        return Path(data) / tpl.format(lang=lang, split=split, side=side)

    @property
    def pred_dir(self) -> str:
        """The task's folder in the release and in a submission (``POS``): the official scorer reads
        ``PRED/POS/en.prediction``, upper case as in the release."""
        return Path(self.eval_file).parts[0]

    def found_langs(self, data: Path, split: str = "test") -> list[str]:
        """Languages whose ``split`` files exist under ``data`` (the data decides, not a fixed table)."""
        import re

        tpl = (self.train_file if split == "train" else self.eval_file).format(
            lang="LANGXX", split=split, side=(self.sides or ["tgt"])[-1])
        if "LANGXX" not in tpl:  # one file for the train language (MLQA's SQuAD train set)
            return [self.train_lang] if (Path(data) / tpl).is_file() else []
        pattern = re.compile("^" + re.escape(tpl).replace("LANGXX", "([^/.]+)", 1).replace("LANGXX", r"\1") + "$")
        hits = (pattern.match(p.relative_to(data).as_posix()) for p in Path(data).glob(tpl.replace("LANGXX", "*")))
        return sorted({m.group(1) for m in hits if m and self.path(data, m.group(1), split).is_file()})

    def check_files(self, data: Path, langs: list[str], splits: list[str], train: bool) -> None:
        sides = self.sides or ["tgt"]
        need = [self.path(data, self.train_lang, "train", sd) for sd in sides] if train else []
        need += [self.path(data, lg, sp, sd) for lg in langs for sp in splits for sd in sides]
        missing = [str(p) for p in need if not p.is_file()]
        if missing:
            raise XlingError(f"task {self.name}: missing {len(missing)} file(s): " + ", ".join(missing),
                             file=data, fix=f"expected the official XGLUE layout, e.g. "
                             f"{self.train_file.format(lang=self.train_lang, split='train', side='src')} and "
                             f"{self.eval_file.format(lang=langs[0] if langs else 'en', split='dev', side='src')}")


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
             labels=["0", "1"], header=True, id_column=True),
    TaskSpec(name="qadsm", family="classify", metric="accuracy", langs=["de", "en", "fr"],
             train_file="QADSM/xglue.qadsm.{lang}.train", eval_file="QADSM/xglue.qadsm.{lang}.{split}",
             fmt="tsv", labels=["Bad", "Good"]),
    TaskSpec(name="wpr", family="rank", metric="ndcg", langs="de en es fr it pt zh".split(),
             train_file="WPR/xglue.wpr.{lang}.train", eval_file="WPR/xglue.wpr.{lang}.{split}", fmt="tsv",
             labels=["0", "1", "2", "3", "4"]),
    TaskSpec(name="qam", family="classify", metric="accuracy", langs=["de", "en", "fr"],
             train_file="QAM/xglue.qam.{lang}.train", eval_file="QAM/xglue.qam.{lang}.{split}", fmt="tsv",
             labels=["0", "1"]),
    TaskSpec(name="qg", family="generate", metric="bleu", langs="de en es fr it pt".split(),
             train_file="QG/xglue.qg.{lang}.{side}.{split}", eval_file="QG/xglue.qg.{lang}.{side}.{split}",
             fmt="lines", sides=["src", "tgt"]),
    TaskSpec(name="ntg", family="generate", metric="bleu", langs="de en es fr ru".split(),
             train_file="NTG/xglue.ntg.{lang}.{side}.{split}", eval_file="NTG/xglue.ntg.{lang}.{side}.{split}",
             fmt="lines", sides=["src", "tgt"]),
]}


def get_tasks(names: str | list[str]) -> list[TaskSpec]:
    if isinstance(names, str):
        names = [n.strip().lower() for n in names.split(",") if n.strip()]
    bad = [n for n in names if n not in TASKS]
    if bad:
        raise XlingError(f"unknown task(s): {', '.join(bad)}", fix="choose from " + ",".join(TASKS))
    return [TASKS[n] for n in names]
