"""Declarative specs of the retrieval tasks (one ``RetrievalTask`` each, validated by pydantic).

Two kinds:

- ``parallel`` (Tatoeba): line i of the source file is the translation of line i of the target file;
  every sentence is a query whose one right answer is its translation (top-1 accuracy, both
  directions). Files are found under ``DATA`` with the first of ``layouts`` that exists: XTREME's
  layout after its preprocessing (``xx-en.xx`` / ``xx-en.en``), the shared ``tatoeba.xx-en.xx`` one
  and LASER's original ``tatoeba.xxx-eng.xxx`` (ISO 639-3 codes, as LASER and XTREME's raw download
  name them).
- ``mining`` (BUCC): a source and a target collection in which only some sentences have a
  translation; the gold lists the pairs. Read either from BUCC 2018's own files (``id<TAB>sentence``
  lines, ``src_id<TAB>tgt_id`` gold, XTREME's ``xx-en.{split}.xx`` names) or built from a parallel
  layout by ``hide``: a fixed share of the pairs stays parallel (the gold), the other sentences lose
  their translation (the first half of the rest keep only their source side, the second half only
  their target side) and both sides are shuffled with a fixed seed, so the gold pairs are hidden among
  non-parallel sentences.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, Field

from xling.errors import XlingError
from xling.io import read_lines_hashed

# LASER/XTREME Tatoeba file names use ISO 639-3 codes (cmn for Mandarin, swh for Swahili, pes for Persian).
ISO3 = {"af": "afr", "ar": "ara", "az": "aze", "bg": "bul", "bn": "ben", "de": "deu", "el": "ell",
        "en": "eng", "es": "spa", "et": "est", "eu": "eus", "fa": "pes", "fi": "fin", "fr": "fra",
        "he": "heb", "hi": "hin", "hu": "hun", "id": "ind", "it": "ita", "ja": "jpn", "jv": "jav",
        "ka": "kat", "kk": "kaz", "ko": "kor", "lt": "lit", "ml": "mal", "mr": "mar", "nl": "nld",
        "pl": "pol", "pt": "por", "ro": "ron", "ru": "rus", "sw": "swh", "ta": "tam", "te": "tel",
        "th": "tha", "tl": "tgl", "tr": "tur", "uk": "ukr", "ur": "urd", "vi": "vie", "zh": "cmn"}


class Layout(BaseModel):
    """File name templates relative to DATA: ``{lang}`` (the non-pivot language), ``{pivot}``,
    ``{split}``, ``{lang3}`` / ``{pivot3}`` (ISO 639-3), ``{side}`` (the language of the file)."""
    src: str
    tgt: str
    gold: Optional[str] = None  # mining: src_id<TAB>tgt_id per line
    ids: bool = False  # lines are id<TAB>sentence (BUCC)

    def paths(self, data: Path, lang: str, pivot: str, split: str) -> dict[str, Path]:
        keys = {"lang": lang, "pivot": pivot, "split": split, "lang3": ISO3.get(lang, lang),
                "pivot3": ISO3.get(pivot, pivot)}
        out = {"src": data / self.src.format(side=keys["lang"], side3=keys["lang3"], **keys),
               "tgt": data / self.tgt.format(side=pivot, side3=keys["pivot3"], **keys)}
        if self.gold:
            out["gold"] = data / self.gold.format(side="gold", side3="gold", **keys)
        return out


class Hide(BaseModel):
    """Build a mining set from parallel text: ``gold_share`` of the pairs stay translations."""
    gold_share: float = Field(1 / 3, gt=0, le=1)
    seed: int = 1


class RetrievalTask(BaseModel):
    name: str
    kind: Literal["parallel", "mining"]
    description: str
    pivot: str = "en"
    layouts: list[Layout]
    hide: Optional[Hide] = None  # mining from a parallel layout
    default_split: str = "test"
    metric: str  # "top1" (parallel) or "f1" (mining)

    def find(self, data: Path, lang: str, split: str | None = None) -> dict[str, Path]:
        split = split or self.default_split
        tried = []
        for lay in self.layouts:
            p = lay.paths(Path(data), lang, self.pivot, split)
            if all(v.is_file() for v in p.values()):
                return {**p, "layout": lay}
            tried.append(str(p["src"]))
        raise XlingError(f"task {self.name}: no files for {lang}-{self.pivot} ({split})", file=data,
                         fix="expected one of: " + ", ".join(tried))

    def found_langs(self, data: Path, split: str | None = None) -> list[str]:
        langs = {lg for lg in ISO3 if lg != self.pivot}
        data = Path(data)
        for lay in self.layouts:  # any file name in DATA may name a language outside the table
            head = lay.src.split("{lang}")[0]
            for p in data.glob(head + "*"):
                rest = p.name[len(Path(head).name):] if head else p.name
                name = rest.split("-")[0].split(".")[0]
                if name not in ISO3.values():  # an ISO 639-3 name is found through its 2-letter code
                    langs.add(name)
        out = []
        for lg in sorted(langs):
            try:
                self.find(data, lg, split)
                out.append(lg)
            except XlingError:
                pass
        return out


TASKS: dict[str, RetrievalTask] = {t.name: t for t in [
    RetrievalTask(name="tatoeba", kind="parallel", metric="top1",
                  description="Tatoeba bitext retrieval (XTREME): nearest neighbour must be the translation",
                  layouts=[Layout(src="{lang}-{pivot}.{lang}", tgt="{lang}-{pivot}.{pivot}"),
                           Layout(src="tatoeba.{lang}-{pivot}.{lang}", tgt="tatoeba.{lang}-{pivot}.{pivot}"),
                           Layout(src="tatoeba.{lang3}-{pivot3}.{lang3}", tgt="tatoeba.{lang3}-{pivot3}.{pivot3}")]),
    RetrievalTask(name="bucc", kind="mining", metric="f1", default_split="dev",
                  description="BUCC 2018 bitext mining: gold pairs among non-parallel sentences, F1 at the "
                              "best threshold",
                  layouts=[Layout(src="{lang}-{pivot}.{split}.{lang}", tgt="{lang}-{pivot}.{split}.{pivot}",
                                  gold="{lang}-{pivot}.{split}.gold", ids=True),
                           Layout(src="{lang}-{pivot}/{lang}-{pivot}.{split}.{lang}",
                                  tgt="{lang}-{pivot}/{lang}-{pivot}.{split}.{pivot}",
                                  gold="{lang}-{pivot}/{lang}-{pivot}.{split}.gold", ids=True)]),
    RetrievalTask(name="tatoeba-mining", kind="mining", metric="f1", hide=Hide(),
                  description="BUCC-style mining built from Tatoeba: a third of the pairs hidden among "
                              "sentences whose translation was removed",
                  layouts=[Layout(src="{lang}-{pivot}.{lang}", tgt="{lang}-{pivot}.{pivot}"),
                           Layout(src="tatoeba.{lang}-{pivot}.{lang}", tgt="tatoeba.{lang}-{pivot}.{pivot}"),
                           Layout(src="tatoeba.{lang3}-{pivot3}.{lang3}", tgt="tatoeba.{lang3}-{pivot3}.{pivot3}")]),
]}


def get_task(name: str) -> RetrievalTask:
    if name not in TASKS:
        raise XlingError(f"unknown retrieval task {name!r}", fix="choose from " + ", ".join(TASKS))
    return TASKS[name]


@dataclass
class Bitext:
    """One language pair of a task: sentences of both sides and the gold pairs (src index, tgt index)."""
    pair: str
    src: list[str]
    tgt: list[str]
    gold: list[tuple[int, int]]
    digest: str  # sha256 over the files' bytes (and the hiding recipe): "same data" for eval compare
    files: list[str] = field(default_factory=list)


def _split_ids(lines: list[str], path: Path) -> tuple[list[str], list[str]]:
    ids, text = [], []
    for i, ln in enumerate(lines, 1):
        parts = ln.split("\t", 1)
        if len(parts) != 2:
            raise XlingError("expected `id<TAB>sentence`", file=path, line=i,
                             fix="BUCC 2018 files hold one sentence a line after its id and a tab")
        ids.append(parts[0].strip())
        text.append(parts[1].strip())
    return ids, text


def _read_gold(path: Path, src_ids: list[str], tgt_ids: list[str]) -> list[tuple[int, int]]:
    from xling.io import read_lines

    si, ti = {k: i for i, k in enumerate(src_ids)}, {k: i for i, k in enumerate(tgt_ids)}
    gold = []
    for n, ln in enumerate(read_lines(path, "gold file"), 1):
        parts = ln.split("\t")
        if len(parts) != 2 or parts[0] not in si or parts[1] not in ti:
            raise XlingError("expected `src_id<TAB>tgt_id` naming sentences of both files", file=path, line=n,
                             fix="each gold line pairs an id of the source file with one of the target file")
        gold.append((si[parts[0]], ti[parts[1]]))
    return gold


def parallel_bitext(pair: str, src_path: Path, tgt_path: Path) -> Bitext:
    src, h1 = read_lines_hashed(src_path, "source file")
    tgt, h2 = read_lines_hashed(tgt_path, "target file")
    if len(src) != len(tgt):
        raise XlingError(f"{src_path.name} has {len(src)} lines but {tgt_path.name} has {len(tgt)}", file=tgt_path,
                         fix="line i of the source file must be the translation of line i of the target file")
    for path, lines in ((src_path, src), (tgt_path, tgt)):
        blank = next((n for n, ln in enumerate(lines, 1) if not ln.strip()), None)
        if blank is not None:  # an empty sentence would be embedded and scored as a translation like any other
            more = sum(1 for ln in lines if not ln.strip()) - 1
            raise XlingError("blank line in a bitext" + (f" ({more} more after it)" if more else ""), file=path,
                             line=blank, fix="remove that pair from both files (line i of one file is the "
                                             "translation of line i of the other)")
    return Bitext(pair, src, tgt, [(i, i) for i in range(len(src))], f"{h1[:16]}{h2[:16]}",
                  [str(src_path), str(tgt_path)])


def hide_pairs(bt: Bitext, hide: Hide) -> Bitext:
    """Mining set from parallel text: ``gold_share`` of the pairs stay, the rest lose one side."""
    n = len(bt.src)
    order = list(range(n))
    random.Random(hide.seed).shuffle(order)
    n_gold = max(1, round(n * hide.gold_share))
    gold_rows, rest = order[:n_gold], order[n_gold:]
    src_only, tgt_only = rest[: len(rest) // 2], rest[len(rest) // 2:]
    src_rows, tgt_rows = gold_rows + src_only, gold_rows + tgt_only
    rng = random.Random(hide.seed + 1)
    rng.shuffle(src_rows)
    rng.shuffle(tgt_rows)
    s_pos, t_pos = {r: i for i, r in enumerate(src_rows)}, {r: i for i, r in enumerate(tgt_rows)}
    gold = sorted((s_pos[r], t_pos[r]) for r in gold_rows)
    return Bitext(bt.pair, [bt.src[r] for r in src_rows], [bt.tgt[r] for r in tgt_rows], gold,
                  f"{bt.digest}|hide:{hide.gold_share:.6f}:{hide.seed}", bt.files)


def load_bitext(task: RetrievalTask, data: Path, lang: str, split: str | None = None) -> Bitext:
    found = task.find(data, lang, split)
    pair = f"{lang}-{task.pivot}"
    lay: Layout = found["layout"]
    if not lay.ids:
        bt = parallel_bitext(pair, found["src"], found["tgt"])
        return hide_pairs(bt, task.hide) if task.hide else bt
    src_lines, h1 = read_lines_hashed(found["src"], "source file")
    tgt_lines, h2 = read_lines_hashed(found["tgt"], "target file")
    src_ids, src = _split_ids(src_lines, found["src"])
    tgt_ids, tgt = _split_ids(tgt_lines, found["tgt"])
    _gl, h3 = read_lines_hashed(found["gold"], "gold file")
    gold = _read_gold(found["gold"], src_ids, tgt_ids)
    return Bitext(pair, src, tgt, gold, f"{h1[:16]}{h2[:16]}{h3[:16]}",
                  [str(found["src"]), str(found["tgt"]), str(found["gold"])])
