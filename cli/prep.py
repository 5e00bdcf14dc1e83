"""``xling prep-vocab`` and ``xling prep-data``: thin flag-to-library mapping."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from xling.cli._common import console, err_console, guarded, progress
from xling.errors import XlingError


def _split_assign(text: str, flag: str) -> tuple[str, str]:
    if "=" not in text:
        raise XlingError(f"{flag} {text!r} is not KEY=PATH", fix=f"write it as {flag} fr=corpus.fr")
    k, v = text.split("=", 1)
    if not k or not v:
        raise XlingError(f"{flag} {text!r} is not KEY=PATH", fix=f"write it as {flag} fr=corpus.fr")
    return k.strip(), v.strip()


def _at_least(low: int, **counts: int) -> None:
    for flag, v in counts.items():
        if v < low:
            raise XlingError(f"{flag} must be at least {low}, got {v}", fix=f"leave {flag} out for its default")


def _warn_unknown_langs(vocab: Path, langs: list[str]) -> None:
    """A language the vocabulary was not trained on is encoded with other languages' pieces: warn."""
    import json

    try:
        trained = set(json.loads((Path(vocab) / "stats.json").read_text(encoding="utf-8")).get("langs", {}))
    except (OSError, ValueError, AttributeError):
        return  # not a prep-vocab output (e.g. an imported model's vocabulary): nothing to compare with
    norm = {t.replace("-", "_").lower() for t in trained}  # pt-BR and pt_BR name the same language
    missing = sorted({lg for lg in langs if lg.replace("-", "_").lower() not in norm})
    if trained and missing:
        err_console.print(f"[yellow]warning:[/] {', '.join(missing)} not among the vocabulary's training languages "
                          f"({', '.join(sorted(trained))}, {Path(vocab) / 'stats.json'}): such text is cut into "
                          "pieces learned from other languages (more pieces per word, unknown or byte pieces); "
                          "add it to `xling prep-vocab --input` if it matters", highlight=False, soft_wrap=True)


_LANGS_HELP = ("Use only these of the inputs' languages: codes and selectors, e.g. family:romance (a Glottolog "
               "family or WALS genus), genus:slavic, script:cyrillic (xling.languages).")


def _pct(x):
    return "-" if x is None else f"{100 * x:.2f}%"


@guarded
def prep_vocab(
    input: List[str] = typer.Option(..., "--input", "-i", help="LANG=PATH, one per language (repeat)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory."),
    vocab_size: int = typer.Option(250_000, help="Number of SentencePiece pieces (XLM-R: 250000)."),
    alpha: float = typer.Option(0.3, help="Language sampling smoothing in (0, 1]: q_l ∝ p_l^alpha."),
    model_type: str = typer.Option("unigram", help="unigram or bpe."),
    character_coverage: float = typer.Option(0.9995, help="SentencePiece character coverage."),
    byte_fallback: bool = typer.Option(True, "--byte-fallback/--no-byte-fallback",
                                       help="Decompose unknown characters into UTF-8 byte pieces."),
    max_sentences: int = typer.Option(10_000_000, help="Cap on sentences sampled for training."),
    heldout_fraction: float = typer.Option(0.02, help="Fraction of each language held out for quality stats."),
    seed: int = typer.Option(1, help="Random seed (sampling and SentencePiece)."),
    threads: int = typer.Option(2, help="Training threads."),
    force: bool = typer.Option(False, help="Overwrite another run's vocabulary in --out."),
    langs: Optional[str] = typer.Option(None, help=_LANGS_HELP),
):
    """Train one shared SentencePiece vocabulary over many languages."""
    from xling.languages import select
    from xling.vocab import VocabConfig, build_vocab

    _at_least(1, **{"--threads": threads})
    inputs = [_split_assign(x, "--input") for x in input]
    if langs is not None:
        keep = select(langs, [lg for lg, _ in inputs])
        inputs = [(lg, p) for lg, p in inputs if lg in keep]
    cfg = VocabConfig(inputs=inputs, out=str(out), vocab_size=vocab_size,
                      alpha=alpha, model_type=model_type, character_coverage=character_coverage,
                      byte_fallback=byte_fallback, max_sentences=max_sentences, seed=seed,
                      heldout_fraction=heldout_fraction, num_threads=threads, force=force)
    with progress() as prog:
        task = prog.add_task("prep-vocab", total=2 * len(cfg.inputs) + 1)

        def step(stage, lang):
            prog.update(task, advance=1, description=f"{stage} {lang or ''}".strip())

        res = build_vocab(cfg, step)
    if res.skipped:
        console.print(f"[green]up to date:[/] {out} (same inputs and options; nothing to do)")
    st = res.stats
    table = Table(title=f"prep-vocab: {st['vocab']['spm_pieces']} pieces, alpha={st['options']['alpha']}, "
                        f"{st['vocab']['sampled_lines']} sampled lines")
    for col in ("lang", "sentences", "p", "q", "sampled", "held-out", "pieces/word", "chars/piece", "unk", "byte-fb"):
        table.add_column(col, justify="left" if col == "lang" else "right")
    for lang, s in st["langs"].items():
        q = s["quality"]
        table.add_row(lang, str(s["sentences"]), f"{s['p']:.4f}", f"{s['q']:.4f}", str(s["sampled"]),
                      str(s["heldout"]), "-" if q["pieces_per_word"] is None else f"{q['pieces_per_word']:.3f}",
                      "-" if q["chars_per_piece"] is None else f"{q['chars_per_piece']:.3f}",
                      _pct(q["unk_rate"]), _pct(q["byte_fallback_rate"]))
    console.print(table)
    console.print(f"wrote {out}/spm.model, spm.vocab, dict.txt, stats.json")


def _bytes_progress():
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(), console=err_console,
                    disable=not err_console.is_terminal)


@guarded
def prep_data(
    vocab: Optional[Path] = typer.Option(None, "--vocab", "-v", help="Directory written by `xling prep-vocab`."),
    out: Path = typer.Option(..., "--out", "-o", help="Output data directory."),
    mono: Optional[List[str]] = typer.Option(None, "--mono", help="LANG=PATH monolingual text (repeatable)."),
    para: Optional[List[str]] = typer.Option(
        None, "--para", help="SRC-TGT=SRC_PATH,TGT_PATH, or SRC-TGT=PATH of `src ||| tgt` lines (repeatable)."),
    mono_from_para: bool = typer.Option(False, help="Also use each side of every pair as monolingual text; a "
                                                    "language's valid split is then its pairs' valid sentences."),
    valid_size: int = typer.Option(1000, help="Valid sentences per corpus (at most 10% of it)."),
    min_len: int = typer.Option(1, help="Drop sentences with fewer pieces."),
    max_len: int = typer.Option(256, help="Drop sentences with more pieces."),
    max_ratio: float = typer.Option(3.0, help="Drop pairs whose piece-length ratio exceeds this."),
    dedup: bool = typer.Option(True, "--dedup/--no-dedup", help="Drop exact duplicate lines (pairs)."),
    align: bool = typer.Option(False, help="Word-align every pair (needs the eflomal extra) and store "
                                           "the alignments beside the binarized data."),
    seed: int = typer.Option(1, help="Seed of the valid split."),
    workers: int = typer.Option(0, help="Encoding processes (0: one per CPU core); the output is the same "
                                        "for any number."),
    threads: int = typer.Option(1, help="SentencePiece threads inside each worker."),
    chunk_lines: int = typer.Option(20_000, help="Lines per chunk (memory and resume granularity)."),
    shard_size: int = typer.Option(0, help="Write the train split as fairseq shards DATA/shard0.. of at most "
                                           "this many sentences per corpus (one shard an epoch); 0: no shards."),
    shard: Optional[str] = typer.Option(None, help="K/N: prepare part K of N of every corpus (one machine's "
                                                   "share) into DATA/shardK; then run --merge once."),
    merge: bool = typer.Option(False, "--merge", help="Combine the N parts written with --shard K/N into one "
                                                      "dataset (writes DATA/manifest.json)."),
    force: bool = typer.Option(False, help="Rebuild even if --out holds data of another vocabulary."),
    langs: Optional[str] = typer.Option(None, help=_LANGS_HELP + " A pair is kept when both its sides are."),
):
    """Prepare fairseq binary datasets (streaming: memory does not grow with the corpus)."""
    from xling.corpus import DataConfig, ParaInput, parse_pair, parse_shard, prepare_data

    if merge:
        from xling.corpus.merge import merge_parts

        m = merge_parts(out)
        _data_table(m, out)
        console.print(f"merged {m['shards']} parts; wrote {out}/manifest.json (fairseq data: "
                      f"{out}/shard0:...:{out}/shard{m['shards'] - 1})")
        return
    if vocab is None:
        raise XlingError("--vocab is required", fix="pass --vocab DIR written by `xling prep-vocab`")
    paras = []
    for x in para or []:
        key, paths = _split_assign(x, "--para")
        src, tgt = parse_pair(key)
        if "," in paths:
            sp, tp = paths.split(",", 1)
            paras.append(ParaInput(key, src, tgt, sp, tp))
        else:
            paras.append(ParaInput(key, src, tgt, paths, None))
    from xling.languages import select

    monos = [_split_assign(x, "--mono") for x in mono or []]
    if langs is not None:
        keep = select(langs, [lg for lg, _ in monos] + [lg for p in paras for lg in (p.src, p.tgt)])
        monos = [(lg, p) for lg, p in monos if lg in keep]
        paras = [p for p in paras if p.src in keep and p.tgt in keep]
    cfg = DataConfig(vocab=str(vocab), out=str(out), mono=monos,
                     para=paras, mono_from_para=mono_from_para, valid_size=valid_size, min_len=min_len,
                     max_len=max_len, max_ratio=max_ratio, dedup=dedup, seed=seed, num_threads=threads,
                     workers=workers, chunk_lines=chunk_lines, shard_size=shard_size,
                     shard=parse_shard(shard) if shard else None, force=force, align=align)
    _at_least(1, **{"--threads": threads})
    _warn_unknown_langs(vocab, [lg for lg, _ in cfg.mono] + [lg for p in paras for lg in (p.src, p.tgt)])
    with _bytes_progress() as prog:
        tasks = {}

        def step(section, key, done, total):
            name = f"{section} {key}"
            if name not in tasks:
                tasks[name] = prog.add_task(name, total=total)
            prog.update(tasks[name], completed=done)

        res = prepare_data(cfg, step)
    _data_table(res.manifest, out)
    if res.resumed:
        console.print(f"resumed from the last checkpoint: {', '.join(res.resumed)}")
    if res.skipped and not res.done:
        console.print("[green]up to date:[/] nothing changed since the last run")
    where = "manifest.json" if not cfg.shard else f"parts/part{cfg.shard[0]}.json (run --merge when all parts are done)"
    console.print(f"{len(res.done)} prepared, {len(res.skipped)} up to date; wrote {out}/{where}")


def _data_table(m: dict, out: Path) -> None:
    table = Table(title=f"prep-data → {out}" + (f" ({m['shards']} shards)" if m.get("shards") else ""))
    for col in ("corpus", "input", "empty", "dup", "short", "long", "ratio", "kept", "train", "valid", "tokens"):
        table.add_column(col, justify="left" if col == "corpus" else "right")
    for section in ("para", "mono"):
        for key, e in m[section].items():
            c = e["counts"]
            table.add_row(f"{section} {key}", str(c["input"]), str(c["empty"]), str(c["duplicate"]),
                          str(c["too_short"]), str(c["too_long"]), str(c.get("ratio", "-")), str(c["kept"]),
                          str(e["sentences"]["train"]), str(e["sentences"]["valid"]),
                          str(e["tokens"]["train"] + e["tokens"]["valid"]))
    console.print(table)
