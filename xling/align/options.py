"""Alignment options, their checks and the speed/accuracy presets (chosen by measurement).

Presets set eflomal's sampling length (``length``: iterations relative to eflomal's ``5000 / sqrt(pairs)``
for the last model, see :func:`xling.align.eflomal.iterations`) and the samplers per direction; explicit
``length`` / ``n_samplers`` override them. Both directions always run in parallel threads of one
eflomal process, so one sampler per direction already keeps two cores busy; each extra sampler adds
its full cost in CPU time and buys accuracy through the argmax over samplers.

Measured with ``benchmarks/align.py`` (100k pairs: en-fr + zh-en gold + tatoeba x20, lowercased,
2 shared cores at load 7-10, eflomal CPU seconds for both directions; fast_align: 30.6 s CPU, AER
en-fr 0.269, zh-en 0.490)::

    length  samplers  eflomal CPU s  AER en-fr  AER zh-en   (zh-en with the gold's own words / unicode split)
    0.2     1          ~4             0.246      0.569
    0.25    1          ~5.6           0.236      0.565 / 0.534       <- "fast"
    0.5     1          ~5.7           0.216      0.540
    1.0     1          ~9.9           0.211      0.489
    0.5     2          ~11-12         0.192-0.21 0.478-0.499 / 0.457  <- "default"
    1.0     3          ~3x (1.0, 1)   -          -                    <- "accurate" (eflomal-align's own)

The default is the cheapest setting whose AER is at or below fast_align's on both gold sets (zh-en
only with unicode splitting: the gold's Chinese words are rare, their characters are not); "fast"
keeps en-fr well ahead of fast_align for a third of the CPU and is worse on zh-en.
"""
from __future__ import annotations

from pathlib import Path

from xling.align.symmetrize import check_heuristic
from xling.align.tokenize import TOKENIZERS
from xling.errors import XlingError

MIN_RUN_PAIRS = 1000  # smaller eflomal runs would learn too little

PRESETS = {
    "fast": {"length": 0.25, "n_samplers": 1},
    "default": {"length": 0.5, "n_samplers": 2},
    "accurate": {"length": 1.0, "n_samplers": 3},  # eflomal-align's own defaults
}


def resolve(*, sym: str, tokenizer: str, lowercase: bool, model: int, preset: str, length: float | None,
            n_samplers: int | None, priors: str | Path | None, run_pairs: int) -> dict:
    """Check every option once and return them with the preset applied."""
    check_heuristic(sym)
    if tokenizer not in TOKENIZERS:
        raise XlingError(f"unknown tokenizer {tokenizer!r}", fix=f"use one of {', '.join(TOKENIZERS)}")
    if model not in (1, 2, 3):
        raise XlingError(f"unknown eflomal model {model}", fix="use 1 (IBM1), 2 (+HMM) or 3 (+fertility)")
    if preset not in PRESETS:
        raise XlingError(f"unknown preset {preset!r}", fix=f"use one of {', '.join(PRESETS)}")
    p = PRESETS[preset]
    length = p["length"] if length is None else length
    n_samplers = p["n_samplers"] if n_samplers is None else n_samplers
    if not length > 0:
        raise XlingError(f"--length must be > 0, got {length}", fix="e.g. --length 0.5 (half eflomal's iterations)")
    if n_samplers < 1:
        raise XlingError(f"--n-samplers must be >= 1, got {n_samplers}", fix="use 1 (fast) to 3 (eflomal's default)")
    if run_pairs < 0 or 0 < run_pairs < MIN_RUN_PAIRS:
        raise XlingError(f"--run-pairs must be 0 (one run) or >= {MIN_RUN_PAIRS}, got {run_pairs}",
                         fix="e.g. --run-pairs 500000 (eflomal's memory grows with the pairs of one run)")
    if priors is not None:
        pp = Path(priors)
        if not pp.is_file():
            raise XlingError("priors file does not exist", file=pp,
                             fix="write one with `xling align --save-priors` (or eflomal-makepriors) or drop --priors")
    return {"sym": sym, "tokenizer": tokenizer, "lowercase": lowercase, "model": model, "preset": preset,
            "length": float(length), "n_samplers": int(n_samplers), "priors": str(priors) if priors else None, "run_pairs": int(run_pairs)}
