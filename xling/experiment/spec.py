"""An experiment file: named stages, each one xling command with its options and the stages it needs.

::

    name: tiny                       # the experiment (default: the file's stem)
    dir: runs/tiny                   # where its outputs go (default: runs/NAME; `xling run --dir` overrides)
    vars: {shared: ../shared/data}   # anything, for ${vars.x} interpolation (OmegaConf; ${oc.env:VAR,default})
    stages:
      vocab:
        command: prep-vocab          # any xling command, words separated by spaces (`eval xglue`)
        options: {vocab_size: 1200, input: [en=..., fr=...]}   # the command's option names, as in --config
      data:
        command: prep-data
        after: [vocab]               # stages that must finish first
        options: {vocab: "${dir}/vocab"}
      eval_pos:
        command: eval xglue
        after: [pretrain]
        checkpoints: {of: pretrain, every: 10}   # or updates: [10, 20]: one evaluation per checkpoint

``${dir}`` is the experiment directory (absolute); a stage whose command has ``--out`` and does not set it
writes ``${dir}/STAGE``. Relative paths are relative to the directory ``xling run`` is started from.
"""
from __future__ import annotations

import difflib
import graphlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from xling.errors import XlingError

TOP_KEYS = ("name", "dir", "vars", "stages")
STAGE_KEYS = ("command", "options", "after", "checkpoints")
CHECKPOINT_KEYS = ("of", "every", "updates")


@dataclass
class Checkpoints:
    """Evaluate these updates of the pretraining stage ``of`` (each its own model directory)."""
    of: str
    every: Optional[int] = None
    updates: Optional[list[int]] = None


@dataclass
class Stage:
    name: str
    command: list[str]
    options: dict = field(default_factory=dict)
    after: list[str] = field(default_factory=list)
    checkpoints: Optional[Checkpoints] = None


@dataclass
class Experiment:
    name: str
    dir: Path
    stages: dict[str, Stage]
    file: Path

    def order(self) -> list[str]:
        """Stage names, every stage after the stages it needs (file order among independent ones)."""
        ts = graphlib.TopologicalSorter({n: s.after for n, s in self.stages.items()})
        try:
            ts.prepare()
        except graphlib.CycleError as e:
            raise XlingError("stages depend on each other in a cycle: " + " -> ".join(e.args[1]), file=self.file,
                             fix="remove one of the `after` entries of that cycle") from None
        out, pos = [], {n: i for i, n in enumerate(self.stages)}
        while ts.is_active():
            ready = sorted(ts.get_ready(), key=pos.get)
            out += ready
            ts.done(*ready)
        return out

    def dependents(self, name: str) -> list[str]:
        """Every stage that needs ``name``, directly or not."""
        out, todo = [], [name]
        while todo:
            cur = todo.pop()
            for n, s in self.stages.items():
                if cur in s.after and n not in out:
                    out.append(n)
                    todo.append(n)
        return [n for n in self.order() if n in out]


def _unknown(what: str, key: str, valid, file: Path) -> XlingError:
    near = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.6)
    return XlingError(f"unknown {what} {key!r}", file=file,
                      fix=(f"did you mean {near[0]!r}? " if near else "") + "valid: " + ", ".join(valid))


def load(path: Path, dir_override: Optional[Path] = None) -> Experiment:
    """Read and check an experiment file (interpolations resolved with ``${dir}`` absolute)."""
    from omegaconf import OmegaConf

    path = Path(path)
    if not path.is_file():
        raise XlingError("experiment file not found", file=path, fix="give the path of an experiment YAML file")
    try:
        cfg = OmegaConf.load(path)
    except Exception as e:  # yaml and omegaconf errors alike
        raise XlingError(f"cannot read the experiment: {str(e).splitlines()[0]}", file=path,
                         fix="fix the YAML syntax") from None
    if not isinstance(OmegaConf.to_container(cfg), dict):
        raise XlingError("an experiment file is a mapping with `stages`", file=path, fix="see docs/experiments.md")
    for k in cfg:
        if k not in TOP_KEYS:
            raise _unknown("top-level key", k, TOP_KEYS, path)
    name = str(cfg.get("name") or path.stem)
    d = Path(dir_override or cfg.get("dir") or Path("runs") / name).absolute()
    cfg.dir = str(d)
    try:
        data = OmegaConf.to_container(cfg, resolve=True)
    except Exception as e:
        raise XlingError(f"cannot resolve the experiment's ${{...}} references: {str(e).splitlines()[0]}",
                         file=path, fix="refer to existing keys (${dir}, ${vars.NAME}, ${oc.env:VAR,default})") from None
    raw = data.get("stages")
    if not isinstance(raw, dict) or not raw:
        raise XlingError("the experiment has no stages", file=path, fix="add a `stages:` mapping of named stages")
    stages = {}
    for sname, s in raw.items():
        if not isinstance(s, dict) or "command" not in s:
            raise XlingError(f"stage {sname!r} has no command", file=path,
                             fix="give it `command:` (an xling command such as prep-vocab or eval xglue)")
        for k in s:
            if k not in STAGE_KEYS:
                raise _unknown(f"key of stage {sname!r}:", k, STAGE_KEYS, path)
        after = s.get("after") or []
        after = [after] if isinstance(after, str) else list(after)
        for a in after:
            if a not in raw:
                raise _unknown(f"stage in the `after` of {sname!r}:", a, list(raw), path)
        opts = s.get("options") or {}
        if not isinstance(opts, dict):
            raise XlingError(f"the options of stage {sname!r} must be a mapping", file=path,
                             fix="write `options: {option_name: value, ...}`")
        ck = _checkpoints(sname, s.get("checkpoints"), raw, path)
        if ck is not None and ck.of not in after:  # a checkpoint evaluation waits for its pretraining
            after.append(ck.of)
        stages[sname] = Stage(str(sname), str(s["command"]).split(), opts, after, ck)
    exp = Experiment(name, d, stages, path)
    exp.order()
    return exp


def _checkpoints(sname: str, c, raw: dict, path: Path) -> Optional[Checkpoints]:
    if c is None:
        return None
    if isinstance(c, list):
        c = {"updates": c}
    if not isinstance(c, dict):
        raise XlingError(f"checkpoints of stage {sname!r}: a mapping or a list of updates", file=path,
                         fix="write `checkpoints: {of: pretrain, every: 10}` or `{of: pretrain, updates: [10, 20]}`")
    for k in c:
        if k not in CHECKPOINT_KEYS:
            raise _unknown(f"key of the checkpoints of {sname!r}:", k, CHECKPOINT_KEYS, path)
    of = c.get("of") or next((n for n, s in raw.items() if str(s.get("command", "")).strip() == "pretrain"), None)
    if of not in raw or str(raw[of].get("command", "")).strip() != "pretrain":
        raise XlingError(f"the checkpoints of stage {sname!r} need a pretrain stage (`of:`), got {of!r}", file=path,
                         fix="name the pretraining stage whose checkpoints are evaluated")
    every, updates = c.get("every"), c.get("updates")
    if (every is None) == (updates is None):
        raise XlingError(f"the checkpoints of stage {sname!r}: give one of `every` and `updates`", file=path,
                         fix="every: N (each N updates up to the run's --max-updates) or updates: [N, M, ...]")
    bad = [u for u in ([every] if every is not None else updates) if not isinstance(u, int) or u <= 0]
    if bad:
        raise XlingError(f"the checkpoints of stage {sname!r}: updates must be positive integers, got {bad[0]!r}",
                         file=path, fix="write whole numbers of updates, e.g. updates: [10, 20]")
    return Checkpoints(of, every, sorted(set(updates)) if updates else None)
