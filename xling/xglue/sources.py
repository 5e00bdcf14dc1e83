"""Multi-source fine-tuning: which languages a run trains on (``--train-lang en,de,zh`` or ``all``), from
which split (``--train-split train|dev``), the union of their training examples (optionally balanced
per language) and the sets that select the checkpoint.

- ``train``: each source's train set trains; each source's dev set selects.
- ``dev`` (a language without a train set, as the shared POS data's de/ru/zh): each source's dev set is
  split once, in file order: its last tenth (at least one example) selects the checkpoint, the rest
  trains (``--max-train-examples`` caps that part). Its dev scores are then never reported
  (:func:`trained_on`), its test scores are.
- Selection maximises the mean of the sources' dev scores (each language counts once, whatever the
  size of its dev set; one source: its dev score, as before).
- ``balance``: each source's examples are repeated (in a seeded order) up to the largest source's count,
  so that every language contributes equally to each epoch.
"""
from __future__ import annotations

import random
from pathlib import Path

from xling.errors import XlingError
from xling.langs import check_lang

SPLITS = ("train", "dev")
HELD_OUT = 10  # --train-split dev: 1/HELD_OUT of each source's dev set selects the checkpoint


def parse(text: str, spec, data: Path, split: str) -> list[str]:
    """The source languages of ``--train-lang``: a comma-separated list, or ``all`` (every language with a
    ``split`` file of the task in ``data``)."""
    if split not in SPLITS:
        raise XlingError(f"--train-split must be train or dev, not {split!r}",
                         fix="dev trains on a language's dev set where it has no train set")
    items = [t.strip() for t in (text or "").split(",") if t.strip()]
    if items == ["all"]:
        found = spec.found_langs(data, split)
        if not found:
            raise XlingError(f"--train-lang all: task {spec.name} has no {split} file in --data", file=data,
                             fix=f"expected e.g. {spec.path(data, 'en', split)}")
        return found
    if not items:
        raise XlingError("--train-lang is empty", fix="a language such as en, a list such as en,de,zh, or all")
    for lg in items:
        check_lang(lg, what="--train-lang entry")
    if len(set(items)) != len(items):
        raise XlingError(f"--train-lang {text!r} names a language twice", fix="name each source language once")
    return items


def key(train_lang: str, split: str, balance: bool) -> str:
    """What the signature and the output's identity record of the sources (``en`` for the old default)."""
    return train_lang + ("@dev" if split == "dev" else "") + ("+balanced" if balance else "")


def check_files(spec, data: Path, sources: list[str], split: str) -> None:
    missing = [str(spec.path(data, lg, split, sd)) for lg in sources for sd in (spec.sides or ["tgt"])
               if not spec.path(data, lg, split, sd).is_file()]
    if missing:
        raise XlingError(f"task {spec.name}: no {split} set for --train-lang: missing " + ", ".join(missing),
                         file=data, fix="--train-split dev trains on a language's dev set where it has no train "
                                        "set; or leave the language out of --train-lang")
    if split == "dev" and spec.family not in ("tag", "classify"):
        raise XlingError(f"--train-split dev: task {spec.name} ({spec.family}) cannot split its dev set",
                         fix="--train-split dev is for tagging and classification tasks (pos, ner, nc, xnli, ...)")


def trained_on(lang: str, split: str, sources: list[str], train_split: str) -> bool:
    """Whether (lang, split) was (in part) trained on: such a set is never scored."""
    return split == train_split and lang in sources


def _held_out(n: int) -> int:
    return max(1, n // HELD_OUT)


def load(runner, data: Path, sources: list[str], split: str, max_train: int | None, max_eval: int | None,
         balance: bool, seed: int) -> tuple[list, dict]:
    """(training items: the union over ``sources``, {lang: the loaded set that selects for it})."""
    per, select = [], {}
    for lg in sources:
        if split == "train":
            per.append(runner.train_items(runner.load(data, lg, "train", max_train, train=True)))
            select[lg] = runner.load(data, lg, "dev", max_eval)
            continue
        full = runner.load(data, lg, "dev")
        if not isinstance(full, list) or len(full) < 2:
            raise XlingError(f"--train-split dev: the {lg} dev set needs at least 2 examples (training and "
                             "selection)", file=runner.spec.path(data, lg, "dev"))
        cut = len(full) - _held_out(len(full))
        per.append(runner.train_items(full[:cut][:max_train] if max_train else full[:cut]))
        select[lg] = full[cut:][:max_eval] if max_eval else full[cut:]
    if balance and len(per) > 1:
        most = max(len(p) for p in per)
        rng = random.Random(seed)
        per = [p + [p[i % len(p)] for i in rng.sample(range(len(p)), len(p)) * (most // len(p))][: most - len(p)]
               if p else p for p in per]
    return [it for p in per for it in p], select


def select_score(runner, model, select: dict) -> float:
    """The checkpoint-selection score: the mean over the sources of each one's dev score."""
    return sum(runner.dev_score(model, ex, lg) for lg, ex in select.items()) / len(select)
