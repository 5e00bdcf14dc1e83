"""The registry of pretraining objectives: every place that needs the list of objectives reads it here.

Seed version (names and kinds only); the Unicoder task, its criterion and ``xling.pretrain`` read
``OBJECTIVES`` and validate with :func:`parse_objectives`.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Objective:
    name: str
    parallel: bool  # needs parallel pairs
    masked: bool  # a masked-LM loss (mean per masked token)


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (
    Objective("mlm", parallel=False, masked=True),
    Objective("tlm", parallel=True, masked=True),
    Objective("clwr", parallel=True, masked=False),
    Objective("clpc", parallel=True, masked=False),
    Objective("clmlm", parallel=True, masked=True),
    Objective("cs-mlm", parallel=True, masked=True),
    Objective("xlco", parallel=True, masked=False),
)}
PARALLEL_OBJECTIVES = tuple(n for n, o in OBJECTIVES.items() if o.parallel)
MASKED_OBJECTIVES = tuple(n for n, o in OBJECTIVES.items() if o.masked)


def _split(text) -> list[str]:
    if isinstance(text, (list, tuple)):
        return [str(x).strip() for x in text if str(x).strip()]
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def parse_objectives(names, weights=None) -> tuple[list[str], list[float]]:
    """``(objectives, weights)`` from comma-separated text or lists; ``ValueError`` naming the problem."""
    objectives = _split(names)
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown or not objectives:
        raise ValueError(f"unknown objective(s) {', '.join(unknown) or '(none given)'}; "
                         f"known: {', '.join(OBJECTIVES)}")
    if len(set(objectives)) != len(objectives):
        raise ValueError(f"an objective is listed twice: {','.join(objectives)}")
    w = [float(x) for x in _split(weights)] if weights else [1.0] * len(objectives)
    if len(w) != len(objectives):
        raise ValueError(f"{len(w)} weight(s) given for {len(objectives)} objective(s) ({','.join(objectives)}); "
                         "give one weight per objective, in the same order")
    if any(x < 0 for x in w) or not any(w):
        raise ValueError(f"weights must be non-negative and not all 0, got {','.join(map(str, w))}")
    return objectives, w
