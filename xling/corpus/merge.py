"""``xling prep-data --merge``: the N parts prepared with ``--shard K/N`` (on N machines, into one
shared ``DATA``) become one sharded dataset.

Part K wrote ``DATA/shardK/{mono,para}/train.*`` (the K-th slice of every input, deduplicated within
the slice) and ``DATA/parts/partK/{mono,para}/valid.*`` with ``DATA/parts/partK.json``. The merge
checks that all N parts ran on the same inputs, vocabulary and options, concatenates the valid parts
(in part order) into ``DATA/{mono,para}/valid.*`` and into every shard, and writes the manifest.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from xling import __version__
from xling.corpus.binarize import concat_datasets
from xling.corpus.manifest import finish
from xling.corpus.textenc import token_dtype
from xling.errors import XlingError
from xling.io import sha256_text, write_json_atomic


def _read_parts(out: Path) -> list[dict]:
    paths = sorted((out / "parts").glob("part*.json"))
    if not paths:
        raise XlingError("no parts to merge (DATA/parts/partK.json)", file=out,
                         fix="run `xling prep-data --shard K/N --out DATA ...` for K = 0..N-1 first")
    parts = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    n = parts[0]["part"]["of"]
    have = sorted(p["part"]["index"] for p in parts)
    if have != list(range(n)) or any(p["part"]["of"] != n for p in parts):
        missing = sorted(set(range(n)) - set(have))
        raise XlingError(f"parts {', '.join(map(str, missing)) or '?'} of {n} are missing or from another run",
                         file=out / "parts", fix="run the missing `--shard K/N` parts (same inputs and options)")
    parts.sort(key=lambda p: p["part"]["index"])
    for p in parts[1:]:
        same = (p["vocab"]["spm_sha256"] == parts[0]["vocab"]["spm_sha256"] and p["options"] == parts[0]["options"]
                and {s: {k: e["inputs"] for k, e in p[s].items()} for s in ("mono", "para")}
                == {s: {k: e["inputs"] for k, e in parts[0][s].items()} for s in ("mono", "para")})
        if not same:
            raise XlingError(f"part {p['part']['index']} was prepared with other inputs, options or vocabulary "
                             "than part 0", file=out / "parts" / f"part{p['part']['index']}.json",
                             fix="prepare every part with the same command, changing only --shard K/N")
    return parts


def merge_parts(out: str | Path) -> dict:
    out = Path(out)
    parts = _read_parts(out)
    n = len(parts)
    dtype = token_dtype(parts[0]["vocab"]["dict_size"])
    manifest = {"kind": "xling-data", "xling_version": __version__, "vocab": parts[0]["vocab"],
                "options": parts[0]["options"], "shards": n, "mono": {}, "para": {}}
    for section in ("para", "mono"):
        for key, e0 in parts[0][section].items():
            entries = [p[section][key] for p in parts]
            names = [key] if section == "mono" else [f"{key}.{e0['src']}", f"{key}.{e0['tgt']}"]
            files = [f for e in entries for f in e["files"] if f.startswith("shard")]
            valid = []
            for name in names:
                top = f"{section}/valid.{name}"
                concat_datasets([out / f"parts/part{k}/{section}/valid.{name}" for k in range(n)], out / top, dtype)
                valid += [f"{top}.{x}" for x in ("bin", "idx", "txt")]
            if e0.get("aligned"):
                top = f"{section}/valid.{key}.align"
                with open(out / top, "wb") as f:
                    for k in range(n):
                        f.write((out / f"parts/part{k}/{top}").read_bytes())
                valid.append(top)
            for k in range(n):
                for f in valid:
                    (out / f"shard{k}" / f).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(out / f, out / f"shard{k}" / f)
            counts = {c: sum(e["counts"][c] for e in entries) for c in e0["counts"]}
            manifest[section][key] = {
                "fingerprint": sha256_text(json.dumps([e["fingerprint"] for e in entries])),
                **{k: v for k, v in e0.items() if k in ("src", "tgt", "aligned", "inputs")}, "counts": counts,
                "sentences": {s: sum(e["sentences"][s] for e in entries) for s in ("train", "valid")},
                "tokens": {s: sum(e["tokens"][s] for e in entries) for s in ("train", "valid")},
                "shards": [e["sentences"]["train"] for e in entries],
                "files": files + valid + [f"shard{k}/{f}" for k in range(n) for f in valid]}
    finish(manifest)
    for k in range(n):
        for name in ("dict.txt", "spm.model"):
            tmp = out / f"shard{k}" / f".{name}.tmp"
            shutil.copyfile(out / name, tmp)
            os.replace(tmp, out / f"shard{k}" / name)
        write_json_atomic(out / f"shard{k}" / "manifest.json", manifest)
    write_json_atomic(out / "manifest.json", manifest)
    return manifest
