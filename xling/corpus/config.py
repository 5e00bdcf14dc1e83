"""What ``xling prep-data`` is asked to do: inputs, filters, split, workers, shards."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Optional

from xling.errors import XlingError
from xling.langs import check_lang, is_valid_lang

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
    num_threads: int = 1  # SentencePiece threads inside each worker
    workers: int = 0  # encoding processes; 0: one per CPU core
    chunk_lines: int = 20_000  # lines per chunk: the unit of work, of memory and of resuming
    shard_size: int = 0  # >0: train split written as fairseq shards of at most this many sentences
    shard: Optional[tuple[int, int]] = None  # (K, N): prepare part K of N (one machine's share)
    force: bool = False
    align: bool = False
    align_sym: str = "grow-diag-final-and"

    def options(self) -> dict:
        """Options that change the output of every corpus."""
        keys = ("valid_size", "valid_max_fraction", "min_len", "max_len", "max_ratio", "dedup", "seed")
        opts = {k: v for k, v in asdict(self).items() if k in keys}
        if self.shard_size:
            opts["shard_size"] = self.shard_size
        if self.shard:
            opts["shard_parts"] = self.shard[1]
        return opts

    def n_workers(self) -> int:
        return self.workers if self.workers > 0 else (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                                      else os.cpu_count() or 1)

    def validate(self) -> None:
        if not self.mono and not self.para:
            raise XlingError("nothing to prepare", fix="pass --mono LANG=PATH and/or --para SRC-TGT=SRC_PATH,TGT_PATH")
        if self.valid_size < 0 or not (0 <= self.valid_max_fraction < 1):
            raise XlingError("--valid-size must be >= 0", fix="use e.g. 1000")
        if self.min_len < 1 or self.max_len < self.min_len:
            raise XlingError(f"length limits {self.min_len}..{self.max_len} are empty",
                             fix="use --min-len 1 --max-len 256")
        if self.max_ratio < 1:
            raise XlingError(f"--max-ratio {self.max_ratio} is below 1", fix="use e.g. 3.0")
        if self.workers < 0 or self.chunk_lines < 1:
            raise XlingError("--workers must be >= 0 and --chunk-lines >= 1", fix="use --workers 0 (all cores)")
        if self.shard_size < 0:
            raise XlingError("--shard-size must be >= 0", fix="use e.g. 10000000 sentences, or 0 for no shards")
        if self.shard is not None:
            k, n = self.shard
            if not (n >= 1 and 0 <= k < n):
                raise XlingError(f"--shard {k}/{n} is not K/N with 0 <= K < N", fix="use e.g. --shard 0/4 ... 3/4")
            if self.shard_size:
                raise XlingError("--shard K/N and --shard-size both set the shards",
                                 fix="use --shard K/N on N machines, or --shard-size on one")
        for lang, _ in self.mono:
            check_lang(lang, what="--mono language")
        seen = set()
        for p in self.para:
            if p.pair in seen:
                raise XlingError(f"pair {p.pair} given twice", fix="give each --para pair once")
            seen.add(p.pair)
            check_lang(p.src, what=f"--para {p.pair} source language")
            check_lang(p.tgt, what=f"--para {p.pair} target language")


def parse_pair(text: str) -> tuple[str, str]:
    parts = text.split("-")
    # allow script/region subtags such as zh_Hans-en; pairs are split on the one '-' that yields two valid codes
    if len(parts) > 2:  # pt-BR-en: a '-' inside a tag makes the pair ambiguous (pt + BR-en reads as valid too)
        reads = [("-".join(parts[:i]), "-".join(parts[i:])) for i in range(1, len(parts))]
        reads = [(a, b) for a, b in reads if is_valid_lang(a) and is_valid_lang(b)]
        # BCP 47's conventional case: language lower, Script title, REGION upper, tells the intended reading
        best = [(a, b) for a, b in reads if all(t.split("-")[0].islower() and all(
            x.isupper() or x.isdigit() or x.istitle() for x in t.split("-")[1:]) for t in (a, b))]
        fix = (f"write the subtags with '_': --para {best[0][0].replace('-', '_')}-{best[0][1].replace('-', '_')}=..."
               if len(best) == 1 else "write pairs as en-fr or pt_BR-en (subtags joined with '_')")
        raise XlingError(f"{text!r}: a pair's languages must not contain '-' (SRC-TGT is split on it)", fix=fix)
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


def parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise XlingError(f"--shard {text!r} is not K/N", fix="write it as --shard 0/4 (part 0 of 4)") from None
    return k, n
