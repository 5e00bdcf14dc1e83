"""``DATA/manifest.json``: what ``prep-data`` wrote, read back by pretraining and evaluation.

Unsharded, a corpus's files are ``DATA/{mono,para}/{split}.*``. With shards (``--shard-size`` or
``--shard K/N`` + ``--merge``) each ``DATA/shard{k}/`` is a complete data directory for one epoch
(``dict.txt``, ``spm.model``, ``manifest.json``, ``{mono,para}/train.*`` holding the k-th part of every
corpus, and the whole ``valid`` split), and fairseq is given ``DATA/shard0:DATA/shard1:...``.
"""
from __future__ import annotations

import json
from pathlib import Path

from xling.errors import XlingError


def finish(manifest: dict) -> dict:
    manifest["langs"] = sorted(set(manifest["mono"]) | {v[k] for v in manifest["para"].values() for k in ("src", "tgt")})
    manifest["mono_langs"] = sorted(manifest["mono"])
    manifest["pairs"] = sorted(manifest["para"])
    return manifest


def load_manifest(data_dir: str | Path) -> dict:
    """Read and check a prep-data manifest (used by pretraining and evaluation)."""
    d = Path(data_dir)
    mp = d / "manifest.json"
    if not mp.exists():
        raise XlingError("data directory has no manifest.json", file=d,
                         fix="prepare it with `xling prep-data --vocab VOCAB --out DIR ...`")
    m = json.loads(mp.read_text(encoding="utf-8"))
    if m.get("kind") != "xling-data":
        raise XlingError("manifest.json was not written by `xling prep-data`", file=mp, fix="prepare the data with xling")
    if not (d / "dict.txt").exists():
        raise XlingError("data directory has no dict.txt", file=d, fix="re-run `xling prep-data`")
    return m


def shard_dirs(data_dir: str | Path, manifest: dict | None = None) -> list[Path]:
    """The directories fairseq reads, one per epoch in turn: ``[DATA]``, or ``DATA/shard0 ...``."""
    d = Path(data_dir)
    m = manifest if manifest is not None else load_manifest(d)
    n = int(m.get("shards") or 0)
    return [d / f"shard{k}" for k in range(n)] if n else [d]


def fairseq_data_arg(data_dir: str | Path, manifest: dict | None = None) -> str:
    """fairseq's ``data`` argument for a prepared directory (``DATA`` or ``DATA/shard0:DATA/shard1:...``)."""
    return ":".join(str(p) for p in shard_dirs(data_dir, manifest))
