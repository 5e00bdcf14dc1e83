"""Alignment options, their checks and the speed/accuracy presets (chosen by measurement).

Presets set eflomal's sampling length (``length``: iterations of the last model relative to eflomal's
``5000 / sqrt(pairs)`` per run, at least the preset's ``floor``), the shape of the schedule (see
:func:`xling.align.eflomal.iterations`), eflomal's null-link prior and the samplers per direction;
explicit ``length`` / ``n_samplers`` override them. Both directions always run in parallel threads
of one eflomal process, so one sampler per direction already keeps two cores busy; each extra
sampler adds its full cost in CPU time and buys accuracy through the argmax over samplers.

Measured with ``benchmarks/align.py``'s corpus (en-fr + zh-en gold + tatoeba, lowercased, tokenized;
``src ||| tgt`` input, so CJK words are split into characters, aligned, mapped back and symmetrized on
the input's tokens), 2 cores. eflomal seeds itself from /dev/urandom: AER ranges are over 3-5 runs.
Iterations are written IBM1/HMM/fertility; "eflomal s" is the sampler alone on the same numbered
files, alternating settings (this machine's speed drifted by up to 1.5x within the hour, so compare
times within a block only). fast_align (``-d -o -v``, both directions, ``atools``
grow-diag-final-and): AER en-fr 0.269, zh-en 0.490 at 100k pairs; 0.280, 0.513 at 1M::

    100k pairs (one run)           eflomal s  AER en-fr     AER zh-en
    3/3/12, null prior 0.2         3.2-3.3    0.202-0.212   0.459-0.463   eflomal's shape (the old default)
    2/2/8,  0.2                    2.2-2.3    0.204-0.211   0.483
    0/0/12, 0.2                    2.2        0.212-0.220   0.497-0.503   no IBM1 start: worse
    1/1/10, 0.3                    2.1        0.203-0.210   0.482-0.487
    1/1/12, 0.2                    2.4        0.200-0.212   0.472-0.477
    1/1/12, 0.3                    2.3        0.193-0.209   0.465-0.481   <- "default" (xling shape)
    1/1/12, 0.5                    2.4        0.193-0.209   0.470-0.475
    1/0/14, 0.3                    -          0.195-0.202   0.456-0.474
    1/0/8,  0.3                    1.8-2.3    0.215-0.225   0.502-0.511   <- "fast" (1/1/12, 0.3: 2.9-3.1)

    1M pairs (runs of 500k: 1M is two; AER of the first run)
    2/2/4,  0.2 (the old floor)     7.6-7.8   0.240         0.514-0.522
    1/0/6,  0.3                     9.6-9.9   0.241         0.515-0.516
    1/1/7,  0.3                    12.8-14.1  0.238-0.247   0.499-0.509
    1/0/8,  0.3                    12.5-13.7  0.232-0.249   0.493-0.501
    1/0/4,  0.3                     7.1-8.6   0.257-0.259   0.528-0.535
    2/0/4,  0.3                     7.4-8.0   0.242-0.256   0.502-0.512   <- "fast" (floor 4)
    another block, alternating:
    1/0/8,  0.3                     9.7-10.9  0.229-0.237   0.492-0.505
    2/0/8,  0.3                    10.1-10.5  0.224-0.236   0.484-0.491   <- "default" (floor 8)
    (at 100k, 2/1/12 against 1/1/12, alternating: 2.8-3.1 s against 2.5-2.7 s, zh-en 0.459-0.474 against
    0.460-0.488: not worth its time there)

On a small corpus (a gold set + 1000 tatoeba pairs, ``--tokenizer whitespace``, 1 sampler) the earlier
models matter and cost little: eflomal's shape 24/24/99 scored 0.179-0.184 / 0.366-0.375, the xling
shape 22/22/99 with null prior 0.3 0.177-0.178 / 0.363-0.370, while 8/0/99 and 8/8/99 scored
0.375-0.387 on zh-en.
The default is the cheapest setting found whose AER is below fast_align's on both gold sets at 100k
and 1M with a margin at least the run-to-run spread (at 1M on zh-en: 0.02-0.03); "fast" is below on en-fr
only at 100k; "accurate" is eflomal-align's own schedule with 3 samplers.
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
            n_samplers: int | None, priors: str | Path | None, run_pairs: int, seed: int = 1) -> dict:
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
    if not 0 <= seed < 2 ** 63:
        raise XlingError(f"--seed must be between 0 and 2**63-1, got {seed}", fix="e.g. --seed 1 (the default)")
    if priors is not None:
        pp = Path(priors)
        if not pp.is_file():
            raise XlingError("priors file does not exist", file=pp,
                             fix="write one with `xling align --save-priors` (or eflomal-makepriors) or drop --priors")
    return {"sym": sym, "tokenizer": tokenizer, "lowercase": lowercase, "model": model, "preset": preset,
            "length": float(length), "n_samplers": int(n_samplers), "schedule": p["schedule"], "floor": p["floor"],
            "null_prior": p["null_prior"], "priors": str(priors) if priors else None, "run_pairs": int(run_pairs),
            "seed": int(seed)}
