"""``xling``: one command line from raw multilingual text to a results table."""
from __future__ import annotations

from typing import Optional

import typer

from xling import __version__
from xling.cli.app import app


def _version(value: bool):
    if value:
        typer.echo(f"xling {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                                 help="Print the version and exit.")):
    """xling command line."""


def _register():
    from xling.cli import prep

    app.command("prep-vocab", help="Train one shared SentencePiece vocabulary over many languages "
                "(alpha-smoothed sampling); write spm model, fairseq dict and stats.")(prep.prep_vocab)
    app.command("prep-data", help="Clean, dedupe, filter, encode and binarize mono and parallel text "
                "into fairseq datasets with a manifest.")(prep.prep_data)
    from xling.cli import demo

    app.command("demo", help="Run the end-to-end demo on real multilingual text "
                "(Django's translation catalogs from PyPI).")(demo.demo)
    from xling.cli import convert

    app.add_typer(convert.import_app, name="import")
    app.add_typer(convert.export_app, name="export")
    from xling.cli import pretrain as pretrain_cli
    from xling.cli._slurm import ExecutorCommand, RunCommand

    app.command("pretrain", cls=ExecutorCommand, help="Pretrain with fairseq: a cross-lingual encoder (multilingual MLM, TLM, "
                "Unicoder-style tasks via --tasks) or an encoder-decoder by multilingual denoising "
                "(--arch seq2seq --tasks xdae).")(pretrain_cli.pretrain)
    app.command("inspect", help="Print a checkpoint's architecture, vocabulary, languages, updates "
                "and losses.")(pretrain_cli.inspect)

    from xling.cli import evaluate as evaluate_cli

    from xling.cli import retrieval as retrieval_cli

    evaluate_cli.eval_app.command("retrieval", help="Cross-lingual sentence retrieval without fine-tuning: "
                                  "Tatoeba top-1 accuracy, BUCC-style mining F1; any layer, mean/cls "
                                  "pooling, cosine or margin.")(retrieval_cli.retrieval)
    from xling.cli import compare as compare_cli

    evaluate_cli.eval_app.command("compare", help="Is run B better than run A? Paired bootstrap per task and "
                                  "language: difference, 95% CI, p-value (eval xglue or eval retrieval "
                                  "outputs on the same data).")(compare_cli.compare)
    app.add_typer(evaluate_cli.eval_app, name="eval")

    from xling.cli import align as align_cli

    app.add_typer(align_cli.align_app, name="align")
    from xling.cli import run as run_cli

    app.command("run", cls=RunCommand, help="Run an experiment file's stages (vocab, data, align, pretrain, eval...) in order, "
                "what is not finished; --status shows each stage's state, --dry-run the commands.")(run_cli.run)


_register()

from xling.cli._config import install as _install_config  # noqa: E402  (--config FILE on every command)

_install_config(app)


def main():
    from xling.cli._common import terminate_as_interrupt

    terminate_as_interrupt()
    app()


if __name__ == "__main__":
    main()
