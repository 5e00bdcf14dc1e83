"""Readers of the XGLUE file formats, for training (runners) and for scoring (:mod:`xling.xglue.score`).

Gold files are read the way the official scorer (XGLUE's ``evaluation/xglue_evaluate.py``) reads them
(``for line in open(f)``); bad input is one :class:`XlingError` naming the file and line. Formats:
CoNLL (``word TAG`` lines, NER/POS), tag predictions (one tag a line), SQuAD v1.1 JSON (MLQA) and QA
predictions (``{id: answer}``), TSV (classification and ranking), and one-example-a-line text
(generation sources, targets and hypotheses).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from xling.errors import XlingError

if TYPE_CHECKING:
    from xling.xglue.tasks import TaskSpec


def file_lines(path: Path) -> list[str]:
    """The lines of a text file as the official scorer iterates them (``for line in open(f)``: split at
    newlines only, universal newlines, each line keeping its ``\\n``)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.readlines()
    except UnicodeDecodeError:
        from xling.io import read_lines

        read_lines(path, allow_empty=True)  # raises naming the line and column of the first bad byte
        raise


# ---------------------------------------------------------------- tagging (NER, POS)


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


# ---------------------------------------------------------------- one example a line (TSV)


def read_tsv_gold(spec: TaskSpec, path: Path) -> list[list[str]]:
    """Gold rows (tab-separated fields) of a one-example-a-line task as the official scorer reads them:
    every line, except that a header task (PAWS-X) drops its first line and blank lines."""
    lines = file_lines(path)
    if spec.header:
        lines = [ln for ln in lines[1:] if ln.strip()]
    return [ln.rstrip("\n").split("\t") for ln in lines]


def read_tsv_examples(spec: TaskSpec, path: Path, max_examples: int | None = None):
    """(header line or None, rows as column lists) for training and prediction: blank lines skipped;
    every row needs the same column count, at least 2 (3 with an id column)."""
    lines = [ln for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    header = lines[0] if spec.header and lines else None
    body = lines[1:] if spec.header else lines
    rows, width = [], None
    for i, ln in enumerate(body, 2 if spec.header else 1):
        cols = ln.split("\t")
        need = 3 if spec.id_column else 2
        if len(cols) < need or (width is not None and len(cols) != width):
            want = width or f"at least {need}"
            raise XlingError(f"expected {want} tab-separated columns, got {len(cols)}", file=path, line=i,
                             fix=f"official {spec.name} layout: text columns then the label")
        width = len(cols)
        rows.append(cols)
    return header, rows[:max_examples] if max_examples else rows


# ---------------------------------------------------------------- QA (MLQA: SQuAD v1.1 JSON)


def read_squad(path: Path) -> list[dict]:
    """Questions of a SQuAD v1.1 file: ``{"id", "question", "context", "answers"}`` each."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
        out = []
        for art in data:
            for para in art["paragraphs"]:
                for qa in para["qas"]:
                    out.append({"id": qa["id"], "question": qa["question"], "context": para["context"],
                                "answers": qa.get("answers", [])})
    except (ValueError, KeyError, TypeError) as e:
        raise XlingError(f"not SQuAD v1.1 JSON ({type(e).__name__}: {e})", file=path,
                         fix='{"data": [{"paragraphs": [{"context": ..., "qas": [{"id", "question", '
                             '"answers": [{"text", "answer_start"}]}]}]}]}') from None
    return out


def read_qa_predictions(path: Path) -> dict:
    """An MLQA prediction file: one JSON object mapping question ids to answer strings."""
    try:
        pred = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise XlingError(f"prediction is not JSON: {e}", file=path) from None
    if not isinstance(pred, dict) or not all(isinstance(v, str) for v in pred.values()):
        raise XlingError("MLQA predictions must be one JSON object of question id -> answer text", file=path,
                         fix='{"qas_id1": "answer text 1", "qas_id2": "answer text 2"}')
    return pred


# ---------------------------------------------------------------- generation (QG, NTG)


def read_text_lines(path: Path) -> list[str]:
    """Lines of a one-example-a-line file (``\n`` separated, a final newline optional, ``\r`` dropped)."""
    from xling.io import read_lines

    return read_lines(path, "generation file", allow_empty=True)


def target_text(line: str) -> str:
    """The gold target of a generation line as the official scorer reads it: its last tab field, stripped."""
    return line.split("\t")[-1].strip()


def generation_gold(gold_path: Path) -> list[str]:
    """Gold targets as the official scorer reads them: the last tab-separated field of each line."""
    return [target_text(ln) for ln in read_text_lines(gold_path)]


def read_generation_pred(pred_path: Path, n_gold: int) -> list[str]:
    """One hypothesis a line (empty lines are empty hypotheses); the count must equal the gold's."""
    pred = read_text_lines(pred_path)
    if len(pred) != n_gold:
        raise XlingError(f"prediction has {len(pred)} lines, gold has {n_gold}", file=pred_path,
                         fix="one generated text a line, in the order of the gold file (the official "
                             "scorer would silently truncate to the shorter file)")
    return [p.strip() for p in pred]


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
