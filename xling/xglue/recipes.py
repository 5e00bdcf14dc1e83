"""Per-task fine-tuning recipes: the defaults of ``lr``, ``epochs``, ``batch_size``, ``max_length``,
``doc_stride`` and ``eval_batch_size`` for each XGLUE task; every one is overridden by its flag.

``xglue`` (the default) is the published XGLUE baseline, microsoft/Unicoder
``understanding/unicoder/xglue.sh`` (per-GPU batch 32, AdamW, linear decay):
XNLI, PAWS-X, NC, QADSM, QAM, WPR lr 5e-6, 10 epochs, length 256; MLQA lr 3e-5, 2 epochs, length 384,
doc stride 128, batch 12, evaluation batch 128; NER lr 5e-6, 20 epochs, 256; POS lr 2e-5, 20 epochs,
128. (XTREME's ``train_xnli.sh``, for comparison: 2e-5, 5 epochs, 128.) The script has no generation
tasks: QG and NTG keep xling's values (those of ``quick``, with 10 epochs).

``quick`` is a short recipe for CPUs and smoke tests (xling's earlier defaults): lr 5e-4, 3 epochs,
batch 16, the model's maximum length, QA windows overlapping by half.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from xling.errors import XlingError


@dataclass(frozen=True)
class Recipe:
    lr: float
    epochs: int
    batch_size: int
    max_length: int  # pieces; 0: the model's maximum
    doc_stride: int = 0  # QA: window step in context pieces; 0: half a window
    eval_batch_size: int = 64


_PAIR = Recipe(lr=5e-6, epochs=10, batch_size=32, max_length=256)
_QUICK = Recipe(lr=5e-4, epochs=3, batch_size=16, max_length=0)

RECIPES: dict[str, dict[str, Recipe]] = {
    "xglue": {
        **{t: _PAIR for t in ("xnli", "pawsx", "nc", "qadsm", "qam", "wpr")},
        "mlqa": Recipe(lr=3e-5, epochs=2, batch_size=12, max_length=384, doc_stride=128, eval_batch_size=128),
        "ner": Recipe(lr=5e-6, epochs=20, batch_size=32, max_length=256),
        "pos": Recipe(lr=2e-5, epochs=20, batch_size=32, max_length=128),
        "qg": replace(_QUICK, epochs=10),
        "ntg": replace(_QUICK, epochs=10),
    },
    "quick": {t: _QUICK for t in ("xnli", "pawsx", "nc", "qadsm", "qam", "wpr", "mlqa", "ner", "pos", "qg", "ntg")},
}

FIELDS = ("lr", "epochs", "batch_size", "max_length", "doc_stride", "eval_batch_size")


def recipe(name: str, task: str) -> Recipe:
    if name not in RECIPES:
        raise XlingError(f"unknown recipe {name!r}", fix="--recipe " + " or ".join(RECIPES))
    return RECIPES[name][task]


def describe(name: str) -> str:
    """One line per distinct setting, for ``--help``."""
    rows: dict[Recipe, list[str]] = {}
    for task, r in RECIPES[name].items():
        rows.setdefault(r, []).append(task)
    return "; ".join(f"{','.join(ts)}: lr {r.lr:g}, {r.epochs} ep, batch {r.batch_size}, len {r.max_length or 'max'}"
                     + (f", stride {r.doc_stride}" if r.doc_stride else "") for r, ts in rows.items())
