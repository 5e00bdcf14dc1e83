"""One process of a data-parallel ``xling eval xglue`` run, started by torchrun (see
:func:`xling.xglue.distributed.launch`)::

    python -m torch.distributed.run --standalone --nproc-per-node N -m xling.xglue.worker CONFIG.json RESULT.json

CONFIG.json is the run's :class:`xling.xglue.run.EvalConfig` (:func:`xling.xglue.distributed.config_dict`); process 0 writes
the aggregate to RESULT.json (an :class:`~xling.errors.XlingError` to RESULT.error, exit 2) and shows
the progress; the other processes print nothing.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def config_from_dict(d: dict):
    from xling.xglue.finetune import FinetuneConfig
    from xling.xglue.generate import GenerateConfig
    from xling.xglue.run import EvalConfig

    d = dict(d)
    d["ft"], d["gen"] = FinetuneConfig(**d["ft"]), GenerateConfig(**d["gen"])
    for k in ("model", "data", "out"):
        d[k] = Path(d[k])
    return EvalConfig(**d)


def main(argv: list[str]) -> int:
    from xling.errors import XlingError
    from xling.xglue import distributed
    from xling.xglue.run import evaluate, quiet_logs

    quiet_logs()
    spec, result = Path(argv[0]), Path(argv[1])
    cfg = config_from_dict(json.loads(spec.read_text(encoding="utf-8")))
    rank = int(__import__("os").environ.get("RANK", 0))
    try:
        if rank == 0:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn()) as bar:
                t = bar.add_task(f"fine-tuning ({distributed.world()[1] or 1} processes)", total=None)
                res = evaluate(cfg, on_step=lambda: bar.advance(t))
            result.write_text(json.dumps(res), encoding="utf-8")
        else:
            evaluate(cfg)
    except XlingError as e:
        if rank == 0:
            result.with_suffix(".error").write_text(json.dumps(
                {"message": e.message, "file": e.file, "line": e.line, "fix": e.fix}), encoding="utf-8")
        return 2
    finally:
        distributed.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
