"""A pretraining run's checkpoint at update N as a model directory (model.pt without optimizer state, dict.txt,
sentencepiece.bpe.model), for one evaluation of a checkpoint stage.

``python -m xling.experiment.models PRETRAIN_OUT N DEST``: a step of :mod:`xling.experiment.plan`; a DEST already
written from the same checkpoint file is kept (re-running skips it).
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from xling.errors import XlingError


def checkpoint_at(run: Path, update: int) -> Path:
    """``RUN/checkpoints/checkpoint_E_N.pt`` (fairseq's interval save of update N), or checkpoint_last.pt when the
    run ended at N on an epoch's end (fairseq then writes no interval file)."""
    from xling.pretrain.checkpoints import checkpoint_updates

    ck = Path(run) / "checkpoints"
    found = sorted(ck.glob(f"checkpoint_*_{update}.pt"))
    if found:
        return found[-1]
    last = ck / "checkpoint_last.pt"
    if last.is_file() and checkpoint_updates(last) == update:
        return last
    have = sorted(int(p.stem.rsplit("_", 1)[1]) for p in ck.glob("checkpoint_*_*.pt") if p.stem.rsplit("_", 1)[1].isdigit())
    raise XlingError(f"no checkpoint of update {update} in {ck}", file=ck,
                     fix=f"evaluate updates that were saved ({', '.join(map(str, have)) or 'none'}); the experiment "
                         "saves every gcd of the evaluated updates when its pretrain stage sets no save_interval")


def export(run: Path, update: int, dest: Path) -> Path:
    import torch

    from xling.io import atomic_dir
    from xling.pretrain.checkpoints import load_state, without_training_speed_options

    src = checkpoint_at(run, update)
    st = src.stat()
    stamp = {"checkpoint": str(src.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "update": update}
    done = Path(dest) / "source.json"
    if done.is_file() and json.loads(done.read_text(encoding="utf-8")) == stamp:
        return Path(dest)
    state = without_training_speed_options(load_state(src))
    state.pop("last_optimizer_state", None)
    model = Path(run) / "model"
    with atomic_dir(dest, command="experiment checkpoint") as tmp:
        torch.save(state, tmp / "model.pt")
        for name in ("dict.txt", "sentencepiece.bpe.model"):
            if (model / name).is_file():
                shutil.copyfile(model / name, tmp / name)
        (tmp / "source.json").write_text(json.dumps(stamp) + "\n", encoding="utf-8")
    return Path(dest)


def main(argv: list[str]) -> int:
    try:
        export(Path(argv[0]), int(argv[1]), Path(argv[2]))
    except XlingError as e:
        print(f"error: {e.render()}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
