"""Alignment options, their checks and the speed/accuracy presets (chosen by measurement).

Presets set eflomal's sampling length (``length``: iterations relative to eflomal's ``5000 / sqrt(pairs)``
for the last model, see :func:`xling.align.eflomal.iterations`) and the samplers per direction; explicit
``length`` / ``n_samplers`` override them. Both directions always run in parallel threads of one
eflomal process, so one sampler per direction already keeps two cores busy; each extra sampler adds
its full cost in CPU time and buys accuracy through the argmax over samplers.

Measured with ``benchmarks/align.py``'s corpus (en-fr + zh-en gold + tatoeba, lowercased, tokenized;
``src ||| tgt`` input, so CJK words are split into characters, aligned, mapped back and symmetrized on
the input's tokens), 2 cores, quiet machine (load about 1). eflomal seeds itself from /dev/urandom, so
AER moves by about +-0.01 between runs: ranges are over 2-3 runs. fast_align (``-d -o -v``, both
directions, ``atools`` grow-diag-final-and): 6.9 s at 100k pairs (AER en-fr 0.269, zh-en 0.490),
63.2 s at 1M pairs (0.280, 0.513)::

    pairs  length  samplers  eflomal wall s  xling wall s  AER en-fr     AER zh-en
    100k   0.25    1          1.8-2.0        3.5-3.8       0.234-0.236   0.506-0.510     <- "fast"
    100k   0.5     1          2.3-2.5        4.2-4.4       0.210-0.216   0.479-0.492
    100k   0.75    1          3.3-3.5        5.3-5.7       0.204-0.208   0.454-0.461     <- "default"
    100k   0.5     2          4.5-5.3        6.1-7.1       0.194-0.203   0.432-0.445
    1M     0.25    1         20.0-21.6       27.5-30.3     0.240-0.242   0.510-0.512     <- "fast"
    1M     0.75    1         22.0-23.6       30.3-31.4     0.231-0.241   0.501-0.517     <- "default"

(1M pairs are two eflomal runs of 500k, the second sampled while the first's links are written; at
that size every length up to 0.7 is the floor schedule 2/2/4.) The default is the cheapest setting
whose AER is below fast_align's on both gold sets at 100k with a margin wider than the run-to-run
spread; at 1M its zh-en AER is within that spread of fast_align's. "fast" is below on en-fr only;
"accurate" is eflomal-align's own schedule.
"""
from __future__ import annotations

from pathlib import Path

from xling.align.symmetrize import check_heuristic
from xling.align.tokenize import TOKENIZERS
from xling.errors import XlingError

MIN_RUN_PAIRS = 1000  # smaller eflomal runs would learn too little

PRESETS = {  # schedule and floor: see xling.align.eflomal.iterations; null_prior: eflomal's -N
    "fast": {"length": 0.5, "n_samplers": 1, "schedule": "xling", "floor": 4, "null_prior": 0.3},
    "default": {"length": 0.75, "n_samplers": 1, "schedule": "xling", "floor": 8, "null_prior": 0.3},
    "accurate": {"length": 1.0, "n_samplers": 3, "schedule": "eflomal", "floor": 4, "null_prior": 0.2},  # eflomal-align's
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
            "length": float(length), "n_samplers": int(n_samplers), "schedule": p["schedule"], "floor": p["floor"],
            "null_prior": p["null_prior"], "priors": str(priors) if priors else None, "run_pairs": int(run_pairs)}
