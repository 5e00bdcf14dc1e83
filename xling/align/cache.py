"""``xling align``'s run record: skip a finished run, refuse to replace files xling did not write.

Beside ``OUT`` we write ``OUT.json`` (``kind: xling-align``): the fingerprint of the inputs and options,
pairs, links and the time of each phase. A re-run with the same fingerprint is skipped.
"""
from __future__ import annotations

import json
from pathlib import Path

from xling.align.engine import Aligner, Progress
from xling.align.source import ParallelSource
from xling.errors import XlingError
from xling.io import sha256_file, sha256_text, write_json_atomic
from xling.outputs import check_out_file, claim_file, own_file

KIND = "xling-align"


def _record(meta: Path) -> dict | None:
    try:
        rec = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ours = isinstance(rec, dict) and (rec.get("kind") == KIND or {"fingerprint", "pairs", "links"} <= rec.keys())
    return rec if ours else None  # (records before `kind` existed have the other three keys)


def align_cached(out: str | Path, *, src=None, tgt=None, input=None, force: bool = False,
                 progress: Progress | None = None, save_priors: str | Path | None = None, **opts) -> dict:
    """Align into ``out`` unless it is up to date; returns the run record (``"skipped": True`` if reused)."""
    out = check_out_file(out, "--out")
    meta = out.with_name(out.name + ".json")
    if save_priors is not None:
        save_priors = claim_file(save_priors, "--save-priors", force=force)
    aligner = Aligner(**opts)
    source = ParallelSource(src, tgt, input)
    o = dict(aligner.opts)
    files = [f for f in (*source.files, o["priors"]) if f is not None]
    fp = sha256_text(json.dumps(o, sort_keys=True) + "".join(sha256_file(f) for f in files))
    rec = _record(meta)
    if meta.exists() and rec is None and not force:
        raise XlingError(f"{meta.name} (the run record written beside --out) exists and was not written by "
                         "`xling align`", file=meta, fix="choose another --out, or add --force to replace it")
    if out.exists() and not force:
        if rec is None:
            raise XlingError("--out exists and was not written by `xling align`", file=out,
                             fix="choose another --out, or add --force to replace it")
        if rec.get("fingerprint") == fp:
            return {**rec, "skipped": True}
    # an OSError (full disk, permissions) propagates: the CLI turns it into its one message (exit 2)
    stats = aligner.align_to_file(source, out, progress=progress, save_priors=save_priors)
    if save_priors is not None:
        own_file(save_priors)
    rec = {"kind": KIND, "fingerprint": fp, "options": o, **stats}
    write_json_atomic(meta, rec)
    return {**rec, "skipped": False}
