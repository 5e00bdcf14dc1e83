import subprocess
import sys

from conftest import cli

import xling


def test_help_lists_every_command_with_help():
    res = cli("--help")
    for cmd in ("prep-vocab", "prep-data"):
        assert cmd in res.output
    from xling.cli.main import app
    import typer.main

    group = typer.main.get_command(app)
    for name, cmd in group.commands.items():
        assert (cmd.help or cmd.short_help or "").strip(), f"command {name} has no help"


def test_version():
    res = cli("--version")
    assert res.output.strip() == f"xling {xling.__version__}"


def test_console_script_and_no_toplevel_cli_module():
    out = subprocess.run(["xling", "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"xling {xling.__version__}"
    # `cli/` is installed as xling.cli; no top-level `cli` package is importable from site-packages.
    code = "import importlib.util,sys; sys.path=[p for p in sys.path if p not in ('', '.')]; " \
           "print(importlib.util.find_spec('cli'))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=True)
    assert r.stdout.strip() == "None"


def test_safe_globals_registered():
    import argparse

    import torch

    from xling.fairseq_compat import ensure_fairseq

    ensure_fairseq()
    assert argparse.Namespace in torch.serialization.get_safe_globals()


def test_error_messages_print_brackets_as_they_are(tmp_path):
    """Messages quote paths and log lines; rich read their brackets as markup: a gloo error's
    '[/__w/.../pair.cc:553]' in a failed run's log tail made the report itself crash (exit 1, no message), and
    '[rank0]:' vanished from it."""
    bad = tmp_path / "[rank0]" / "[/__w/pair.cc:553]" / "ck.pt"
    res = cli("inspect", bad, ok=None)
    assert res.exit_code == 2 and f"{bad}: checkpoint does not exist" in " ".join(res.output.split()), res.output
