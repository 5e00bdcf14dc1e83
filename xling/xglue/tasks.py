"""Declarative specs of the XGLUE understanding tasks in the official release layout.

Each task is one ``TaskSpec``: its family (the runner that fine-tunes and predicts), file paths per
(language, split), label set, metric and languages. Generation tasks (QG, NTG) are the
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


def file_lines(path: Path) -> list[str]:
    """The lines of a text file as the official scorer iterates them (``for line in open(f)``: split at
    newlines only, universal newlines, each line keeping its ``\\n``)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.readlines()
    except UnicodeDecodeError as e:
        raise XlingError(f"not UTF-8 text ({e.reason} at byte {e.start})", file=path) from None


def read_conll(path: Path) -> list[tuple[list[str], list[str]]]:
    """Sentences of ``word TAG`` lines separated by blank lines; the tag is the last field, as the
    official scorer reads gold files. ``-DOCSTART-`` lines (CoNLL NER) end a sentence and are skipped."""
    sents, words, tags = [], [], []
    for i, line in enumerate(file_lines(path), 1):
        parts = line.split()
        if not parts or line.startswith("-DOCSTART-"):
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


def read_tag_predictions(path: Path) -> list[list[str]]:
    """A NER/POS prediction file as the official scorer reads it: each non-blank line, stripped, is one
    word's tag (the whole line, not its last field); a blank line ends a sentence. A blank line that
    ends no sentence (at the start, or a second one in a row) is an error here: the official scorer
    would read it as an empty tag and shift every tag after it."""
    sents, cur = [], []
    for i, line in enumerate(file_lines(path), 1):
        tag = line.strip()
        if tag:
            cur.append(tag)
        elif cur:
            sents.append(cur)
            cur = []
        else:
            raise XlingError("blank line that ends no sentence", file=path, line=i,
                             fix="one tag a line, exactly one blank line after each sentence")
    if cur:
        sents.append(cur)
    return sents


def read_text_lines(path: Path) -> list[str]:
    """Lines of a one-example-a-line file (``\n`` separated, a final newline optional, ``\r`` dropped)."""
    from xling.io import read_lines

    return read_lines(path, "generation file", allow_empty=True)


def target_text(line: str) -> str:
    """The gold target of a generation line as the official scorer reads it: its last tab field, stripped."""
    return line.split("\t")[-1].strip()


def read_generation(spec: TaskSpec, data: Path, lang: str, split: str) -> tuple[list[str], list[str]]:
    """(sources, targets) of a generation task; targets are the last tab field of each gold line (as the
    official scorer reads them). Different line counts and empty source lines are errors."""
    src_path, tgt_path = spec.path(data, lang, split, "src"), spec.path(data, lang, split, "tgt")
    for p in (src_path, tgt_path):
        if not p.is_file():
            raise XlingError(f"task {spec.name}: missing {p.name}", file=p,
                             fix=f"expected the official layout {spec.eval_file}")
    src, tgt = read_text_lines(src_path), read_text_lines(tgt_path)
    if len(src) != len(tgt):
        raise XlingError(f"{src_path.name} has {len(src)} lines but {tgt_path.name} has {len(tgt)}",
                         file=tgt_path, fix="line i of the source file pairs with line i of the target file")
    for i, line in enumerate(src, 1):
        if not line.strip():
            raise XlingError("empty source line", file=src_path, line=i,
                             fix="every example needs source text (remove the pair from both files)")
    return [s.strip() for s in src], [target_text(t) for t in tgt]
