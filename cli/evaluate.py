"""``xling eval xglue`` and ``xling eval score``: thin flag mapping onto :mod:`xling.xglue`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from xling.cli._common import console, guarded, progress, renamed
from xling.cli._ranges import in_range
from xling.cli._slurm import ExecutorCommand
from xling.xglue.tag_pooling import DEFAULT as WORD_POOLING

eval_app = typer.Typer(help="Zero-shot cross-lingual evaluation (XGLUE understanding and generation tasks).",
                       no_args_is_help=True)


def _csv(text: Optional[str]) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


_RECIPE_HELP = ("Per-task defaults of --lr, --epochs, --batch-size, --max-length, --doc-stride, --eval-batch-size: "
                "xglue = the published XGLUE baseline (microsoft/Unicoder xglue.sh), quick = a short CPU recipe "
                "(lr 5e-4, 3 epochs, batch 16, the model's maximum length). Printed in the signature.")


_POOLING_HELP = ("Tagging (pos, ner): the vector each word's tag is predicted from: first = its first piece, "
                 "first-content = its first piece that is not a bare SentencePiece '▁' (with XLM-R's vocabulary "
                 "86 % of Chinese words start with one), mean = the mean of its pieces. Default by measurement "
                 "(benchmarks/xglue/pos_e5.py, e5-small, 400 English sentences, test precision): first-content "
                 "lifts zh from 12.0 to 47.7 and keeps the 10 other languages within 0.3 of first or above (avg "
                 "64.1 -> 67.9); mean: zh 24.4, fr -3.7 (avg 65.9).")


def _processes(gpus: Optional[int], cpu_procs: int, device: str) -> int:
    """Data-parallel processes on this node: ``--gpus N`` on GPUs, ``--cpu-procs N`` on CPUs, as in ``pretrain``
    (``--gpus N --device cpu`` is the old spelling of ``--cpu-procs N``)."""
    from xling.errors import XlingError
    from xling.pretrain.checks import visible_gpus

    if gpus is not None and device == "cpu":
        return renamed("--gpus with --device cpu", gpus, "--cpu-procs", cpu_procs, default=1)
    if gpus is None:
        if cpu_procs > 1 and device != "cpu" and visible_gpus() > 0:
            raise XlingError(f"--cpu-procs {cpu_procs} runs CPU processes, but a GPU is visible",
                             fix="add --device cpu, or use --gpus N for GPUs")
        return cpu_procs
    if cpu_procs > 1:
        raise XlingError("--cpu-procs is for CPU runs; do not combine it with --gpus", fix="give one of them")
    n = visible_gpus()
    if gpus > n:
        raise XlingError(f"--gpus {gpus} asked for, but {n} GPU(s) are visible",
                         fix=f"use --cpu-procs {gpus} for CPU processes" if n == 0
                         else "lower --gpus, or check CUDA_VISIBLE_DEVICES / nvidia-smi")
    return gpus


@eval_app.command("xglue", cls=ExecutorCommand)
@guarded
def xglue(
    model: Path = typer.Option(..., "--model", "-m", help="Model directory: model.pt, dict.txt, "
                               "sentencepiece.bpe.model."),
    data: Path = typer.Option(..., "--data", "-d", help="XGLUE release directory (official layout)."),
    tasks: str = typer.Option("pos", help="Comma-separated tasks: understanding (pos, ner, nc, mlqa, xnli, pawsx, "
                              "qadsm, wpr, qam; an encoder model) or generation (qg, ntg; a model from "
                              "`xling pretrain --arch seq2seq`)."),
    zero_shot: str = typer.Option("all", "--zero-shot", help="Target languages: all = every language each task "
                                  "has in --data; none = the training language only; or a comma-separated list."),
    train_lang: str = typer.Option("en", help="Fine-tuning language(s): one, a comma-separated list (the union "
                                   "of their training sets; the mean of their dev scores selects the checkpoint) "
                                   "or all (every language with a --train-split file)."),
    train_split: str = typer.Option("train", help="Split the --train-lang languages train on: train, or dev for "
                                    "languages without a train set (its last tenth then selects the checkpoint; "
                                    "a dev set trained on is never scored)."),
    balance_langs: bool = typer.Option(False, "--balance-langs", help="Multi-source: repeat the smaller sources' "
                                       "examples so that every language is seen equally often per epoch."),
    seeds: int = typer.Option(1, callback=in_range("--seeds", 1, 100, fix="e.g. --seeds 3 (each seed is a whole "
                                                   "fine-tuning run)"),
                              help="Fine-tuning runs with seeds 1..N; mean ± std is reported."),
    out: Path = typer.Option(Path("xglue-out"), "--out", "-o", help="Output directory: one folder per task "
                             "(other tasks' results there are kept and aggregated)."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty --out that xling did not write "
                               "(or wrote for another model/data/options); files of other names are kept."),
    recipe: str = typer.Option("xglue", help=_RECIPE_HELP),
    epochs: Optional[int] = typer.Option(None, help="Fine-tuning epochs [default: the recipe's]."),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate (AdamW, linear warm-up/decay) "
                                       "[default: the recipe's]."),
    batch_size: Optional[int] = typer.Option(None, help="Training examples per (global) batch "
                                             "[default: the recipe's]."),
    eval_batch_size: Optional[int] = typer.Option(None, help="Examples per prediction batch [default: the recipe's]."),
    micro_batch_size: Optional[int] = typer.Option(None, help="Most training examples per forward/backward pass "
                                                   "and device (the memory knob); an update still holds --batch-size "
                                                   "(gradients accumulate). Default: xling's, whole batches, halved "
                                                   "when a step runs out of memory (one process)."),
    max_length: Optional[int] = typer.Option(None, help="Cap inputs at N pieces (QA: shorter sliding windows; "
                                             "0 = the model's maximum) [default: the recipe's]."),
    doc_stride: Optional[int] = typer.Option(None, help="QA: context pieces between window starts (0: half a "
                                             "window) [default: the recipe's]."),
    max_train_examples: Optional[int] = typer.Option(None, help="Use only the first N training examples."),
    max_eval_examples: Optional[int] = typer.Option(None, help="Use only the first N dev/test examples "
                                                    "per language (quick runs; not official numbers)."),
    freeze_embeddings: bool = typer.Option(False, help="Keep the token embedding table fixed while "
                                           "fine-tuning (XLM-R vocabularies: most of the parameters; much "
                                           "faster optimizer steps, less memory)."),
    word_pooling: str = typer.Option(WORD_POOLING, help=_POOLING_HELP),
    device: str = typer.Option("auto", help="auto (a GPU when one is visible), cpu or cuda."),
    bf16: bool = typer.Option(False, "--bf16", help="bfloat16 mixed precision (autocast; GPUs from Ampere, CPUs)."),
    fp16: bool = typer.Option(False, "--fp16", help="float16 mixed precision with loss scaling (CUDA only)."),
    bucket: bool = typer.Option(False, help="Length-bucketed training batches (Hugging Face's group_by_length: little padding, faster, most of all on GPUs). Off by default: on the demo's short run (400 POS sentences, 50 updates) it cost 6 points of English test precision."),
    workers: int = typer.Option(-1, help="Data-loader worker processes (-1: a few on a GPU, none on a CPU)."),
    gpus: Optional[int] = typer.Option(None, callback=in_range("--gpus", 1, fix="leave --gpus out for one GPU, or "
                                                               "the CPU"),
                                       help="GPUs per node: data-parallel processes, one per GPU (torch DDP "
                                       "launched by torchrun; default 1). The global batch stays --batch-size."),
    cpu_procs: int = typer.Option(1, callback=in_range("--cpu-procs", 1, fix="give 1 or more"),
                                  help="CPU data-parallel processes (gloo); for machines without GPUs."),
    nodes: int = typer.Option(1, help="Number of nodes (run the same command on each, with its --node-rank)."),
    nnodes: Optional[int] = typer.Option(None, hidden=True, help="Deprecated: --nodes."),
    node_rank: int = typer.Option(0, help="Multi-node: this node's rank (0 writes the output)."),
    master_addr: Optional[str] = typer.Option(None, help="Multi-node: address of the node with --node-rank 0."),
    master_port: int = typer.Option(29500, help="Multi-node: a free port on that node."),
    beam: int = typer.Option(4, help="Generation: beam size."),
    no_repeat_ngram_size: int = typer.Option(3, help="Generation: never repeat an n-gram of this size (0: off)."),
    lenpen: float = typer.Option(1.0, help="Generation: length penalty (> 1 favours longer outputs)."),
    max_source_len: int = typer.Option(256, help="Generation: source pieces kept (longer sources are cut)."),
    max_target_len: int = typer.Option(64, help="Generation: longest target / output, in pieces."),
    label_smoothing: float = typer.Option(0.1, help="Generation: label smoothing of the fine-tuning loss."),
):
    """Fine-tune on the train language, predict every language, print and save the results table."""
    from xling.errors import XlingError
    from xling.xglue.finetune import FinetuneConfig
    from xling.xglue.generate import GenerateConfig
    from xling.xglue.report import rich_table, signature_lines
    from xling.xglue.run import EvalConfig, evaluate, quiet_logs
    from xling.xglue.tag_pooling import check as check_pooling

    quiet_logs()
    check_pooling(word_pooling)
    if bf16 and fp16:
        raise XlingError("--bf16 and --fp16 exclude each other", fix="choose one mixed precision")
    nodes = renamed("--nnodes", nnodes, "--nodes", nodes, default=1)
    procs = _processes(gpus, cpu_procs, device)
    given = {"lr": lr, "epochs": epochs, "batch_size": batch_size, "eval_batch_size": eval_batch_size,
             "max_length": max_length, "doc_stride": doc_stride}
    zs = None if zero_shot.strip().lower() == "all" else [] if zero_shot.strip().lower() == "none" else _csv(zero_shot)
    cfg = EvalConfig(model=model, data=data, tasks=tasks, zero_shot=zs, train_lang=train_lang,
                     train_split=train_split, balance_langs=balance_langs,
                     seeds=seeds, out=out, max_train_examples=max_train_examples,
                     max_eval_examples=max_eval_examples, recipe=recipe, word_pooling=word_pooling,
                     overrides={k: v for k, v in given.items() if v is not None}, force=force, gpus=procs,
                     nnodes=nodes, node_rank=node_rank, master_addr=master_addr, master_port=master_port,
                     ft=FinetuneConfig(freeze_embeddings=freeze_embeddings, device=device, workers=workers,
                                       micro_batch_size=micro_batch_size or 0,
                                       precision="bf16" if bf16 else "fp16" if fp16 else "fp32", bucket=bucket),
                     gen=GenerateConfig(beam=beam, no_repeat_ngram_size=no_repeat_ngram_size, lenpen=lenpen,
                                        max_source_len=max_source_len, max_target_len=max_target_len,
                                        label_smoothing=label_smoothing))
    if nodes > 1 and not master_addr:
        raise XlingError("--nodes > 1 needs --master-addr", fix="the address of the node run with --node-rank 0")
    with progress() as bar:
        t = bar.add_task("fine-tuning", total=None)
        result = evaluate(cfg, on_step=lambda: bar.advance(t))
    if result is None:  # a multi-node run's other machines: node 0 writes and prints
        console.print(f"node {node_rank}: done (results on node 0)")
        return
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
    force: bool = typer.Option(False, "--force", help="Replace a --json file that xling did not write."),
):
    """Score prediction files exactly as the official XGLUE scorer does."""
    from xling.io import write_json_owned
    from xling.outputs import claim_file
    from xling.xglue.report import score_notes, score_table
    from xling.xglue.score import score_dir

    if json_out:
        claim_file(json_out, "--json", force=force)
    res = score_dir(pred, gold, tasks, split)
    console.print(score_table(res))
    for line in score_notes(res):
        console.print(line, soft_wrap=True, highlight=False)
    if json_out:
        write_json_owned(json_out, res)


def _register_transfer():
    from xling.cli.transfer import transfer

    eval_app.command("transfer", help="One fine-tune per source language, every target scored: a source x "
                     "target matrix (table, JSON, heatmap) grouped by family and script, with the in-family "
                     "vs cross-family gap and its bootstrap CI.")(transfer)


_register_transfer()
