"""``xling eval retrieval``: thin flag mapping onto :mod:`xling.retrieval`."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from xling.cli._common import console, guarded, progress
from xling.cli._ranges import in_range
from xling.errors import XlingError


def _csv(text: Optional[str]) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def _bitexts(values: list[str]) -> list[tuple[Path, Path]]:
    out = []
    for v in values:
        parts = v.split(",")
        if len(parts) != 2 or not all(parts):
            raise XlingError(f"--bitext {v!r} is not SRC_FILE,TGT_FILE",
                             fix="--bitext de.txt,en.txt (line i of one translates line i of the other)")
        out.append((Path(parts[0]), Path(parts[1])))
    return out


@guarded
def retrieval(
    model: Path = typer.Option(..., "--model", "-m", help="Model directory: model.pt, dict.txt, "
                               "sentencepiece.bpe.model."),
    task: str = typer.Option("tatoeba", help="Task spec: tatoeba (top-1 retrieval), bucc (BUCC 2018 mining "
                             "files), tatoeba-mining (BUCC-style mining built from Tatoeba pairs)."),
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="Directory of the task's files (XTREME, "
                                        "LASER or tatoeba.xx-en.xx names)."),
    bitext: Optional[List[str]] = typer.Option(None, "--bitext", help="SRC_FILE,TGT_FILE of a line-aligned "
                                               "pair; repeat for several (replaces --task/--data)."),
    langs: str = typer.Option("", help="Task: languages paired with English (default: all found); --bitext: "
                              "one name per pair, e.g. de-en,fr-en."),
    split: Optional[str] = typer.Option(None, help="Split of split-based tasks (bucc: dev by default)."),
    pooling: str = typer.Option("mean", help="mean (over all real tokens, <s> and </s> included) or cls."),
    layer: str = typer.Option("last", help="Layer: N (0 = embeddings), N,M, last or all (every layer; "
                              "one forward pass)."),
    prefix: str = typer.Option("", help="Text put before every sentence (e5 models: 'query: ')."),
    similarity: str = typer.Option("cosine", help="cosine, or margin (ratio margin of Artetxe & Schwenk 2019)."),
    margin_k: int = typer.Option(4, min=1, help="Neighbours averaged by the margin's denominator."),
    batch_size: int = typer.Option(64, min=1, help="Sentences per forward pass."),
    max_length: int = typer.Option(0, help="Pieces per sentence with <s> and </s>; 0 = the model's maximum."),
    max_sentences: Optional[int] = typer.Option(None, callback=in_range("--max-sentences", 1, fix="leave it out for "
                                                "all pairs, or e.g. --max-sentences 200"),
                                                help="Only the first N pairs of each bitext (quick runs; not official "
                                                     "numbers)."),
    device: str = typer.Option("auto", help="auto (cuda when available), cpu, cuda or cuda:N."),
    out: Path = typer.Option(Path("retrieval-out"), "--out", "-o", help="Output directory."),
):
    """Embed both sides of each pair and retrieve translations: top-1 accuracy both ways (or mining F1)."""
    from xling.retrieval.embed import EmbedConfig
    from xling.retrieval.report import rich_table
    from xling.retrieval.run import RetrievalConfig, evaluate

    cfg = RetrievalConfig(model=model, task=task, data=data, langs=_csv(langs), bitexts=_bitexts(bitext or []),
                          split=split, layer=layer, similarity=similarity, margin_k=margin_k, out=out,
                          max_sentences=max_sentences,
                          embed=EmbedConfig(pooling=pooling, prefix=prefix, batch_size=batch_size,
                                            max_length=max_length, device=device))
    with progress() as bar:
        t = bar.add_task("encoding", total=None)
        result = evaluate(cfg, on_progress=lambda name, done, total: bar.update(
            t, completed=done, total=total, description=f"encoding {name}"))
    if result.get("skipped"):
        console.print(f"[dim]up to date: {out / 'results.json'}[/]")
    console.print(rich_table(result))
    console.print(f"signature: {result['signature']}", soft_wrap=True, highlight=False, markup=False)
    console.print(f"results: {out / 'results.json'}, {out / 'results.md'}")
