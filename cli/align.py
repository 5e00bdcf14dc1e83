"""``xling align`` (word alignment with eflomal) and ``xling align score`` (P/R/AER): flags onto xling.align."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from xling.cli._common import console, err_console, guarded, progress
from xling.cli._ranges import in_range

align_app = typer.Typer(help="Word-align parallel text (eflomal, symmetrized), or score alignments.",
                        invoke_without_command=True, no_args_is_help=False)

_PHASES = {"reading": "reading + numbering text (bytes)", "sampling": "eflomal sampling (iterations, both directions)",
           "writing": "symmetrizing + writing (pairs)"}


@align_app.callback()
@guarded
def align(ctx: typer.Context,
          src: Optional[Path] = typer.Option(None, "--src", help="Source text, one sentence a line."),
          tgt: Optional[Path] = typer.Option(None, "--tgt", help="Target text, line-aligned with --src."),
          input: Optional[Path] = typer.Option(None, "--input", help="One `source ||| target` pair a line "
                                               "(fast_align format: already tokenized), instead of --src/--tgt."),
          out: Optional[Path] = typer.Option(None, "--out", help="Pharaoh output (`i-j`, 0-indexed), one line per "
                                             "input line; OUT.json records the run."),
          sym: str = typer.Option("grow-diag-final-and", "--sym", help="Symmetrization: intersect, union, "
                                  "grow-diag, grow-diag-final, grow-diag-final-and."),
          tokenizer: str = typer.Option("unicode", "--tokenizer", help="`unicode`: punctuation split off, CJK one "
                                        "character a word; `whitespace`: spaces only. With --input (tokenized "
                                        "text) links always index the input's own space-separated tokens: finer "
                                        "words are aligned, each direction's links mapped back, then symmetrized."),
          lowercase: bool = typer.Option(True, "--lowercase/--keep-case", help="Lowercase before aligning."),
          model: int = typer.Option(3, "--model", callback=in_range("--model", 1, 3, fix="1 (IBM1), 2 (+HMM) or "
                                    "3 (+fertility)"), help="eflomal model: 1 IBM1, 2 +HMM, 3 +fertility."),
          fast: bool = typer.Option(False, "--fast", help="Preset: --length 0.5 (at least 4 iterations), 1 sampler per "
                                 "direction: about 2/3 of the default's sampling time at 100k pairs, somewhat higher "
                                 "AER (default: --length 0.75, at least 8 iterations, 1 sampler)."),
          accurate: bool = typer.Option(False, "--accurate", help="Preset: eflomal-align's own settings (--length 1, 3 "
                                     "samplers, its iteration schedule): about 5x the default's sampling time."),
          length: Optional[float] = typer.Option(None, "--length", help="Sampling iterations relative to eflomal's "
                                                 "5000/sqrt(pairs) per run (overrides the preset's; its floor stays)."),
          n_samplers: Optional[int] = typer.Option(None, "--n-samplers", min=1, help="Independent samplers per direction "
                                                   "(overrides the preset)."),
          run_pairs: int = typer.Option(500_000, "--run-pairs", help="Pairs per eflomal run: larger corpora are "
                                        "aligned in consecutive runs of this size, so memory stays bounded "
                                        "(eflomal holds its whole input); 0 = one run."),
          priors: Optional[Path] = typer.Option(None, "--priors", help="eflomal priors file to reuse "
                                                "(written by --save-priors or `eflomal-makepriors`)."),
          save_priors: Optional[Path] = typer.Option(None, "--save-priors", help="Also write eflomal priors "
                                                     "learnt from this run, for --priors on later runs."),
          seed: int = typer.Option(1, "--seed", callback=in_range("--seed", 0, 2 ** 63 - 1, fix="e.g. --seed 1"),
                                   help="Seed of eflomal's samplers: the same input, options and seed give the "
                                        "same links."),
          force: bool = typer.Option(False, "--force", help="Re-run even if --out is up to date; replace a --out "
                                     "that xling did not write."),
          ):
    """Align sentence pairs with eflomal in both directions and symmetrize them."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from xling.align import align_cached
    from xling.errors import XlingError

    if out is None:
        raise XlingError("missing --out", fix="give --out FILE for the Pharaoh alignments")
    if fast and accurate:
        raise XlingError("--fast and --accurate exclude each other", fix="give one of them")
    preset = "fast" if fast else "accurate" if accurate else "default"
    with progress() as bar:
        tasks: dict[str, int] = {}

        def report(phase: str, done: float, total: float):
            if phase not in tasks:
                tasks[phase] = bar.add_task(_PHASES[phase], total=total)
            bar.update(tasks[phase], completed=done, total=total)

        rec = align_cached(out, src=src, tgt=tgt, input=input, force=force, progress=report, save_priors=save_priors,
                           sym=sym, tokenizer=tokenizer, lowercase=lowercase, model=model, preset=preset,
                           length=length, n_samplers=n_samplers, priors=priors, run_pairs=run_pairs, seed=seed)
    if rec["skipped"]:
        console.print(f"{out} is up to date (use --force to redo)")
        return
    t = Table(title=f"xling align -> {out}")
    for c in ("pairs", "links", "read+number s", "eflomal s", "symmetrize+write s"):
        t.add_column(c, justify="right")
    t.add_row(str(rec["pairs"]), str(rec["links"]), f"{rec['read_tokenize_number_s']:.1f}", f"{rec['eflomal_s']:.1f}",
              f"{rec['links_symmetrize_write_s']:.1f}")
    console.print(t)
    console.print(f"aligned {rec['pairs']} pairs, {rec['links']} links -> {out}")


@align_app.command("score")
@guarded
def score(pred: Path = typer.Option(..., "--pred", help="Predicted Pharaoh alignments (0-indexed)."),
          gold: Path = typer.Option(..., "--gold", help="Gold alignments: `i-j` sure, `ipj` possible."),
          gold_one_indexed: bool = typer.Option(False, "--gold-one-indexed", help="Gold indices count from 1."),
          text: Optional[Path] = typer.Option(None, "--text", help="The `source ||| target` pairs (whitespace-"
                                              "tokenized) to check every index against."),
          json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the scores here as JSON."),
          force: bool = typer.Option(False, "--force", help="Replace a --json file that xling did not write."),
          ):
    """Precision, recall and alignment error rate (Och & Ney) with sure and possible links."""
    from rich.table import Table

    from xling.align.score import score_files
    from xling.align.source import read_parallel
    from xling.io import write_json_owned
    from xling.outputs import claim_file

    if json_out is not None:
        claim_file(json_out, "--json", force=force)
    lengths = None
    if text is not None:
        s, t = read_parallel(input=text)
        lengths = [(len(a.split()), len(b.split())) for a, b in zip(s, t)]
    res = score_files(pred, gold, gold_one_indexed=gold_one_indexed, lengths=lengths)
    for w in res["warnings"]:
        err_console.print(f"[bold yellow]warning:[/] {w}", highlight=False)
    table = Table(title=f"alignment scores ({res['pairs']} pairs)")
    for k in ("precision", "recall", "f1", "aer"):
        table.add_column(k.upper() if k == "aer" else k, justify="right")
    table.add_row(*(f"{res[k]:.4f}" for k in ("precision", "recall", "f1", "aer")))
    console.print(table)
    if json_out is not None:
        write_json_owned(json_out, res)
