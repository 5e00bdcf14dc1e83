"""Corpus preparation into fairseq binary datasets (``xling prep-data``).

Per corpus (one language of monolingual text, or one language pair): Unicode NFKC, control
characters removed and whitespace collapsed, blank lines dropped, exact duplicates dropped
(pairs are deduplicated as pairs), SentencePiece encoding with the shared vocabulary, length filters
in pieces (and a length-ratio filter for pairs), a seeded valid split, and binarization with
fairseq's own mmap indexed-dataset writer. Items are fairseq ids followed by ``</s>``, exactly what
``fairseq-preprocess --srcdict dict.txt`` writes for the spm-encoded text.

Written by hand: the cleaning rules, the filters and the bookkeeping (counts, fingerprints,
manifest), because they are a few lines each; the id mapping ``fairseq = spm + 1`` replaces
``Dictionary.encode_line`` for speed and is checked against the dictionary at start.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from xling import __version__
from xling.errors import XlingError
from xling.io import check_file, read_lines_hashed, sha256_file, sha256_text, write_json_atomic
from xling.langs import check_lang
from xling.vocab import check_dict_matches_spm

SPLITS = ("train", "valid")


@dataclass
class ParaInput:
    pair: str
    src: str
    tgt: str
    src_path: str
    tgt_path: Optional[str] = None  # None: src_path holds `src ||| tgt` lines


@dataclass
class DataConfig:
    vocab: str
    out: str
    mono: list[tuple[str, str]] = field(default_factory=list)  # (lang, path), a lang may repeat
    para: list[ParaInput] = field(default_factory=list)
    mono_from_para: bool = False
    valid_size: int = 1000
    valid_max_fraction: float = 0.1
    min_len: int = 1
    max_len: int = 256
    max_ratio: float = 3.0
    dedup: bool = True
    seed: int = 1
    num_threads: int = 2
    force: bool = False
    align: bool = False
    align_sym: str = "grow-diag-final-and"

    def options(self) -> dict:
        """Options that change the output of every corpus."""
        return {k: v for k, v in asdict(self).items()
                if k in ("valid_size", "valid_max_fraction", "min_len", "max_len", "max_ratio", "dedup", "seed")}


def parse_pair(text: str) -> tuple[str, str]:
    parts = text.split("-")
    # allow script/region subtags such as zh_Hans-en; pairs are split on the one '-' that yields two valid codes
    for i in range(1, len(parts)):
        a, b = "-".join(parts[:i]), "-".join(parts[i:])
        try:
            check_lang(a)
            check_lang(b)
            if a == b:
                break
            return a, b
        except XlingError:
            continue
    raise XlingError(f"{text!r} is not a language pair SRC-TGT of two different ISO 639 codes",
                     fix="write pairs as en-fr or zh_Hans-en")


def clean_line(s: str) -> str:
    """NFKC, control characters dropped, whitespace runs collapsed to one space, stripped."""
    s = unicodedata.normalize("NFKC", s)
    if any(unicodedata.category(c) in ("Cc", "Cf") and not c.isspace() for c in s):
        s = "".join(c for c in s if c.isspace() or unicodedata.category(c) not in ("Cc", "Cf"))
    return " ".join(s.split())


def _read_para(inp: ParaInput) -> tuple[list[str], list[str], list[dict]]:
    if inp.tgt_path is None:
        lines, digest = read_lines_hashed(inp.src_path, f"--para {inp.pair}")
        src, tgt = [], []
        for i, ln in enumerate(lines, 1):
            if "|||" not in ln:
                raise XlingError("line is not `source ||| target`", file=inp.src_path, line=i,
                                 fix="separate the two sides with ' ||| ', or pass two files as SRC_PATH,TGT_PATH")
            if ln.count("|||") > 1:
                raise XlingError("line holds more than one `|||`", file=inp.src_path, line=i,
                                 fix="each line must be exactly `source ||| target`")
            a, b = ln.split("|||")
            src.append(a)
            tgt.append(b)
        return src, tgt, [{"path": str(inp.src_path), "sha256": digest}]
    src, src_digest = read_lines_hashed(inp.src_path, f"--para {inp.pair} ({inp.src} side)")
    tgt, tgt_digest = read_lines_hashed(inp.tgt_path, f"--para {inp.pair} ({inp.tgt} side)")
    if len(src) != len(tgt):
        raise XlingError(
            f"parallel files have different line counts: {inp.src_path} has {len(src)} lines, "
            f"{inp.tgt_path} has {len(tgt)}", file=inp.tgt_path,
            fix="line i of one side must be the translation of line i of the other")
    return src, tgt, [{"path": str(inp.src_path), "sha256": src_digest},
                      {"path": str(inp.tgt_path), "sha256": tgt_digest}]


class Encoder:
    """spm text -> fairseq ids (+ </s>), consistent with ``dict.txt``."""

    def __init__(self, vocab_dir: Path, num_threads: int = 2):
        import sentencepiece as spm

        self.spm_path = vocab_dir / "spm.model"
        self.dict_path = vocab_dir / "dict.txt"
        check_file(self.spm_path, "vocabulary's spm.model")
        check_file(self.dict_path, "vocabulary's dict.txt")
        self.dict_size = check_dict_matches_spm(self.dict_path, self.spm_path)
        self.sp = spm.SentencePieceProcessor(model_file=str(self.spm_path))
        self.num_threads = num_threads

    def encode(self, lines: list[str]) -> list[np.ndarray]:
        out = []
        for ids in self.sp.encode(lines, num_threads=self.num_threads):
            a = np.asarray(ids, dtype=np.int64) + 1
            a[a == 1] = 3  # spm <unk> (0) -> fairseq <unk> (3)
            out.append(np.append(a, 2))  # </s>
        return out

    def decode(self, fairseq_ids) -> str:
        ids = [int(i) - 1 if int(i) != 3 else 0 for i in fairseq_ids if int(i) != 2]
        return self.sp.decode(ids)


def _write_dataset(prefix: Path, items: list[np.ndarray], texts: list[str], dict_size: int) -> int:
    import torch

    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    from fairseq.data import indexed_dataset

    builder = indexed_dataset.make_builder(str(prefix) + ".bin", impl="mmap", vocab_size=dict_size)
    for a in items:
        builder.add_item(torch.from_numpy(a))
    builder.finalize(str(prefix) + ".idx")
    with open(str(prefix) + ".txt", "w", encoding="utf-8") as f:
        f.writelines(t + "\n" for t in texts)
    return int(sum(len(a) for a in items))


def _split(n: int, cfg: DataConfig, key: str) -> np.ndarray:
    """Boolean mask of valid items, seeded by the corpus key so corpora are independent."""
    k = min(cfg.valid_size, int(n * cfg.valid_max_fraction))
    rng = np.random.default_rng([cfg.seed, int(sha256_text(key)[:8], 16)])
    mask = np.zeros(n, dtype=bool)
    if k > 0:
        mask[rng.choice(n, size=k, replace=False)] = True
    return mask


def _filter_len(n_pieces: int, cfg: DataConfig) -> Optional[str]:
    if n_pieces < cfg.min_len:
        return "too_short"
    if n_pieces > cfg.max_len:
        return "too_long"
    return None


def prepare_mono(lang: str, lines: list[str], enc: Encoder, cfg: DataConfig, dest: Path) -> dict:
    counts = {"input": len(lines), "empty": 0, "duplicate": 0, "too_short": 0, "too_long": 0}
    seen, kept = set(), []
    for ln in lines:
        c = clean_line(ln)
        if not c:
            counts["empty"] += 1
            continue
        if cfg.dedup:
            if c in seen:
                counts["duplicate"] += 1
                continue
            seen.add(c)
        kept.append(c)
    ids = enc.encode(kept)
    texts, items = [], []
    for c, a in zip(kept, ids):
        why = _filter_len(len(a) - 1, cfg)
        if why:
            counts[why] += 1
            continue
        texts.append(c)
        items.append(a)
    counts["kept"] = len(texts)
    valid = _split(len(texts), cfg, f"mono:{lang}")
    res = {"counts": counts, "sentences": {}, "tokens": {}}
    for split, mask in (("train", ~valid), ("valid", valid)):
        idx = np.flatnonzero(mask)
        res["sentences"][split] = len(idx)
        res["tokens"][split] = _write_dataset(dest / f"{split}.{lang}", [items[i] for i in idx],
                                              [texts[i] for i in idx], enc.dict_size)
    return res


def prepare_para(inp: ParaInput, src_lines: list[str], tgt_lines: list[str], enc: Encoder, cfg: DataConfig,
                 dest: Path) -> dict:
    counts = {"input": len(src_lines), "empty": 0, "duplicate": 0, "too_short": 0, "too_long": 0, "ratio": 0}
    seen, kept = set(), []
    for a, b in zip(src_lines, tgt_lines):
        ca, cb = clean_line(a), clean_line(b)
        if not ca or not cb:
            counts["empty"] += 1
            continue
        if cfg.dedup:
            if (ca, cb) in seen:
                counts["duplicate"] += 1
                continue
            seen.add((ca, cb))
        kept.append((ca, cb))
    sids = enc.encode([k[0] for k in kept])
    tids = enc.encode([k[1] for k in kept])
    rows = []
    for (ca, cb), sa, ta in zip(kept, sids, tids):
        ls, lt = len(sa) - 1, len(ta) - 1
        why = _filter_len(ls, cfg) or _filter_len(lt, cfg)
        if why:
            counts[why] += 1
            continue
        if max(ls, lt) > cfg.max_ratio * min(ls, lt):
            counts["ratio"] += 1
            continue
        rows.append((ca, cb, sa, ta))
    counts["kept"] = len(rows)
    valid = _split(len(rows), cfg, f"para:{inp.pair}")
    res = {"src": inp.src, "tgt": inp.tgt, "counts": counts, "sentences": {}, "tokens": {}}
    if cfg.align:  # one aligner run over the whole corpus (more text, better links), then split
        from xling.align import align_lines, write_pharaoh

        links = align_lines([r[0] for r in rows], [r[1] for r in rows], sym=cfg.align_sym)
    for split, mask in (("train", ~valid), ("valid", valid)):
        idx = np.flatnonzero(mask)
        res["sentences"][split] = len(idx)
        tok = 0
        for side, (ti, ii) in ((inp.src, (0, 2)), (inp.tgt, (1, 3))):
            tok += _write_dataset(dest / f"{split}.{inp.pair}.{side}", [rows[i][ii] for i in idx],
                                  [rows[i][ti] for i in idx], enc.dict_size)
        res["tokens"][split] = tok
        if cfg.align:
            write_pharaoh(dest / f"{split}.{inp.pair}.align", [links[i] for i in idx])
    return res


def _mono_files(lang: str) -> list[str]:
    return [f"{s}.{lang}.{e}" for s in SPLITS for e in ("bin", "idx", "txt")]


def _para_files(pair: str, src: str, tgt: str, align: bool) -> list[str]:
    files = [f"{s}.{pair}.{lg}.{e}" for s in SPLITS for lg in (src, tgt) for e in ("bin", "idx", "txt")]
    if align:
        files += [f"{s}.{pair}.align" for s in SPLITS]
    return files


@dataclass
class DataResult:
    out: Path
    manifest: dict
    done: list[str]
    skipped: list[str]


def prepare_data(cfg: DataConfig, progress: Optional[Callable[[str, str], None]] = None) -> DataResult:
    """Run ``prep-data``; corpora whose inputs and options did not change are skipped."""
    vocab = Path(cfg.vocab)
    out = Path(cfg.out)
    if not cfg.mono and not cfg.para:
        raise XlingError("nothing to prepare", fix="pass --mono LANG=PATH and/or --para SRC-TGT=SRC_PATH,TGT_PATH")
    if cfg.valid_size < 0 or not (0 <= cfg.valid_max_fraction < 1):
        raise XlingError("--valid-size must be >= 0", fix="use e.g. 1000")
    if cfg.min_len < 1 or cfg.max_len < cfg.min_len:
        raise XlingError(f"length limits {cfg.min_len}..{cfg.max_len} are empty", fix="use --min-len 1 --max-len 256")
    if cfg.max_ratio < 1:
        raise XlingError(f"--max-ratio {cfg.max_ratio} is below 1", fix="use e.g. 3.0")
    if not vocab.is_dir():
        raise XlingError("vocabulary directory does not exist", file=vocab, fix="run `xling prep-vocab --out DIR` first")
    for lang, _ in cfg.mono:
        check_lang(lang, what="--mono language")
    pairs_seen = set()
    for p in cfg.para:
        if p.pair in pairs_seen:
            raise XlingError(f"pair {p.pair} given twice", fix="give each --para pair once")
        pairs_seen.add(p.pair)
    enc = Encoder(vocab, cfg.num_threads)
    vocab_id = {"source": str(vocab), "spm_sha256": sha256_file(enc.spm_path),
                "dict_sha256": sha256_file(enc.dict_path), "dict_size": enc.dict_size}
    manifest_path = out / "manifest.json"
    if out.exists() and not out.is_dir():
        raise XlingError("output path exists and is not a directory", file=out, fix="choose another --out")
    if (out / "stats.json").exists() and not manifest_path.exists():
        raise XlingError("output directory holds a vocabulary (stats.json), not a dataset", file=out,
                         fix="choose another --out for the data")
    manifest = None
    if manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            manifest = None
        if manifest is None or manifest.get("kind") != "xling-data":
            raise XlingError("output directory holds a manifest.json that xling did not write", file=manifest_path,
                             fix="choose a new --out")
        if (manifest["vocab"]["spm_sha256"], manifest["vocab"]["dict_sha256"]) != (
                vocab_id["spm_sha256"], vocab_id["dict_sha256"]):
            if not cfg.force:
                raise XlingError(
                    "output directory holds data binarized with another vocabulary; mixing them would "
                    "give the model ids that mean different pieces", file=manifest_path,
                    fix="choose a new --out, or pass --force to rebuild everything with this vocabulary")
            manifest = None
    if manifest is None or cfg.force:
        manifest = {"kind": "xling-data", "mono": {}, "para": {}}
    manifest.update({"xling_version": __version__, "vocab": vocab_id, "options": cfg.options()})

    # Read and validate every input before writing anything.
    para_data = []
    for p in cfg.para:
        check_lang(p.src, what=f"--para {p.pair} source language")
        check_lang(p.tgt, what=f"--para {p.pair} target language")
        para_data.append((p, *_read_para(p)))
    mono_inputs: dict[str, list[tuple[str, list[str], dict]]] = {}
    for lang, path in cfg.mono:
        lines, digest = read_lines_hashed(path, f"--mono {lang}")
        mono_inputs.setdefault(lang, []).append((f"mono:{path}", lines, {"path": str(path), "sha256": digest}))
    if cfg.mono_from_para:
        for p, s, t, ins in para_data:
            mono_inputs.setdefault(p.src, []).append((f"para:{p.pair}:{p.src}", s, ins[0] | {"side": p.src}))
            mono_inputs.setdefault(p.tgt, []).append((f"para:{p.pair}:{p.tgt}", t, ins[-1] | {"side": p.tgt}))

    (out / "mono").mkdir(parents=True, exist_ok=True)
    (out / "para").mkdir(parents=True, exist_ok=True)
    for name, digest in (("dict.txt", vocab_id["dict_sha256"]), ("spm.model", vocab_id["spm_sha256"])):
        src = vocab / name
        if not (out / name).exists() or sha256_file(out / name) != digest:
            tmp = out / f".{name}.tmp"
            shutil.copyfile(src, tmp)
            os.replace(tmp, out / name)

    opts = json.dumps({**cfg.options(), "vocab": vocab_id["spm_sha256"]}, sort_keys=True)
    done, skipped = [], []

    def run_corpus(section: str, key: str, files: list[str], fp: str, make: Callable[[Path], dict], extra: dict):
        entry = manifest[section].get(key)
        dest = out / section
        if entry and entry.get("fingerprint") == fp and all((dest / f).exists() for f in files):
            skipped.append(f"{section}:{key}")
            if progress:
                progress(section, key)
            return
        work = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=dest))
        try:
            res = make(work)
            for f in files:
                os.replace(work / f, dest / f)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        manifest[section][key] = {"fingerprint": fp, **extra, **res}
        write_json_atomic(manifest_path, _finish(manifest))
        done.append(f"{section}:{key}")
        if progress:
            progress(section, key)

    for p, s, t, ins in para_data:
        fp = sha256_text(opts + json.dumps([i["sha256"] for i in ins]) + f"|align={cfg.align}:{cfg.align_sym}")
        run_corpus("para", p.pair, _para_files(p.pair, p.src, p.tgt, cfg.align), fp,
                   lambda work, p=p, s=s, t=t: prepare_para(p, s, t, enc, cfg, work),
                   {"inputs": ins, "aligned": cfg.align})
    for lang, parts in mono_inputs.items():
        lines = [ln for _, ls, _ in parts for ln in ls]
        ins = [meta for _, _, meta in parts]
        fp = sha256_text(opts + json.dumps([(k, m["sha256"]) for k, _, m in parts]))
        run_corpus("mono", lang, _mono_files(lang), fp,
                   lambda work, lang=lang, lines=lines: prepare_mono(lang, lines, enc, cfg, work),
                   {"inputs": ins})
    write_json_atomic(manifest_path, _finish(manifest))
    return DataResult(out, manifest, done, skipped)


def _finish(manifest: dict) -> dict:
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
