"""The output directory of ``xling eval xglue``, on :mod:`xling.outputs` (what xling wrote is recorded;
nothing else is ever replaced or deleted).

Layout (``OUT``)::

    OUT/POS/                       one directory per task (the release's folder name), replaced when the
                                   task is re-run (files xling did not write there are carried over):
                                   POS/{lang}.prediction (test, best seed: the submission the official
                                   scorer reads), POS/seeds/S/{dev,test}/{lang}.prediction,
                                   POS/task.json (the task's runs, signature and settings)
    OUT/results.json, results.md, OUT/{task}.png    the aggregate of every task in OUT evaluated for the
                                   same model, data, training language, seeds and example caps
                                   (the *identity*), rewritten after each task

``--out`` that is a file or lies inside the model or data directory is refused; a non-empty ``--out``
that xling did not write, or wrote for another identity, is refused unless ``--force``. With
``--force`` over another identity, that identity's task directories stay as they are and are left out
of the aggregate.
"""
from __future__ import annotations

import json
from pathlib import Path

from xling import outputs
from xling.errors import XlingError

COMMAND = "eval xglue"
TOP_FILES = ("results.json", "results.md")


def claim(out: Path, model: Path, data: Path, identity: dict, force: bool, names: list[str]) -> None:
    """Refuse an unsafe ``--out`` before anything is read or written. ``names``: the top-level files
    this run writes besides the task folders (charts); a changed or foreign one is refused too."""
    outputs.claim_dir(out, command=COMMAND, identity=identity, force=force,
                      protect={"model directory": model, "data directory": data})
    if force or not Path(out).is_dir():
        return
    foreign = set(outputs.foreign_files(out))
    clash = sorted(n for n in [*TOP_FILES, *names] if n in foreign)
    if clash:
        raise XlingError(f"--out has {', '.join(clash)} that xling did not write (or that changed since)",
                                 file=Path(out) / clash[0], fix="move them away, give another --out, or pass "
                                                                "--force to replace them")


def task_record(out: Path, folder: str) -> dict | None:
    """``OUT/folder/task.json`` when xling's ``eval xglue`` wrote that folder (else None)."""
    d = Path(out) / folder
    rec = outputs.read_record(d)
    if rec is None or rec.get("command") != COMMAND or not (d / "task.json").is_file():
        return None
    try:
        return json.loads((d / "task.json").read_text(encoding="utf-8"))
    except ValueError:
        return None


def tasks_in(out: Path, identity: dict) -> dict:
    """``{task: task.json}`` of every task folder of ``out`` written for ``identity``, by task name."""
    from xling.xglue.tasks import TASKS

    got = {}
    for name, spec in TASKS.items():
        t = task_record(out, spec.pred_dir)
        if t is not None and t.get("identity") == identity:
            got[name] = t
    return got


def note(out: Path, identity: dict, files: list[str]) -> None:
    """Record the aggregate files as xling's (the directory's record is created on the first task)."""
    out = Path(out)
    rec = outputs.read_record(out)
    if rec is None or rec.get("command") != COMMAND or rec.get("identity") != identity:
        outputs.write_record(out, COMMAND, identity)
    outputs.note_written(out, files)
