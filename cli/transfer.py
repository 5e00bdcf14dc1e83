"""``xling eval transfer``: thin flag mapping onto :mod:`xling.xglue.transfer`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from xling.cli._common import console, guarded, progress
from xling.xglue.tag_pooling import DEFAULT as WORD_POOLING

_LANGS_HELP = ("comma-separated codes and selectors: family:romance (a Glottolog family or WALS genus), "
               "genus:slavic, script:cyrillic, or all")


@guarded
def transfer(
    model: Path = typer.Option(..., "--model", "-m", help="Model directory (as for `eval xglue`)."),
    data: Path = typer.Option(..., "--data", "-d", help="XGLUE release directory (official layout)."),
    task: str = typer.Option("pos", help="One task (pos, ner, xnli, ...)."),
    sources: str = typer.Option("en", help="Source languages, one fine-tune each: " + _LANGS_HELP + "."),
    targets: str = typer.Option("all", help="Target languages, each scored on its test set: " + _LANGS_HELP + "."),
    train_split: str = typer.Option("auto", help="auto (train where a source has a train set, else dev), "
                                    "train or dev (see `eval xglue --train-split`)."),
    group: str = typer.Option("genus", help="What counts as in-family transfer in the summary: genus (WALS: "
                              "Germanic, Romance, Slavic...), family (Glottolog: Indo-European...) or script."),
    out: Path = typer.Option(Path("transfer-out"), "--out", "-o", help="Output directory: runs/SRC/ (one `eval "
                             "xglue` output per source, skipped when up to date), transfer.json, .md, .png."),
    seeds: int = typer.Option(1, help="Fine-tuning runs per source (a cell is their mean)."),
    recipe: str = typer.Option("xglue", help="Per-task defaults (see `eval xglue --recipe`)."),
    epochs: Optional[int] = typer.Option(None, help="Fine-tuning epochs [default: the recipe's]."),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate [default: the recipe's]."),
    batch_size: Optional[int] = typer.Option(None, help="Training examples per batch [default: the recipe's]."),
    max_length: Optional[int] = typer.Option(None, help="Cap inputs at N pieces [default: the recipe's]."),
    max_train_examples: Optional[int] = typer.Option(None, help="Use only the first N training examples of each "
                                                     "source (a documented slice)."),
    max_eval_examples: Optional[int] = typer.Option(None, help="Use only the first N dev/test examples per "
                                                    "language."),
    freeze_embeddings: bool = typer.Option(False, help="Keep the token embeddings fixed while fine-tuning."),
    word_pooling: str = typer.Option(WORD_POOLING, help="Tagging: see `eval xglue --word-pooling`."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    samples: int = typer.Option(1000, help="Bootstrap samples of the in-/cross-family gap's interval."),
    seed: int = typer.Option(12345, help="Seed of the resampling."),
    force: bool = typer.Option(False, "--force", help="Write into outputs xling did not write."),
):
    """One fine-tune per source language, every target scored: a source x target matrix grouped by family
    and script, with the in-family vs cross-family gap and its bootstrap interval."""
    from xling.xglue.finetune import FinetuneConfig
    from xling.xglue.run import EvalConfig, quiet_logs
    from xling.xglue.tag_pooling import check as check_pooling
    from xling.xglue.transfer import TransferConfig, run
    from xling.xglue.transfer_report import rich_table

    quiet_logs()
    check_pooling(word_pooling)
    given = {"lr": lr, "epochs": epochs, "batch_size": batch_size, "max_length": max_length}
    base = EvalConfig(model=model, data=data, tasks=task, seeds=seeds, max_train_examples=max_train_examples,
                      max_eval_examples=max_eval_examples, recipe=recipe, word_pooling=word_pooling,
                      overrides={k: v for k, v in given.items() if v is not None},
                      ft=FinetuneConfig(freeze_embeddings=freeze_embeddings, device=device))
    cfg = TransferConfig(xglue=base, sources=sources, targets=targets, train_split=train_split, out=out,
                         group=group, n_samples=samples, seed=seed, force=force)
    with progress() as bar:
        t = bar.add_task("fine-tuning", total=None)

        def on_source(src, i, n):
            bar.update(t, description=f"source {src} ({i + 1}/{n})")

        def on_done(src, skipped):
            if skipped:
                console.print(f"[dim]up to date: source {src} ({out / 'runs' / src})[/]")

        result = run(cfg, on_step=lambda: bar.advance(t), on_source=on_source, on_done=on_done)
    console.print(rich_table(result))
    console.print(f"results: {out / 'transfer.json'}, {out / 'transfer.md'}, {out / 'transfer.png'}")
