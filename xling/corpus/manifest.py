"""``DATA/manifest.json``: what ``prep-data`` wrote, read back by pretraining and evaluation.

Unsharded, a corpus's files are ``DATA/{mono,para}/{split}.*``. With shards (``--shard-size`` or
``--shard K/N`` + ``--merge``) each ``DATA/shard{k}/`` is a complete data directory for one epoch
(``dict.txt``, ``spm.model``, ``manifest.json``, ``{mono,para}/train.*`` holding the k-th part of every
corpus, and the whole ``valid`` split), and fairseq is given ``DATA/shard0:DATA/shard1:...``.
"""
from __future__ import annotations

from pathlib import Path

from xling.errors import XlingError
from xling.io import read_json


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
        raise XlingError("not a prepared data directory: manifest.json is missing", file=d,
                         fix="point --data at the output of `xling prep-data`")
    m = read_json(mp, "data manifest")
    if m.get("kind") != "xling-data":
        raise XlingError("manifest.json is not an xling data manifest", file=mp,
                         fix="point --data at the output of `xling prep-data`")
    if not (d / "dict.txt").exists():
        raise XlingError("dict.txt is missing from the data directory", file=d,
                         fix="re-run `xling prep-data`, which copies the vocabulary's dict.txt")
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
