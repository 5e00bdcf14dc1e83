"""``xling pretrain`` and ``xling inspect``: thin flag mapping onto :mod:`xling.pretrain` and
:mod:`xling.checkpoint_info`."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from xling.cli._common import console, err_console, guarded, progress, renamed
from xling.errors import XlingError


def _csv(text: Optional[str]) -> Optional[list[str]]:
    if not text:
        return None
    return [x.strip() for x in text.split(",") if x.strip()]


def _langs(text: Optional[str], data: Path) -> Optional[list[str]]:
    """--langs: codes as given, or a family/genus/script selector resolved over the prepared languages."""
    from xling.corpus.manifest import load_manifest
    from xling.languages import resolve

    return resolve(text, lambda: load_manifest(data).get("langs", []))


def _master(master: Optional[str], addr: Optional[str], port: int) -> Optional[str]:
    """Node rank 0's ``ADDR:PORT`` from --master-addr / --master-port (or the deprecated --master ADDR[:PORT])."""
    new = f"{addr}:{port}" if addr else None
    if master is not None and ":" not in master and addr is None:
        master = f"{master}:{port}"
    return renamed("--master", master, "--master-addr/--master-port", new)


def _weights(text: Optional[str]) -> Optional[list[float]]:
    items = _csv(text)
    if items is None:
        return None
    try:
        return [float(x) for x in items]
    except ValueError:
        raise XlingError(f"--task-weights must be comma-separated numbers, got {text!r}") from None


def task_losses(stats: dict) -> list[str]:
    """``clwr 5.123``, ``clpc_acc 81.2``...: every per-task loss and accuracy of a fairseq log record."""
    out = []
    for k, v in stats.items():
        if isinstance(v, float) and k.endswith(("_loss", "_acc")) and not k.startswith(("valid_", "train_")):
            out.append(f"{k[:-5] if k.endswith('_loss') else k} {v:.3f}")
    return out


@guarded
def pretrain(
    data: Path = typer.Option(..., "--data", "-d", help="Directory written by `xling prep-data`."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory (checkpoints/, model/, pretrain.json)."),
    preset: str = typer.Option("base", help="tiny (tests, CPU), base (XLM-R base) or large (XLM-R large)."),
    tlm: bool = typer.Option(False, "--tlm", help="Mix translation LM on parallel pairs into training."),
    tlm_ratio: Optional[float] = typer.Option(None, help="Fraction of training examples that are TLM pairs "
                                              "(default 0.5 with --tlm)."),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="Comma-separated pretraining objectives: mlm, "
                                        "tlm, clwr, clpc, clmlm, cs-mlm, xlco, rtd, trtd (default: mlm, or mlm,tlm with --tlm)."),
    task_weights: Optional[str] = typer.Option(None, "--task-weights", help="Comma-separated loss weights, one "
                                               "per --tasks entry (default: all 1)."),
    langs: Optional[str] = typer.Option(None, help="Comma-separated languages (default: all prepared), or "
                                        "selectors over the prepared ones: family:romance, genus:slavic, "
                                        "script:cyrillic (xling.languages)."),
    pairs: Optional[str] = typer.Option(None, help="Comma-separated TLM pairs such as en-fr (default: all "
                                        "prepared, with --tlm)."),
    alpha: float = typer.Option(0.3, help="Language sampling smoothing: q ∝ p^alpha."),
    max_updates: Optional[int] = typer.Option(None, "--max-updates", help="Stop after N updates "
                                              "(default: the preset's)."),
    total_updates: Optional[int] = typer.Option(None, help="Length of the learning-rate schedule "
                                                "(default: --max-updates); keep it fixed to stop and resume."),
    batch_size: Optional[int] = typer.Option(None, help="Sequences per update over all GPUs/processes (default: "
                                             "the preset's, tiny 16, base/large 256; seq2seq base/large 128); "
                                             "the same on any number of devices. On GPUs a budget of that many "
                                             "blocks of tokens."),
    micro_batch_size: Optional[int] = typer.Option(None, help="Most sequences per micro-batch and device (the "
                                                   "memory knob; default: the preset's); each update takes as "
                                                   "many micro-batches as --batch-size needs."),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate (default: the preset's)."),
    log_interval: Optional[int] = typer.Option(None, help="Log the loss every N updates."),
    save_interval: Optional[int] = typer.Option(None, help="Validate and save a checkpoint every N updates, "
                                                "also within an epoch (a crash loses at most N updates); 0: "
                                                "only at epoch ends and at the end (default: the preset's, "
                                                "base/large 2000, tiny 100)."),
    seed: int = typer.Option(1, help="Random seed (data order, masking, initialisation)."),
    lang_embeddings: bool = typer.Option(False, "--lang-embeddings", help="XLM language embeddings "
                                         "(off: XLM-R style, no language signal)."),
    mask_span: Optional[str] = typer.Option(None, "--mask-span", help="Span masking for the masked-LM objectives "
                                            "(mlm, tlm, cs-mlm, ...): geometric:p=0.2,max=10 (SpanBERT: span "
                                            "lengths ~ Geometric(p), mean 1/p, clipped at max; in words with "
                                            "--mask-whole-words), the same 15 % budget, one 80/10/10 choice per "
                                            "span; default: single tokens."),
    mask_whole_words: bool = typer.Option(False, "--mask-whole-words", help="Mask whole words (a word starts at a "
                                          "SentencePiece piece beginning with ▁), one 80/10/10 choice per word."),
    gpus: Optional[int] = typer.Option(None, help="GPUs per node (default: 1 when one is visible, else CPU)."),
    cpu_procs: int = typer.Option(1, help="CPU data-parallel processes (gloo); for machines without GPUs."),
    nodes: int = typer.Option(1, help="Number of nodes (run the same command on each, with its --node-rank)."),
    node_rank: int = typer.Option(0, help="Rank of this node."),
    master_addr: Optional[str] = typer.Option(None, help="Multi-node: address of the node with --node-rank 0."),
    master_port: int = typer.Option(29500, help="Multi-node: a free port on that node."),
    master: Optional[str] = typer.Option(None, hidden=True, help="Deprecated: --master-addr and --master-port."),
    bf16: bool = typer.Option(False, "--bf16", help="bfloat16 mixed precision."),
    fp16: bool = typer.Option(False, "--fp16", help="float16 mixed precision (GPU)."),
    fp32: bool = typer.Option(False, "--fp32", help="Full precision, also on GPUs (whose default is bf16, "
                              "or fp16 before compute capability 8)."),
    compile: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile the encoder's "
                                           "layers and masked-LM loss (default: on GPUs)."),
    init: Optional[Path] = typer.Option(None, help="Continue pretraining from a model directory "
                                        "(model.pt, dict.txt): keeps its vocabulary."),
    force_resume: bool = typer.Option(False, "--force-resume", help="Resume OUT's checkpoint_last.pt even though "
                                      "the data, model, objectives or schedule changed (recorded in run.json)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the fairseq command (one per node rank and "
                                 "how each update is split over the devices) and exit; --gpus may exceed the GPUs "
                                 "visible here (a command for a cluster's nodes)."),
    arch: Optional[str] = typer.Option(None, "--arch", help="encoder (MLM/TLM/Unicoder tasks) or seq2seq "
                                       "(encoder-decoder, --tasks xdae: multilingual denoising, mBART-style "
                                       "language tokens); default: seq2seq with --tasks xdae, else encoder. "
                                       "seq2seq presets: tiny 2+2x64, base 12+12x768, large 12+12x1024; "
                                       "--init takes an encoder model for the encoder."),
    decoder: Optional[str] = typer.Option(None, "--decoder", help="seq2seq: transformer (bart's, default) or "
                                          "prophetnet (ProphetNet's n-stream decoder, future n-gram loss; generation "
                                          "runs its main stream)."),
    ngram: Optional[int] = typer.Option(None, "--ngram", help="seq2seq --decoder prophetnet: tokens predicted ahead "
                                        "at each position (default 2; 1: next token only)."),
    mask_ratio: float = typer.Option(0.35, help="seq2seq: text infilling, fraction of words in masked spans "
                                     "(one <mask> per span)."),
    poisson_lambda: float = typer.Option(3.5, help="seq2seq: mean masked-span length (Poisson)."),
    permute_ratio: float = typer.Option(1.0, help="seq2seq: fraction of sentences permuted per example."),
    insert_ratio: float = typer.Option(0.0, help="seq2seq: inserted <mask>/random tokens, fraction of length."),
    rotate_ratio: float = typer.Option(0.0, help="seq2seq: probability of rotating a document (random start)."),
    word_shuffle: float = typer.Option(0.0, help="seq2seq: XLM local word shuffle, largest displacement "
                                       "in words (0: off)."),
    word_dropout: float = typer.Option(0.0, help="seq2seq: XLM word dropout probability."),
    word_blank: float = typer.Option(0.0, help="seq2seq: XLM word blanking probability (<mask>)."),
    extra: Optional[List[str]] = typer.Argument(None, help="Extra fairseq-train arguments, after `--`."),
):
    """Pretrain a cross-lingual encoder (MLM, optionally + TLM and the Unicoder tasks of --tasks) with fairseq,
    or an encoder-decoder by multilingual denoising (--arch seq2seq --tasks xdae)."""
    from xling import pretrain as lib

    if bf16 + fp16 + fp32 > 1:
        raise XlingError("choose one of --bf16, --fp16 and --fp32")
    from xling.pretrain.options import parse_mask_span

    span_p, span_max = parse_mask_span(mask_span)
    opts = lib.PretrainOptions(
        data=data, out=out, preset=preset, tlm=tlm, tlm_ratio=tlm_ratio, langs=_langs(langs, data), pairs=_csv(pairs),
        tasks=_csv(tasks), task_weights=_weights(task_weights),
        alpha=alpha, max_updates=max_updates, total_updates=total_updates, batch_size=batch_size,
        micro_batch_size=micro_batch_size, lr=lr,
        log_interval=log_interval, save_interval=save_interval, seed=seed,
        lang_embeddings=lang_embeddings, mask_span_p=span_p, mask_span_max=span_max,
        mask_whole_words=mask_whole_words, gpus=gpus, cpu_procs=cpu_procs, nodes=nodes,
        node_rank=node_rank, master=_master(master, master_addr, master_port), precision="bf16" if bf16 else "fp16" if fp16 else "fp32" if fp32 else None,
        compile=compile, extra=list(extra or []), init=init, force_resume=force_resume, plan_only=dry_run,
        decoder=decoder, ngram=ngram)
    noise = lib.NoiseOptions(mask=mask_ratio, poisson_lambda=poisson_lambda, permute_sentences=permute_ratio,
                             insert=insert_ratio, rotate=rotate_ratio, word_shuffle=word_shuffle,
                             word_dropout=word_dropout, word_blank=word_blank)
    plan = lib.plan(opts, noise, arch)
    cmd = plan.command
    if dry_run:
        for c in lib.rank_commands(opts, cmd, 29500):
            typer.echo(shlex.join(c))
        from xling.pretrain.command import device_notes  # GPU defaults the preset chose (issue 18)

        for note in device_notes(opts, plan.arch):
            err_console.print(note, highlight=False)
        return
    err_console.print(f"[bold]fairseq:[/] {shlex.join(cmd)}", highlight=False, soft_wrap=True)
    total = plan.max_updates
    with progress() as bar:
        task = bar.add_task("pretraining", total=total)

        def on_stats(kind, stats):
            if kind == "train_inner":
                parts = [f"loss {stats.get('loss', float('nan')):.3f}"]
                parts += task_losses(stats)
                if stats.get("wps"):
                    parts.append(f"{stats['wps']:,.0f} tokens/s")
                bar.update(task, completed=int(stats.get("num_updates", 0)), description=" ".join(parts))
                if not bar.disable:
                    return
                err_console.print(f"update {int(stats.get('num_updates', 0))}/{total}: " + ", ".join(parts),
                                  highlight=False)
            elif kind == "note":
                err_console.print(stats["message"], highlight=False, markup=False)
            elif kind == "valid":
                err_console.print(f"valid loss {stats.get('valid_loss', float('nan')):.3f} at update "
                                  f"{int(stats.get('valid_num_updates', 0))}", highlight=False)

        summary = lib.run_plan(plan, on_stats)
    table = Table(title=f"pretrain → {out}" + (" (up to date)" if summary.get("skipped") else ""))
    for col in ("preset", "langs", "pairs", "tasks", "batch", "updates", "tokens/s", "first loss", "last loss",
                "last task losses", "valid loss"):
        table.add_column(col)
    curve, valid = summary["curve"], summary["valid"]
    speeds = sorted(c["wps"] for c in curve[-10:] if c.get("wps"))  # the last log records' tokens/s
    weights = summary.get("task_weights")
    tasks_text = ",".join(summary.get("tasks") or []) + (f" ({','.join(f'{w:g}' for w in weights)})" if weights
                                                         else f" (tlm {summary['tlm_ratio']:.2f})")
    table.add_row(summary["preset"], ",".join(summary["langs"]), ",".join(summary["pairs"]) or "-",
                  tasks_text, str(summary.get("batch_size", "-")), str(summary["num_updates"]),
                  f"{speeds[len(speeds) // 2]:,.0f}" if speeds else "-",
                  f"{curve[0]['loss']:.3f}" if curve else "-", f"{curve[-1]['loss']:.3f}" if curve else "-",
                  "\n".join(task_losses(curve[-1])) if curve else "-",
                  f"{valid[-1]['valid_loss']:.3f}" if valid else "-")
    console.print(table)
    console.print(f"model directory: {summary['model_dir']}  summary: {Path(out) / 'pretrain.json'}")


@guarded
def inspect(
    path: Path = typer.Argument(..., help="A checkpoint (.pt), a model directory, or a `xling pretrain` --out."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also save the report as JSON."),
    force: bool = typer.Option(False, "--force", help="Replace a --json file that xling did not write."),
):
    """Print a checkpoint's architecture, vocabulary, languages, updates and losses."""
    from xling import checkpoint_info as lib
    from xling.io import write_json_owned
    from xling.outputs import claim_file

    if json_out:
        claim_file(json_out, "--json", force=force)
    report = lib.inspect_checkpoint(path)
    table = Table(title=f"checkpoint {report['checkpoint']}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    for k, v in report.items():
        if k == "checkpoint":
            continue
        table.add_row(k, ", ".join(map(str, v)) if isinstance(v, list) else str(v))
    console.print(table)
    if json_out:
        write_json_owned(json_out, report)
