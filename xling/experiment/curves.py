"""The table of a checkpoint evaluation stage: one row per checkpoint (update) x task x language, from each
checkpoint's ``eval xglue`` results, saved as ``STAGE/checkpoints.json``, with ``STAGE/zero_shot.png``: each
task's zero-shot test score (mean over the languages other than the training language) against updates.

``python -m xling.experiment.curves STAGE_DIR N M ... [--tensorboard LOGDIR] [--wandb PROJECT]``: the last step of
such a stage.
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from xling.errors import XlingError


def rows(stage_dir: Path, updates: list[int]) -> list[dict]:
    out = []
    for u in updates:
        res = Path(stage_dir) / f"u{u}" / "results.json"
        if not res.is_file():
            raise XlingError(f"checkpoint {u} has no results", file=res, fix="re-run the experiment (xling run)")
        r = json.loads(res.read_text(encoding="utf-8"))
        for task, t in r["tasks"].items():
            for lg in r["langs"]:
                cells = {sp: t["splits"][sp]["langs"].get(lg) for sp in ("dev", "test")}
                if all(c is None for c in cells.values()):
                    continue
                out.append({"update": u, "task": task, "lang": lg, "zero_shot": lg != r["train_lang"],
                            **{sp: (c["mean"] if c else None) for sp, c in cells.items()}})
    return out


def zero_shot(table: list[dict]) -> dict[str, dict[int, float]]:
    """``{task: {update: mean zero-shot test score}}``."""
    out: dict[str, dict[int, list]] = {}
    for r in table:
        if r["zero_shot"] and r["test"] is not None:
            out.setdefault(r["task"], {}).setdefault(r["update"], []).append(r["test"])
    return {t: {u: statistics.fmean(v) for u, v in sorted(d.items())} for t, d in out.items()}


def write(stage_dir: Path, updates: list[int]) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xling.io import write_json_atomic

    table = rows(stage_dir, updates)
    curves = zero_shot(table)
    report = {"kind": "xling-experiment-checkpoints", "updates": updates, "rows": table,
              "zero_shot": {t: {str(u): s for u, s in d.items()} for t, d in curves.items()}}
    write_json_atomic(Path(stage_dir) / "checkpoints.json", report)
    fig, ax = plt.subplots(figsize=(6, 4))
    for task, d in curves.items():
        ax.plot(list(d), list(d.values()), marker="o", label=task)
    ax.set_xlabel("pretraining updates")
    ax.set_ylabel("zero-shot test score (mean over languages)")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend()
    fig.tight_layout()
    tmp = Path(stage_dir) / ".zero_shot.png.tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(Path(stage_dir) / "zero_shot.png")
    return report


def checkpoint_scalars(report: dict) -> dict[int, dict[str, float]]:
    """A checkpoint stage's scores by update: ``{update: {"TASK/LANG/dev|test": score, "TASK/zero_shot": score}}``
    (what both trackers log)."""
    at: dict[int, dict[str, float]] = {}
    for r in report["rows"]:
        for split in ("dev", "test"):
            if r[split] is not None:
                at.setdefault(int(r["update"]), {})[f"{r['task']}/{r['lang']}/{split}"] = r[split]
    for task, curve in report["zero_shot"].items():
        for u, score in curve.items():
            at.setdefault(int(u), {})[f"{task}/zero_shot"] = score
    return dict(sorted(at.items()))


def main(argv: list[str]) -> int:
    track = {}
    for flag in ("--tensorboard", "--wandb"):
        if flag in argv:
            i = argv.index(flag)
            track[flag], argv = argv[i + 1], argv[:i] + argv[i + 2:]
    try:
        report = write(Path(argv[0]), [int(a) for a in argv[1:]])
        scalars = checkpoint_scalars(report)
        if "--tensorboard" in track:
            from xling.experiment.track import log_checkpoints

            log_checkpoints(Path(track["--tensorboard"]), scalars)
        if "--wandb" in track:
            from xling.experiment import track_wandb

            track_wandb.log_checkpoints(track["--wandb"], scalars)
    except XlingError as e:
        print(f"error: {e.render()}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
