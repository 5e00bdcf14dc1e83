"""``xling align`` (word alignment with eflomal) and ``xling align score`` (P/R/AER)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from xling.cli._common import console, guarded, progress

align_app = typer.Typer(help="Word-align parallel text (eflomal, symmetrized), or score alignments.",
                        invoke_without_command=True, no_args_is_help=False)


@align_app.callback()
@guarded
def align(ctx: typer.Context,
          src: Optional[Path] = typer.Option(None, "--src", help="Source text, one sentence a line."),
          tgt: Optional[Path] = typer.Option(None, "--tgt", help="Target text, line-aligned with --src."),
          input: Optional[Path] = typer.Option(None, "--input", help="One `source ||| target` pair a line "
                                               "(fast_align format), instead of --src/--tgt."),
          out: Optional[Path] = typer.Option(None, "--out", help="Pharaoh output (`i-j`, 0-indexed), one "
                                             "line per input line."),
          sym: str = typer.Option("grow-diag-final-and", "--sym", help="Symmetrization: intersect, union, "
                                  "grow-diag, grow-diag-final, grow-diag-final-and."),
          tokenizer: str = typer.Option("unicode", "--tokenizer", help="`unicode` (punctuation split off, "
                                        "CJK one character a word) or `whitespace` (pre-tokenized text)."),
          lowercase: bool = typer.Option(True, "--lowercase/--keep-case", help="Lowercase before aligning."),
          model: int = typer.Option(3, "--model", help="eflomal model: 1 IBM1, 2 +HMM, 3 +fertility."),
          length: float = typer.Option(1.0, "--length", help="Relative number of sampling iterations."),
          n_samplers: Optional[int] = typer.Option(None, "--n-samplers", help="Independent eflomal "
                                                   "samplers (default: one per usable core, at most 3)."),
          priors: Optional[Path] = typer.Option(None, "--priors", help="eflomal priors file to reuse "
                                                "(written by `eflomal-makepriors`)."),
          save_priors: Optional[Path] = typer.Option(None, "--save-priors", help="Also write eflomal priors "
                                                     "learnt from this run, for --priors on later runs."),
          force: bool = typer.Option(False, "--force", help="Re-run even if --out is up to date."),
          ):
    """Align sentence pairs with eflomal in both directions and symmetrize them."""
    if ctx.invoked_subcommand is not None:
        return
    from xling.align.engine import read_parallel, align_lines
    from xling.align.pharaoh import write_pharaoh
    from xling.errors import XlingError
    from xling.io import read_json, sha256_file, sha256_text, write_json_atomic

    if out is None:
        raise XlingError("missing --out", fix="give --out FILE for the Pharaoh alignments")
    s_lines, t_lines = read_parallel(src, tgt, input)
    opts = dict(sym=sym, tokenizer=tokenizer, lowercase=lowercase, model=model, length=length,
                n_samplers=n_samplers, priors=str(priors) if priors else None)
    files = [p for p in (src, tgt, input, priors) if p is not None]
    fp = sha256_text(repr(sorted(opts.items())) + "".join(sha256_file(p) for p in files))
    meta = out.with_name(out.name + ".json")
    if not force and out.exists() and meta.exists() and read_json(meta).get("fingerprint") == fp:
        console.print(f"{out} is up to date (use --force to redo)")
        return
    with progress() as bar:
        task = bar.add_task("aligning", total=len(s_lines))
        al = align_lines(s_lines, t_lines, progress=lambda n: bar.advance(task, n), save_priors=save_priors,
                         **opts)
        bar.update(task, completed=len(s_lines))
    write_pharaoh(out, al)
    n_links = sum(len(a) for a in al)
    write_json_atomic(meta, {"fingerprint": fp, "pairs": len(al), "links": n_links, "options": opts})
    console.print(f"aligned {len(al)} pairs, {n_links} links -> {out}")


@align_app.command("score")
@guarded
def score(pred: Path = typer.Option(..., "--pred", help="Predicted Pharaoh alignments (0-indexed)."),
          gold: Path = typer.Option(..., "--gold", help="Gold alignments: `i-j` sure, `ipj` possible."),
          gold_one_indexed: bool = typer.Option(False, "--gold-one-indexed", help="Gold indices count from 1."),
          text: Optional[Path] = typer.Option(None, "--text", help="The `source ||| target` pairs (whitespace-"
                                              "tokenized) to check every index against."),
          json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the scores here as JSON."),
          ):
    """Precision, recall and alignment error rate (Och & Ney) with sure and possible links."""
    from rich.table import Table

    from xling.align.engine import read_parallel
    from xling.align.score import score_files
    from xling.io import write_json_atomic

    lengths = None
    if text is not None:
        s, t = read_parallel(input=text)
        lengths = [(len(a.split()), len(b.split())) for a, b in zip(s, t)]
    res = score_files(pred, gold, gold_one_indexed=gold_one_indexed, lengths=lengths)
    table = Table(title=f"alignment scores ({res['pairs']} pairs)")
    for k in ("precision", "recall", "f1", "aer"):
        table.add_column(k.upper() if k == "aer" else k, justify="right")
    table.add_row(*(f"{res[k]:.4f}" for k in ("precision", "recall", "f1", "aer")))
    console.print(table)
    if json_out is not None:
        write_json_atomic(json_out, res)
