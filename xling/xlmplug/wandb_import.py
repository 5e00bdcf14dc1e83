"""fairseq imports wandb whenever it is installed (``fairseq/logging/progress_bar.py``, during ``import fairseq``):
a few tenths of a second in every process that imports fairseq (a pretraining's launcher, each of its ranks), whether
it logs to W&B or not. :func:`unless_asked` keeps wandb out of that import unless the process's command line asks
for W&B (fairseq's ``--wandb-project``; a rank that fairseq spawns gets its parent's ``sys.argv``); ``import
wandb`` works again afterwards for anything else in the process. :func:`bind` readies fairseq's W&B writer in a trainer
that asks for it.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Optional

FLAG = "--wandb-project"


def asked(argv: list[str]) -> bool:
    """Whether ``argv`` asks fairseq to log to W&B."""
    return any(a == FLAG or str(a).startswith(FLAG + "=") for a in argv)


@contextmanager
def unless_asked(argv: Optional[list[str]] = None):
    """While in the block, ``import wandb`` fails (ImportError, which fairseq expects when wandb is missing) unless
    ``argv`` (default ``sys.argv``) asks for W&B or wandb is imported already."""
    block = "wandb" not in sys.modules and not asked(sys.argv if argv is None else argv)
    if block:
        sys.modules["wandb"] = None  # the import system's "not importable" mark
    try:
        yield
    finally:
        if block and "wandb" in sys.modules and sys.modules["wandb"] is None:
            del sys.modules["wandb"]


def bind() -> None:
    """fairseq's W&B writer with wandb (imported now if fairseq's own import went without it), starting the run
    once per process: fairseq calls ``wandb.init(reinit=False)`` for every progress bar (each epoch, each
    validation), which returns the running run but makes an empty run folder each time and warns that a boolean
    ``reinit`` is deprecated (wandb 0.31)."""
    from fairseq.logging import progress_bar

    if progress_bar.wandb is None:
        import wandb

        progress_bar.wandb = wandb
    cls = progress_bar.WandBProgressBarWrapper
    if getattr(cls.__init__, "xling_once", False):
        return

    def __init__(self, wrapped_bar, wandb_project, run_name=None):
        self.wrapped_bar = wrapped_bar
        if progress_bar.wandb.run is None:  # else this process's run goes on
            progress_bar.wandb.init(project=wandb_project, name=run_name)

    __init__.xling_once = True
    cls.__init__ = __init__


def train_then_finish(cfg, **kwargs):
    """fairseq's training (``fairseq_cli.train.main``), then this process's W&B run finished there and then (its
    last update's row, open until the run ends, written), not left to wandb's exit hook at interpreter shutdown."""
    from fairseq_cli.train import main as train_main

    ok = False
    try:
        train_main(cfg, **kwargs)
        ok = True
    finally:
        wandb = sys.modules.get("wandb")
        if wandb is not None and wandb.run is not None:
            wandb.run.finish(exit_code=0 if ok else 1)
