"""One shared SentencePiece vocabulary over many languages (``xling prep-vocab``).

Languages are sampled with exponentially smoothed probabilities, as in XLM / XLM-R:
``q_l = p_l**alpha / sum_k p_k**alpha`` with ``p_l = n_l / sum_k n_k`` over sentences (non-blank lines).
A budget of ``min(max_sentences, sum n_l)`` sentences is spread over the languages by ``q``; a
language asked for more sentences than it has repeats all of them (sampling with replacement), as
XLM's upsampling does. A held-out slice per language never enters training and is used to report
tokenizer quality (pieces per word, unknown and byte-fallback rates).

SentencePiece does the training; what is written here by hand is only the sampling, the fairseq
dictionary (so that ``fairseq id = spm id + 1``, the XLM-R convention) and the statistics.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from xling import __version__
from xling.errors import XlingError
from xling.outputs import disk_full, writing
from xling.io import atomic_path, check_file, iter_line_blocks, sha256_file, sha256_text, write_json_atomic
from xling.langs import check_lang

SPM_SPECIALS = 3  # <unk>=0, <s>=1, </s>=2; fairseq id = spm id + 1 from id 3 on


@dataclass
class VocabConfig:
    inputs: list[tuple[str, str]]  # (lang, path)
    out: str
    vocab_size: int = 250_000
    alpha: float = 0.3
    model_type: str = "unigram"
    character_coverage: float = 0.9995
    byte_fallback: bool = True
    max_sentences: int = 10_000_000
    seed: int = 1
    heldout_fraction: float = 0.02
    heldout_max: int = 1000
    num_threads: int = 2
    force: bool = False

    def validate(self) -> None:
        if not self.inputs:
            raise XlingError("no --input given", fix="pass --input LANG=PATH once per language")
        seen = set()
        for lang, path in self.inputs:
            check_lang(lang, what="--input language")
            if lang in seen:
                raise XlingError(f"language {lang!r} given twice in --input",
                                 fix="concatenate the files of one language, or give each language once")
            seen.add(lang)
        if not (0.0 < self.alpha <= 1.0):
            raise XlingError(f"--alpha {self.alpha} is outside (0, 1]",
                             fix="use a value such as 0.3 (XLM-R) or 0.5 (XLM); 1.0 means no smoothing")
        if self.model_type not in ("unigram", "bpe"):
            raise XlingError(f"--model-type {self.model_type!r} is not unigram or bpe", fix="use unigram or bpe")
        if self.vocab_size < 10:
            raise XlingError(f"--vocab-size {self.vocab_size} is too small", fix="use at least a few hundred")
        if not (0.0 < self.character_coverage <= 1.0):
            raise XlingError(f"--character-coverage {self.character_coverage} is outside (0, 1]",
                             fix="use 0.9995 for scripts with large alphabets, 1.0 for small ones")
        if self.max_sentences < 1:
            raise XlingError("--max-sentences must be positive", fix="use e.g. 10000000")
        if not (0.0 <= self.heldout_fraction < 0.5):
            raise XlingError("--heldout-fraction must be in [0, 0.5)", fix="use e.g. 0.02")

    def fingerprint(self, input_hashes: dict[str, str]) -> str:
        d = asdict(self)
        for k in ("out", "num_threads", "force", "inputs"):
            d.pop(k)
        d["inputs"] = sorted((lang, input_hashes[lang]) for lang, _ in self.inputs)
        return sha256_text(json.dumps(d, sort_keys=True))


def sampling_probs(counts: dict[str, int], alpha: float) -> dict[str, float]:
    """XLM's exponentially smoothed language probabilities ``q_l ∝ p_l**alpha``."""
    total = sum(counts.values())
    p = {k: v / total for k, v in counts.items()}
    z = sum(v ** alpha for v in p.values() if v > 0)
    return {k: (v ** alpha / z if v > 0 else 0.0) for k, v in p.items()}


def _iter_sentences(path: Path, hasher=None):
    """Blocks of the file's non-blank lines, stripped (``hasher`` is updated with every byte read)."""
    for _, lines in iter_line_blocks(path, hasher=hasher):
        yield [s for s in (ln.strip() for ln in lines) if s]


def _scan(path: Path, lang: str) -> tuple[int, str]:
    """Count non-blank lines, validating UTF-8 and hashing the file, in one read of bounded memory;
    return (count, sha256). The sampling pass then reads the file once more, knowing every count."""
    check_file(path, f"--input {lang}")
    h = hashlib.sha256()
    n = sum(len(block) for block in _iter_sentences(path, h))
    if n == 0:
        raise XlingError("input holds only blank lines", file=path, fix="pass a file with text in it")
    return n, h.hexdigest()


def _plan(n: int, want: int, heldout: int, rng: np.random.Generator) -> tuple[np.ndarray, int, np.ndarray]:
    """Sorted held-out sentence indices, copies every training sentence gets, sorted indices of the
    sentences that get one more copy. Memory grows with the sample, not with ``n`` (the draws are those
    of ``rng.choice`` over the ``n - heldout`` training sentences)."""
    held = np.sort(rng.choice(n, size=heldout, replace=False)) if heldout else np.zeros(0, np.int64)
    full, rest = divmod(want, n - len(held))
    extra = np.sort(rng.choice(n - len(held), size=rest, replace=False)) if rest else np.zeros(0, np.int64)
    # pool index -> sentence index: skip the held-out sentences before it
    extra = extra + np.searchsorted(held - np.arange(len(held)), extra, side="right")
    return held, full, extra


_TOO_BIG = re.compile(r"Vocabulary size (?:is )?too high \((\d+)\)\. Please set it to a value <= (\d+)")


_TOO_SMALL = re.compile(r"smaller than required_chars\. (\d+) vs (\d+)")


def _train_spm(cfg: VocabConfig, sample_file: Path, prefix: Path, n_lines: int) -> None:
    import sentencepiece as spm

    try:
        spm.SentencePieceTrainer.train(**spm_train_kwargs(cfg, sample_file, prefix, n_lines))
    except RuntimeError as e:
        msg = str(e)
        m = _TOO_BIG.search(msg)
        if m:
            raise XlingError(
                f"--vocab-size {cfg.vocab_size} is larger than the sampled text supports "
                f"(at most {m.group(2)} pieces for this text and model type)",
                fix=f"use --vocab-size {m.group(2)} or less, or give more text") from None
        m = _TOO_SMALL.search(msg)
        if m:
            raise XlingError(
                f"--vocab-size {cfg.vocab_size} is smaller than the {m.group(2)} pieces needed for the characters "
                f"that --character-coverage {cfg.character_coverage} keeps",
                fix=f"use --vocab-size above {m.group(2)}, or lower --character-coverage (byte fallback covers "
                    "the rest)") from None
        if "input_sentence_size() > 100" in msg:
            raise XlingError(f"SentencePiece needs more than 100 sampled sentences; the inputs gave {n_lines}",
                             fix="give more text (or raise --max-sentences)") from None
        if disk_full(prefix):  # SentencePiece reports a failed write as "INTERNAL"
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from None
        raise XlingError(f"SentencePiece training failed: {msg.strip().splitlines()[-1] if msg.strip() else msg}",
                         fix="check the inputs and options") from None
    _drop_temp_names(prefix.with_name(prefix.name + ".model"))


def _drop_temp_names(model: Path) -> None:
    """SentencePiece records its input file and model prefix, which lie in a temporary folder of random name:
    name them by their file names only, so that the same inputs and options give the same model bytes."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    m = pb.ModelProto()
    try:
        m.ParseFromString(model.read_bytes())
    except Exception:  # a truncated model: SentencePiece does not report failed writes
        if disk_full(model):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from None
        raise XlingError("SentencePiece wrote an unreadable model", file=model, fix="re-run; report it if it recurs")
    if disk_full(model, margin=16384):  # its other files may have been cut short without an error
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    names = [Path(x).name for x in m.trainer_spec.input]
    m.trainer_spec.ClearField("input")
    m.trainer_spec.input.extend(names)
    m.trainer_spec.model_prefix = Path(m.trainer_spec.model_prefix).name
    model.write_bytes(m.SerializeToString())


def spm_train_kwargs(cfg: VocabConfig, sample_file: Path, prefix: Path, n_lines: int) -> dict:
    """The SentencePiece trainer arguments xling uses (the benchmark calls the trainer with these)."""
    return dict(
        input=str(sample_file), model_prefix=str(prefix), vocab_size=cfg.vocab_size,
        model_type=cfg.model_type, character_coverage=cfg.character_coverage,
        byte_fallback=cfg.byte_fallback, input_sentence_size=n_lines, shuffle_input_sentence=True,
        seed_sentencepiece_size=1_000_000, num_threads=cfg.num_threads, unk_id=0, bos_id=1, eos_id=2,
        pad_id=-1, hard_vocab_limit=True,
        minloglevel=2,
    )


def _quality(sp, sentences: list[str]) -> dict:
    if not sentences:
        return {"sentences": 0, "pieces_per_word": None, "chars_per_piece": None,
                "unk_rate": None, "byte_fallback_rate": None}
    ids = sp.encode(sentences)
    n_pieces = sum(len(x) for x in ids)
    n_words = sum(len(s.split()) for s in sentences)
    n_chars = sum(len(s.replace(" ", "")) for s in sentences)
    unk = sp.unk_id()
    n_unk = sum(1 for x in ids for t in x if t == unk)
    n_byte = sum(1 for x in ids for t in x if sp.is_byte(t))
    return {"sentences": len(sentences),
            "pieces_per_word": round(n_pieces / max(n_words, 1), 4),
            "chars_per_piece": round(n_chars / max(n_pieces, 1), 4),
            "unk_rate": round(n_unk / max(n_pieces, 1), 6),
            "byte_fallback_rate": round(n_byte / max(n_pieces, 1), 6)}


def write_fairseq_dict(sp, counts: Counter, path: Path) -> None:
    """fairseq dictionary for an spm model: every piece from id 3 on, in spm order, with its count."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for i in range(SPM_SPECIALS, sp.get_piece_size()):
            f.write(f"{sp.id_to_piece(i)} {counts.get(i, 0)}\n")


def check_dict_matches_spm(dict_path: Path, spm_path: Path) -> int:
    """Raise if ``dict.txt`` is not the fairseq view of ``spm.model``; return the dict's size."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_path))
    pieces = []
    with open(dict_path, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            tok = line.rstrip("\n").rsplit(" ", 1)[0]
            pieces.append(tok)
    expect = [sp.id_to_piece(i) for i in range(SPM_SPECIALS, sp.get_piece_size())]
    if pieces != expect:
        bad = next((i for i, (a, b) in enumerate(zip(pieces, expect)) if a != b), min(len(pieces), len(expect)))
        raise XlingError(
            f"dictionary does not match the SentencePiece model {spm_path} "
            f"({len(pieces)} vs {len(expect)} pieces; first difference at dict line {bad + 1})",
            file=dict_path, line=bad + 1, fix="regenerate both with `xling prep-vocab`")
    return len(pieces) + 4


@dataclass
class VocabResult:
    out: Path
    skipped: bool
    stats: dict = field(default_factory=dict)


def sample_corpus(cfg: VocabConfig, sample_file: Path, progress: Optional[Callable] = None) -> dict:
    """Scan inputs, sample sentences by smoothed language probabilities into ``sample_file``.

    Returns the per-language statistics (without tokenizer quality) and the held-out sentences.
    """
    counts, hashes = {}, {}
    for lang, path in cfg.inputs:
        counts[lang], hashes[lang] = _scan(Path(path), lang)
        if progress:
            progress("scan", lang)
    probs = sampling_probs(counts, cfg.alpha)
    total = sum(counts.values())
    heldout = {lang: min(cfg.heldout_max, int(math.floor(n * cfg.heldout_fraction))) if n > 1 else 0
               for lang, n in counts.items()}
    budget = min(cfg.max_sentences, total - sum(heldout.values()))
    want = {lang: int(round(probs[lang] * budget)) for lang in counts}
    rng = np.random.default_rng(cfg.seed)
    langs = {}
    n_lines = 0
    with open(sample_file, "w", encoding="utf-8") as out:
        for lang, path in cfg.inputs:
            held, full, extra = _plan(counts[lang], want[lang], heldout[lang], rng)
            held_sents, i0 = [], 0
            for block in _iter_sentences(Path(path)):
                idx = np.arange(i0, i0 + len(block))
                i0 += len(block)
                is_held = np.isin(idx, held)
                copies = np.where(is_held, 0, full + np.isin(idx, extra))
                held_sents += [block[i] for i in np.flatnonzero(is_held)]
                out.writelines((block[i] + "\n") * int(k) for i, k in zip(np.flatnonzero(copies), copies[copies > 0]))
            sampled = full * (counts[lang] - len(held)) + len(extra)
            n_lines += sampled
            langs[lang] = {"path": str(path), "sha256": hashes[lang], "sentences": counts[lang],
                           "p": counts[lang] / total, "q": probs[lang], "sampled": int(sampled),
                           "unique_sampled": int(counts[lang] - len(held) if full else len(extra)),
                           "heldout": int(len(held)),
                           "_heldout_sents": held_sents}
            if progress:
                progress("sample", lang)
    return {"langs": langs, "hashes": hashes, "lines": n_lines}


def build_vocab(cfg: VocabConfig, progress: Optional[Callable] = None) -> VocabResult:
    """Train the shared vocabulary; skip when ``cfg.out`` already holds this exact run."""
    import sentencepiece as spm

    cfg.validate()
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise XlingError("output path exists and is not a directory", file=out, fix="choose another --out")
    stats_path = out / "stats.json"
    input_hashes = {}
    for lang, path in cfg.inputs:
        check_file(path, f"--input {lang}")
    if (out / "manifest.json").exists():
        raise XlingError("output directory holds a `prep-data` dataset, not a vocabulary", file=out,
                         fix="choose another --out for the vocabulary")
    prior = None
    if stats_path.exists():
        try:
            prior = json.loads(stats_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            prior = None
        if prior is not None:
            input_hashes = {lang: sha256_file(path) for lang, path in cfg.inputs}
            fp = cfg.fingerprint(input_hashes)
            if prior.get("fingerprint") == fp and all((out / f).exists() for f in ("spm.model", "dict.txt")):
                return VocabResult(out, True, prior)
            if not cfg.force:
                raise XlingError(
                    "output directory holds another run's vocabulary (different inputs or options); "
                    "its spm.model and dict.txt would be replaced and any data binarized with them "
                    "would no longer match", file=stats_path,
                    fix="choose a new --out, or pass --force to overwrite")
    theirs = [n for n in ("spm.model", "spm.vocab", "dict.txt") if (out / n).exists()]
    if prior is None and theirs and not cfg.force:  # no stats.json of ours: these are someone else's files
        raise XlingError(f"output directory holds {', '.join(theirs)} that `xling prep-vocab` did not write "
                         "(no stats.json); they would be overwritten", file=out / theirs[0],
                         fix="choose a new --out, or pass --force to overwrite them")
    made = not out.exists()  # removed again when this run fails: a failed run leaves no empty --out
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".prep-vocab.", dir=out))
    ok = False
    try:
        sample_file = work / "sample.txt"
        with writing(out):
            sampled = sample_corpus(cfg, sample_file, progress)
        fp = cfg.fingerprint(sampled["hashes"])
        with writing(out / "spm.model"):
            _train_spm(cfg, sample_file, work / "spm", sampled["lines"])
        if progress:
            progress("train", None)
        sp = spm.SentencePieceProcessor(model_file=str(work / "spm.model"))
        counts: Counter = Counter()
        with open(sample_file, encoding="utf-8") as f:
            batch = []
            for line in f:
                batch.append(line.rstrip("\n"))
                if len(batch) == 50_000:
                    for ids in sp.encode(batch, num_threads=cfg.num_threads):
                        counts.update(ids)
                    batch = []
            if batch:
                for ids in sp.encode(batch, num_threads=cfg.num_threads):
                    counts.update(ids)
        write_fairseq_dict(sp, counts, work / "dict.txt")
        langs = {}
        for lang, st in sampled["langs"].items():
            held = st.pop("_heldout_sents")
            st["quality"] = _quality(sp, held)
            langs[lang] = st
        stats = {
            "kind": "xling-vocab", "xling_version": __version__, "fingerprint": fp,
            "options": {k: v for k, v in asdict(cfg).items() if k not in ("inputs", "out", "force", "num_threads")},
            "vocab": {"spm_pieces": sp.get_piece_size(), "dict_size": sp.get_piece_size() - SPM_SPECIALS + 4,
                      "sampled_lines": sampled["lines"]},
            "langs": langs,
        }
        stats_path.unlink(missing_ok=True)  # the completion marker goes last
        for name in ("spm.model", "spm.vocab", "dict.txt"):
            shutil.move(str(work / name), str(out / name))
        write_json_atomic(stats_path, stats)
        ok = True
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if made and not ok:
            with contextlib.suppress(OSError):
                out.rmdir()  # only when empty
    return VocabResult(out, False, stats)
