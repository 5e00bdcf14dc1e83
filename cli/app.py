"""The ``xling`` Typer application object; :mod:`xling.cli.main` registers the commands on it.

Kept apart from the registration so that a command which runs other commands (``xling demo``) can
reach the assembled app without importing the module that imports it.
"""
from __future__ import annotations

import typer

app = typer.Typer(
    name="xling",
    help="Build and evaluate cross-lingual language models: vocabularies, corpora, alignment, "
         "fairseq pretraining, XGLUE zero-shot evaluation, model import/export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
