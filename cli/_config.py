"""``--config FILE`` for every command, in one place: the file's keys are the command's option names.

Mechanism (no per-command code): :func:`install` gives each command of the Typer app the click class
:class:`ConfigCommand`, which adds an eager ``--config`` option. Its callback reads the file (YAML through
OmegaConf, or TOML), checks every key against the command's own click parameters, converts every value with the
parameter's own type (so the Typer declaration stays the one place an option is declared) and puts the values in
click's ``default_map`` (Typer's own click core, ``typer._click``, since Typer 0.2x). click then takes a value from the command line first, then from ``default_map``, then the
declared default; options whose declared default is "the preset's / the recipe's" (None) keep meaning that, so
the precedence is: command line > config > preset > default.

After a command succeeds, its resolved options (every value it ran with, paths absolute) are written to
``OUT/config.yaml`` when it has an ``--out`` directory: ``--config OUT/config.yaml`` repeats the run.
"""
from __future__ import annotations

import difflib
import enum
import os
import re
from pathlib import Path
from typing import Any, Optional

import typer
from typer._click.core import Context
from typer._click.exceptions import BadParameter
from typer.core import TyperArgument, TyperCommand, TyperOption

from xling.errors import XlingError

CONFIG_NAME = "config.yaml"
HEADER = "# written by xling"
# never recorded: how a run was invoked, not what it computes
NOT_RECORDED = {"config", "dry_run"}


def read_file(path: Path) -> dict:
    """The mapping in a YAML (OmegaConf: ``${oc.env:VAR,default}`` interpolations resolve) or TOML file."""
    path = Path(path)
    if not path.is_file():
        raise XlingError("config file not found" if not path.exists() else "config file is not a file", file=path,
                         fix="give the path of a YAML (.yaml/.yml) or TOML (.toml) file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            from omegaconf import OmegaConf

            data = OmegaConf.to_container(OmegaConf.create(text or "{}"), resolve=True)
    except Exception as e:  # yaml.YAMLError, tomllib.TOMLDecodeError, omegaconf's errors: one message
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        m = re.search(r"line (\d+)", str(e))
        line = line + 1 if line is not None else int(m.group(1)) if m else None
        raise XlingError(f"cannot read the config: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
                         file=path, line=line, fix="fix the syntax (YAML `key: value`, TOML `key = value`)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise XlingError("a config file must be a mapping of option names to values", file=path,
                         fix="write one `option_name: value` a line")
    return data


def key_line(path: Path, key: str) -> int | None:
    """The first line of ``path`` that sets ``key`` (for error messages), or None."""
    try:
        for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if re.match(rf"^\s*['\"]?{re.escape(key)}['\"]?\s*[:=]", line):
                return i
    except OSError:
        pass
    return None


def _flag(p) -> str:
    return max(p.opts, key=len) if p.opts else p.name


def defaults_from(command, ctx: Context, path: Path, data: dict) -> dict:
    """``data`` checked against ``command``'s parameters: ``{param name: value}`` for click's ``default_map``.
    An unknown key or a value the parameter's type refuses is an :class:`XlingError` naming the file, the line,
    the key and the fix."""
    params = {p.name: p for p in command.params if p.expose_value and p.name not in NOT_RECORDED}
    out = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        p = params.get(name)
        if p is None:
            near = difflib.get_close_matches(name, params, n=1, cutoff=0.6)
            raise XlingError(f"unknown key {key!r} for `{ctx.command_path}`", file=path, line=key_line(path, key),
                             fix=(f"did you mean {near[0]!r}? " if near else "") + "valid keys: "
                                 + ", ".join(sorted(params)))
        if value is None:
            continue
        if getattr(p, "multiple", False) or p.nargs == -1:
            value = list(value) if isinstance(value, (list, tuple)) else [value]
        elif isinstance(value, (list, tuple)):  # a comma-separated option (langs: [en, fr] -> "en,fr")
            value = ",".join(map(str, value))
        try:
            coerced = p.get_runtime_param().coerce(value, param=p, ctx=ctx)
            if p.callback is not None and not p.is_eager:  # the option's own checks (cli/_ranges.py's ranges)
                p.callback(ctx, p, coerced)
        except BadParameter as e:
            raise XlingError(f"bad value {value!r} for {key!r} ({_flag(p)}): {e.format_message()}", file=path,
                             line=key_line(path, key), fix=f"give {key} a value that {_flag(p)} accepts "
                                                           f"(`{ctx.command_path} --help`)") from None
        out[name] = value
    return out


def _load(ctx: typer.Context, value: Optional[Path] = None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    from xling.cli._common import _report

    try:
        values = defaults_from(ctx.command, ctx, Path(value), read_file(Path(value)))
    except XlingError as e:
        _report(e)
        raise typer.Exit(e.exit_code) from None
    ctx.default_map = {**(ctx.default_map or {}), **values}


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value.absolute())
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def resolved(ctx: Context) -> dict:
    """The options a command ran with (None: unset, left out), paths absolute: a config that repeats the run."""
    return {k: _plain(v) for k, v in ctx.params.items() if k not in NOT_RECORDED and v is not None
            and not (isinstance(v, (list, tuple)) and not v)}


def command_name(ctx: Context) -> str:
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    return " ".join(reversed(names))


def record(ctx: Context) -> Path | None:
    """Write the resolved options to ``OUT/config.yaml`` (OUT: the command's ``--out`` directory) and add the
    file to OUT's record of xling's outputs. A config.yaml there that xling did not write is left alone."""
    out = ctx.params.get("out")
    if not isinstance(out, Path) or not out.is_dir() or ctx.params.get("dry_run"):
        return None
    import yaml

    from xling import outputs

    path = out / CONFIG_NAME
    if path.exists() and not path.read_text(encoding="utf-8", errors="replace").startswith(HEADER):
        return None
    name = command_name(ctx)
    text = (f"{HEADER} {name}: the options of the run that wrote this directory (command line > config > preset"
            f" > default).\n# Repeat it with: xling {name} --config {path.absolute()}\n"
            + yaml.safe_dump(resolved(ctx), sort_keys=False, allow_unicode=True))
    tmp = out / f".{CONFIG_NAME}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    rec_path = out / outputs.RECORD
    rec = outputs.read_record(out)
    if rec is not None:  # config.yaml is xling's own output: later runs must not take it for a user's file
        import json

        rec["files"][CONFIG_NAME] = outputs._stamp(path)
        rec_path.write_text(json.dumps(rec, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return path


class ConfigCommand(TyperCommand):
    """A Typer command with ``--config FILE`` and the resolved options recorded in ``OUT/config.yaml``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not any(p.name == "config" for p in self.params):
            self.params.insert(0, _config_option())

    def invoke(self, ctx: Context):
        rv = super().invoke(ctx)
        record(ctx)
        return rv


def _config_option() -> TyperOption:
    """The ``--config`` option, declared the Typer way (Typer builds its click parameter)."""
    helper = typer.Typer()

    @helper.command()
    def _f(config: Optional[Path] = typer.Option(
            None, "--config", is_eager=True, expose_value=False, callback=_load, dir_okay=False,
            help="YAML or TOML file of this command's options (keys: option names, e.g. max_updates: 100); the "
                 "command line overrides it, it overrides presets and defaults.")):
        pass

    return typer.main.get_command(helper).params[0]


def install(app: typer.Typer) -> None:
    """Give every command of ``app`` and of its sub-apps ``--config`` (before click objects are built)."""
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = ConfigCommand
    for group in app.registered_groups:
        if group.typer_instance is not None:
            install(group.typer_instance)
