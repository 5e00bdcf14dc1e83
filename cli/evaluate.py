"""``xling eval xglue`` and ``xling eval score``: thin flag mapping onto :mod:`xling.xglue`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from xling.cli._common import console, guarded, progress

eval_app = typer.Typer(help="Zero-shot cross-lingual evaluation (XGLUE understanding and generation tasks).",
                       no_args_is_help=True)


def _csv(text: Optional[str]) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


@eval_app.command("xglue")
@guarded
def xglue(
    model: Path = typer.Option(..., "--model", "-m", help="Model directory: model.pt, dict.txt, "
                               "sentencepiece.bpe.model."),
    data: Path = typer.Option(..., "--data", "-d", help="XGLUE release directory (official layout)."),
    tasks: str = typer.Option("pos", help="Comma-separated tasks: understanding (pos, ner, nc, mlqa, xnli, pawsx, "
                              "qadsm, wpr, qam; an encoder model) or generation (qg, ntg; a model from "
                              "`xling pretrain --arch seq2seq`)."),
    zero_shot: str = typer.Option("", "--zero-shot", help="Comma-separated target languages."),
    train_lang: str = typer.Option("en", help="Fine-tuning language (its dev set selects the checkpoint)."),
    seeds: int = typer.Option(1, help="Fine-tuning runs with seeds 1..N; mean ± std is reported."),
    out: Path = typer.Option(Path("xglue-out"), "--out", "-o", help="Output directory."),
    epochs: int = typer.Option(3, help="Fine-tuning epochs."),
    lr: float = typer.Option(5e-4, help="Peak learning rate (AdamW, linear warm-up/decay)."),
    batch_size: int = typer.Option(16, help="Examples per batch."),
    max_train_examples: Optional[int] = typer.Option(None, help="Use only the first N training examples."),
    max_eval_examples: Optional[int] = typer.Option(None, help="Use only the first N dev/test examples "
                                                    "per language (quick runs; not official numbers)."),
    freeze_embeddings: bool = typer.Option(False, help="Keep the token embedding table fixed while "
                                           "fine-tuning (XLM-R vocabularies: most of the parameters; much "
                                           "faster optimizer steps, less memory)."),
    max_length: int = typer.Option(0, help="Cap inputs at N pieces (QA: shorter sliding windows); "
                                   "0 = the model's maximum."),
    beam: int = typer.Option(4, help="Generation: beam size."),
    no_repeat_ngram_size: int = typer.Option(3, help="Generation: never repeat an n-gram of this size (0: off)."),
    lenpen: float = typer.Option(1.0, help="Generation: length penalty (> 1 favours longer outputs)."),
    max_source_len: int = typer.Option(256, help="Generation: source pieces kept (longer sources are cut)."),
    max_target_len: int = typer.Option(64, help="Generation: longest target / output, in pieces."),
    label_smoothing: float = typer.Option(0.1, help="Generation: label smoothing of the fine-tuning loss."),
):
    """Fine-tune on the train language, predict every language, print and save the results table."""
    from xling.xglue.finetune import FinetuneConfig
    from xling.xglue.generate import GenerateConfig
    from xling.xglue.report import rich_table, signature_lines
    from xling.xglue.run import EvalConfig, evaluate

    cfg = EvalConfig(model=model, data=data, tasks=tasks, zero_shot=_csv(zero_shot), train_lang=train_lang,
                     seeds=seeds, out=out, max_train_examples=max_train_examples,
                     max_eval_examples=max_eval_examples,
                     ft=FinetuneConfig(lr=lr, epochs=epochs, batch_size=batch_size,
                                         freeze_embeddings=freeze_embeddings, max_length=max_length),
                     gen=GenerateConfig(beam=beam, no_repeat_ngram_size=no_repeat_ngram_size, lenpen=lenpen,
                                        max_source_len=max_source_len, max_target_len=max_target_len,
                                        label_smoothing=label_smoothing))
    with progress() as bar:
        t = bar.add_task("fine-tuning", total=None)
        result = evaluate(cfg, on_step=lambda: bar.advance(t))
    if result.get("skipped"):
        console.print(f"[dim]up to date: {out / 'results.json'}[/]")
    console.print(rich_table(result, "dev"))
    console.print(rich_table(result, "test"))
    for line in signature_lines(result):
        console.print(line, soft_wrap=True, highlight=False)
    console.print(f"results: {out / 'results.json'}, {out / 'results.md'}")


@eval_app.command("score")
@guarded
def score(
    pred: Path = typer.Option(..., "--pred", help="Predictions: PRED/TASK/LANG.prediction."),
    gold: Path = typer.Option(..., "--gold", help="XGLUE release directory (official layout)."),
    tasks: str = typer.Option(..., help="Comma-separated tasks."),
    split: str = typer.Option("test", help="dev or test."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the scores here."),
):
    """Score prediction files exactly as the official XGLUE scorer does."""
    from xling.io import write_json_atomic
    from xling.xglue.report import score_notes, score_table
    from xling.xglue.score import score_dir

    res = score_dir(pred, gold, tasks, split)
    console.print(score_table(res))
    for line in score_notes(res):
        console.print(line, soft_wrap=True, highlight=False)
    if json_out:
        write_json_atomic(json_out, res)
