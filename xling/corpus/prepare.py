"""``xling prep-data``: every corpus streamed, deduplicated, filtered, split and binarized.

Per corpus (one language of monolingual text, or one language pair): clean (:mod:`.clean`), drop
empty lines and exact duplicates (pairs as pairs), encode with the shared vocabulary
(:mod:`.textenc`), drop by length in pieces (and length ratio for pairs), draw a seeded valid split,
binarize (:mod:`.binarize`). Memory is bounded by ``chunk_lines`` and the worker count, not by the
corpus; a corpus whose inputs and options did not change is skipped, and an interrupted corpus
resumes from its last checkpoint (:mod:`.stream`).
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from itertools import compress, islice
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from xling import __version__
from xling.corpus.clean import hash_lines
from xling.corpus.config import DataConfig
from xling.corpus.manifest import finish
from xling.corpus.reader import InputFile, Source, scan_file
from xling.corpus.split import assemble, decide, split_ranks, valid_ranks
from xling.corpus.stream import Workers, load_state, release_free_heap, run_stream
from xling.corpus.textenc import TextEncoder
from xling.errors import XlingError
from xling.io import sha256_file, sha256_text, write_json_atomic
from xling.outputs import FULL_DISK, disk_full

Progress = Callable[[str, str, int, int], None]


@dataclass
class Corpus:
    section: str  # "mono" or "para"
    key: str  # language or pair
    names: list[str]  # file name stems per side: ["fr"] or ["en-fr.en", "en-fr.fr"]
    sources: list[Source]
    inputs: list[dict]
    fingerprint: str = ""
    extra: dict = field(default_factory=dict)


@dataclass
class DataResult:
    out: Path
    manifest: dict
    done: list[str]
    skipped: list[str]
    resumed: list[str] = field(default_factory=list)


def _scan_inputs(cfg: DataConfig) -> tuple[list[Corpus], dict[str, list[Corpus]]]:
    """Validate every input (one pass each) before anything is written."""
    paras = []
    for p in cfg.para:
        if p.tgt_path is None:
            f = scan_file(p.src_path, f"--para {p.pair}", bars=True)
            files, kind = [f], "bars"
        else:
            fs = scan_file(p.src_path, f"--para {p.pair} ({p.src} side)")
            ft = scan_file(p.tgt_path, f"--para {p.pair} ({p.tgt} side)")
            if fs.lines != ft.lines:
                raise XlingError(
                    f"parallel files have different line counts: {p.src_path} has {fs.lines} lines, "
                    f"{p.tgt_path} has {ft.lines}", file=p.tgt_path,
                    fix="line i of one side must be the translation of line i of the other")
            files, kind = [fs, ft], "pair"
        ins = [{"path": f.path, "sha256": f.sha256} for f in files]
        paras.append(Corpus("para", p.pair, [f"{p.pair}.{p.src}", f"{p.pair}.{p.tgt}"], [Source(kind, files)], ins,
                            extra={"src": p.src, "tgt": p.tgt, "aligned": cfg.align}))
    monos: dict[str, list] = {}
    for lang, path in cfg.mono:
        f = scan_file(path, f"--mono {lang}")
        monos.setdefault(lang, []).append((f"mono:{path}", Source("text", [f]), {"path": f.path, "sha256": f.sha256}))
    if cfg.mono_from_para:
        for p, c in zip(cfg.para, paras):
            files = c.sources[0].files
            for j, lang in enumerate((p.src, p.tgt)):
                src = Source("text", [files[j]]) if len(files) == 2 else Source(f"side{j}", files)
                monos.setdefault(lang, []).append((f"para:{p.pair}:{lang}", src, c.inputs[-1 if j else 0] | {"side": lang}))
    mono = {lang: Corpus("mono", lang, [lang], [s for _, s, _ in parts], [m for _, _, m in parts],
                         extra={"_keys": [(k, m["sha256"]) for k, _, m in parts]})
            for lang, parts in monos.items()}
    return paras, mono


def _outputs(c: Corpus, shards: int, part: Optional[tuple[int, int]]) -> dict:
    """{(split, shard): [relative prefix per side]}: ``shard`` None for valid and unsharded train."""
    def pref(split, base):
        return [f"{base}{c.section}/{split}.{n}" for n in c.names]
    if part is not None:
        return {("train", part[0]): pref("train", f"shard{part[0]}/"),
                ("valid", None): pref("valid", f"parts/part{part[0]}/")}
    if shards:
        return {**{("train", k): pref("train", f"shard{k}/") for k in range(shards)}, ("valid", None): pref("valid", "")}
    return {("train", None): pref("train", ""), ("valid", None): pref("valid", "")}


def _align_path(prefixes: list) -> str:
    """``{split}.{pair}.align`` beside the pair's two side prefixes ``{split}.{pair}.{lang}``."""
    return str(prefixes[0]).rsplit(".", 1)[0] + ".align"


def _work_name(section: str, key: str, part: Optional[tuple[int, int]]) -> str:
    return f".work-{section}-{key}" + (f".part{part[0]}" if part else "")


def _clean_leftovers(out: Path, keep: set[str], part: Optional[tuple[int, int]]) -> None:
    """Remove what a killed run of xling left behind: work directories of corpora this run does not
    build (its own are resumed), and hidden temporary files and directories in the data folders. A
    ``--shard K/N`` run touches only its own part (other machines may be writing theirs)."""
    for p in out.glob(".work-*"):
        if p.name not in keep and (p.name.endswith(f".part{part[0]}") if part else ".part" not in p.name):
            shutil.rmtree(p, ignore_errors=True)
    temp = re.compile(r"^\.(.+\.tmp|.+\.[a-z0-9_]{8})$")  # atomic_path's and mkdtemp's names
    dirs = [*out.glob(f"shard{part[0]}/*"), *out.glob(f"parts/part{part[0]}/*")] if part else \
        [out / "mono", out / "para", *out.glob("shard*/*")]
    for d in dirs:
        if d.is_dir():
            for p in d.iterdir():
                if temp.match(p.name):
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    if not part:
        for p in out.glob(".*.tmp"):
            p.unlink(missing_ok=True)


def _check_out(cfg: DataConfig, out: Path, vocab_id: dict, manifest_path: Path) -> dict:
    if out.exists() and not out.is_dir():
        raise XlingError("output path exists and is not a directory", file=out, fix="choose another --out")
    if (out / "stats.json").exists() and not (out / "manifest.json").exists():
        raise XlingError("output directory holds a vocabulary (stats.json), not a dataset", file=out,
                         fix="choose another --out for the data")
    for other in sorted(out.glob("parts/part*.json")) if cfg.shard else []:  # the other machines' parts
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            theirs = json.loads(other.read_text(encoding="utf-8"))["vocab"]["spm_sha256"]
            if other != manifest_path and theirs != vocab_id["spm_sha256"]:
                raise XlingError(f"{other.name} in this folder was prepared with another vocabulary; --merge would "
                                 "refuse the parts, and this part would replace the folder's spm.model and dict.txt",
                                 file=other, fix="prepare every part with the same --vocab, or choose another --out")
    manifest = None
    if manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            manifest = None
        if manifest is None or manifest.get("kind") not in ("xling-data", "xling-data-part"):
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
        old = manifest if manifest_path.exists() else None
        if old is None and manifest_path.exists():  # another vocabulary's manifest, dropped above
            with contextlib.suppress(OSError, ValueError):
                old = json.loads(manifest_path.read_text(encoding="utf-8"))
        manifest = {"kind": "xling-data-part" if cfg.shard else "xling-data", "mono": {}, "para": {},
                    "_replaced": _listed_files(old)}
    return manifest


def _listed_files(manifest: Optional[dict]) -> list[str]:
    """The data files a manifest lists (xling wrote them): its corpora's binaries and alignments."""
    if not isinstance(manifest, dict):
        return []
    return sorted({f for sec in ("mono", "para") for e in (manifest.get(sec) or {}).values()
                   if isinstance(e, dict) for f in e.get("files", []) if isinstance(f, str)})


def _remove_stale(out: Path, manifest: dict) -> None:
    """After a rebuild (``--force``, a new vocabulary): remove the files of the replaced manifest that this run
    no longer writes (a language dropped from the command, encoded with the old vocabulary)."""
    keep = set(_listed_files(manifest))
    root = out.resolve()
    for f in manifest.pop("_replaced", []):
        p = (out / f)
        if f not in keep and root in p.resolve().parents and (p.is_file() or p.is_symlink()):
            p.unlink()


def _copy_if_changed(src: Path, dst: Path, digest: str) -> None:
    if not dst.exists() or sha256_file(dst) != digest:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)


class _Run:
    """One ``prepare_data`` call: the corpora it builds share the workers, the manifest and the layout."""

    def __init__(self, cfg: DataConfig, out: Path, enc: TextEncoder, manifest: dict, manifest_path: Path,
                 shards: int, progress: Optional[Progress]):
        self.cfg, self.out, self.enc, self.manifest, self.manifest_path = cfg, out, enc, manifest, manifest_path
        self.shards, self.progress = shards, progress
        self.workers: Optional[Workers] = None
        self.done, self.skipped, self.resumed = [], [], []

    def corpus(self, c: Corpus, forced: Optional[np.ndarray] = None) -> None:
        """Build one corpus; a full disk removes its work directory (resume state it could not complete) and
        is reported naming the data folder the corpus was written to."""
        try:
            self._corpus(c, forced)
        except OSError as e:
            if e.errno not in FULL_DISK and not disk_full(self.out):  # (numpy's short writes carry no errno)
                raise
            shutil.rmtree(self.out / _work_name(c.section, c.key, self.cfg.shard), ignore_errors=True)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.out / c.section)) from None

    def _corpus(self, c: Corpus, forced: Optional[np.ndarray] = None) -> None:
        cfg, out, section = self.cfg, self.out, c.section
        outputs = _outputs(c, self.shards, cfg.shard)
        files = [f for prefs in outputs.values() for p in prefs for f in (f"{p}.bin", f"{p}.idx", f"{p}.txt")]
        if cfg.align and section == "para":
            files += [_align_path(p) for p in outputs.values()]
        if self.shards and not cfg.shard:  # the valid split is copied into every shard
            files += [f"shard{k}/{f}" for k in range(self.shards) for f in files if not f.startswith("shard")]
        entry = self.manifest[section].get(c.key)
        total = sum(s.n_bytes for s in c.sources)
        if entry and entry.get("fingerprint") == c.fingerprint and all((out / f).exists() for f in files):
            self.skipped.append(f"{section}:{c.key}")
            if self.progress:
                self.progress(section, c.key, total, total)
            return
        work = out / _work_name(section, c.key, cfg.shard)
        if load_state(work, c.fingerprint) is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            self.resumed.append(f"{section}:{c.key}")
        if self.workers is None:
            self.workers = Workers(str(Path(cfg.vocab)), cfg.n_workers(), cfg.num_threads)
        n_sides = len(c.names)
        report = (lambda d, t: self.progress(section, c.key, d, t)) if self.progress else None
        st = run_stream(work, c.fingerprint, c.sources, n_sides, self.workers, cfg.chunk_lines, forced, report)
        release_free_heap()  # each phase starts from the same heap at any corpus size
        counts, n_kept, forced_ranks = decide(work, n_sides, st["items"], cfg, forced is not None)
        release_free_heap()
        counts = {**st["counts"], **counts, "kept": n_kept}
        key = f"{section}:{c.key}"
        size = None
        if cfg.shard:
            k, n = cfg.shard
            size, key = cfg.valid_size * (k + 1) // n - cfg.valid_size * k // n, f"{key}#part{k}of{n}"
        valid = valid_ranks(n_kept, forced_ranks, cfg, key, size)
        stage = work / "out"
        shutil.rmtree(stage, ignore_errors=True)
        res = assemble(work, n_sides, st["items"], n_kept, valid, self.enc.dtype,
                       {k: [stage / p for p in v] for k, v in outputs.items()})
        if cfg.align and section == "para":
            self._align(work, n_kept, valid, outputs, stage)
        if self.shards and not cfg.shard:
            for f in [f for f in files if not f.startswith("shard")]:
                for k in range(self.shards):
                    (stage / f"shard{k}" / f).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(stage / f, stage / f"shard{k}" / f)
        for f in files:
            (out / f).parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / f, out / f)
        for f in set((entry or {}).get("files", [])) - set(files):  # files of an older layout of this corpus
            (out / f).unlink(missing_ok=True)
        train = [v for k, v in res.items() if k[0] == "train"]
        result = {"counts": counts, "sentences": {"train": sum(v[0] for v in train), "valid": res[("valid", None)][0]},
                  "tokens": {"train": sum(v[1] for v in train), "valid": res[("valid", None)][1]}}
        if self.shards and not cfg.shard:
            result["shards"] = [res[("train", k)][0] for k in range(self.shards)]
        extra = {k: v for k, v in c.extra.items() if not k.startswith("_")}
        self.manifest[section][c.key] = {"fingerprint": c.fingerprint, **extra, "inputs": c.inputs, **result,
                                         "files": files}
        write_json_atomic(self.manifest_path, finish(self.manifest))
        shutil.rmtree(work, ignore_errors=True)
        self.done.append(f"{section}:{c.key}")

    def _align(self, work: Path, n_kept: int, valid: np.ndarray, outputs: dict, stage: Path) -> None:
        """Word-align all kept pairs, streamed in blocks through the aligner (eflomal holds one run of at
        most ``RUN_PAIRS`` pairs), each pair's links appended to the ``.align`` file of its output."""
        from xling.align import Aligner
        from xling.align.links import format_pharaoh

        keys = list(outputs)
        dest = np.zeros(n_kept, dtype=np.uint16)  # output of each kept pair (2 bytes a pair)
        ranks = split_ranks(n_kept, valid, sorted((k[1] for k in keys if k[0] == "train"), key=lambda x: x or 0))
        for n, key in enumerate(keys):
            dest[ranks[key]] = n
        del ranks

        def blocks():
            done = 0
            with open(work / "side0.txt", encoding="utf-8") as f0, open(work / "side1.txt", encoding="utf-8") as f1, \
                    open(work / "keep.u8", "rb") as fk:
                while True:
                    a = list(islice(f0, 1 << 16))
                    if not a:
                        return
                    b = list(islice(f1, len(a)))
                    keep = np.fromfile(fk, dtype=np.uint8, count=len(a)).astype(bool)
                    done += len(a)
                    yield [(x.rstrip("\n"), y.rstrip("\n")) for x, y in compress(zip(a, b), keep)], done

        files = [open(stage / _align_path(outputs[k]), "w", encoding="utf-8") for k in keys]
        try:
            base = 0
            aligner = Aligner(sym=self.cfg.align_sym, seed=self.cfg.seed)
            for n, sid, i, j in aligner.align_blocks(blocks()):
                lines = format_pharaoh(n, sid, i, j).split("\n")[:-1]
                for k, ln in zip(dest[base:base + n].tolist(), lines):
                    files[k].write(ln + "\n")
                base += n
        finally:
            for f in files:
                f.close()

    def close(self) -> None:
        if self.workers is not None:
            self.workers.close()


def _forced_hashes(out: Path, manifest: dict, lang: str) -> np.ndarray:
    """Hashes of the valid sentences in ``lang`` of every prepared pair (``--mono-from-para``)."""
    lines = []
    for pair, e in manifest["para"].items():
        for f in e.get("files", []):
            if f.endswith(f"para/valid.{pair}.{lang}.txt") and not f.startswith("shard"):
                lines += (out / f).read_text(encoding="utf-8").splitlines()
    return np.unique(hash_lines(lines))


def prepare_data(cfg: DataConfig, progress: Optional[Progress] = None) -> DataResult:
    """Run ``prep-data``. ``progress(section, key, done_bytes, total_bytes)`` is called as corpora advance."""
    cfg.validate()
    vocab, out = Path(cfg.vocab), Path(cfg.out)
    if not vocab.is_dir():
        raise XlingError("vocabulary directory does not exist", file=vocab, fix="run `xling prep-vocab --out DIR` first")
    enc = TextEncoder(vocab, cfg.num_threads)
    vocab_id = {"source": str(vocab), "spm_sha256": sha256_file(enc.spm_path),
                "dict_sha256": sha256_file(enc.dict_path), "dict_size": enc.dict_size}
    manifest_path = out / (f"parts/part{cfg.shard[0]}.json" if cfg.shard else "manifest.json")
    manifest = _check_out(cfg, out, vocab_id, manifest_path)
    manifest.update({"xling_version": __version__, "vocab": vocab_id, "options": cfg.options()})
    paras, monos = _scan_inputs(cfg)  # every input validated before anything is written
    shards = 0
    if cfg.shard_size:
        largest = max([sum(s.n_lines for s in c.sources) for c in paras + list(monos.values())])
        shards = max(1, math.ceil(largest / cfg.shard_size))
    if cfg.shard:
        k, n = cfg.shard
        for c in paras + list(monos.values()):
            for s in c.sources:
                s.first, s.last = k * s.files[0].lines // n, (k + 1) * s.files[0].lines // n
        manifest["part"] = {"index": k, "of": n}
    manifest["shards"] = shards
    opts = json.dumps({**cfg.options(), "vocab": vocab_id["spm_sha256"], "shards": shards, "part": cfg.shard},
                      sort_keys=True)
    for c in paras:
        c.fingerprint = sha256_text(opts + json.dumps([i["sha256"] for i in c.inputs])
                                    + f"|align={cfg.align}:{cfg.align_sym}")
    out.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(out, {_work_name("para", c.key, cfg.shard) for c in paras}
                     | {_work_name("mono", lang, cfg.shard) for lang in monos}, cfg.shard)
    for name, digest in (("dict.txt", vocab_id["dict_sha256"]), ("spm.model", vocab_id["spm_sha256"])):
        _copy_if_changed(vocab / name, out / name, digest)
    run = _Run(cfg, out, enc, manifest, manifest_path, shards, progress)
    try:
        for c in paras:
            run.corpus(c)
        for lang, c in monos.items():
            forced = _forced_hashes(out, manifest, lang) if cfg.mono_from_para else None
            pair_fps = [manifest["para"][p.pair]["fingerprint"] for p in cfg.para if lang in (p.src, p.tgt)] \
                if cfg.mono_from_para else []
            c.fingerprint = sha256_text(opts + json.dumps(c.extra["_keys"]) + json.dumps(pair_fps))
            run.corpus(c, forced if forced is not None and len(forced) else None)
    finally:
        run.close()
    _remove_stale(out, manifest)
    finish(manifest)
    write_json_atomic(manifest_path, manifest)
    if shards and not cfg.shard:
        for k in range(shards):
            for name, digest in (("dict.txt", vocab_id["dict_sha256"]), ("spm.model", vocab_id["spm_sha256"])):
                _copy_if_changed(out / name, out / f"shard{k}" / name, digest)
            write_json_atomic(out / f"shard{k}" / "manifest.json", manifest)
    return DataResult(out, manifest, run.done, run.skipped, run.resumed)
