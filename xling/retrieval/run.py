"""Run a retrieval evaluation: encode both sides of every pair, retrieve, score, write the results.

Output directory (written atomically as a whole; a finished run with the same signature is skipped):
``OUT/results.json`` (config, signature, scores per pair x layer, averages), ``OUT/results.md``,
``OUT/outcomes/PAIR.json``: per-example outcomes for ``xling eval compare``. Parallel tasks: for each
layer and direction the index each query retrieved (gold: its own line number). Mining tasks: per
source sentence ``[true positives, mined, gold]`` at the layer's best threshold, and the candidates.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from xling import __version__
from xling.errors import XlingError
from xling.io import atomic_dir, sha256_text, write_json_atomic
from xling.devices import resolve_device
from xling.retrieval.embed import EmbedConfig, embed, num_layers
from xling.retrieval.mining import best_threshold, candidates, per_source_outcomes
from xling.retrieval.similarity import Scorer
from xling.retrieval.tasks import Bitext, RetrievalTask, get_task, load_bitext, parallel_bitext


@dataclass
class RetrievalConfig:
    model: Path
    task: str = "tatoeba"  # a task spec name; ad hoc --bitext files are a parallel task of their own
    data: Optional[Path] = None
    langs: list[str] = field(default_factory=list)  # task: languages paired with the pivot; bitexts: pair names
    bitexts: list[tuple[Path, Path]] = field(default_factory=list)
    split: Optional[str] = None
    layer: str = "last"  # last | all | N | N,M,...
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    similarity: str = "cosine"
    margin_k: int = 4
    out: Path = Path("retrieval-out")
    max_sentences: Optional[int] = None  # first N pairs of each bitext (quick runs; not official numbers)


def parse_layers(spec: str, top: int) -> list[int]:
    spec = str(spec).strip().lower()
    if spec in ("last", ""):
        return [top]
    if spec == "all":
        return list(range(top + 1))
    try:
        layers = [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise XlingError(f"--layer {spec!r} is not a layer number", fix="--layer N, N,M, last or all") from None
    bad = [x for x in layers if not -(top + 1) <= x <= top]
    if bad:  # (named as given: -20 is not reported as the -7 it would count to)
        raise XlingError(f"--layer {bad[0]} does not exist: the model has layers 0 (embeddings) to {top}",
                         fix=f"--layer 0..{top}, or -1..-{top + 1} counting back from the last (or last, all)")
    return [top + 1 + x if x < 0 else x for x in layers]  # -1: the last layer, as in Python


def load_pairs(cfg: RetrievalConfig) -> tuple[RetrievalTask | None, list[Bitext]]:
    if cfg.bitexts:
        names = cfg.langs or [f"pair{i + 1}" for i in range(len(cfg.bitexts))]
        if len(names) != len(cfg.bitexts):
            raise XlingError(f"{len(cfg.bitexts)} --bitext but {len(names)} names in --langs",
                             fix="give one name per --bitext, in order: --langs de-en,fr-en")
        pairs = [parallel_bitext(n, Path(s), Path(t)) for n, (s, t) in zip(names, cfg.bitexts)]
        task = None
    else:
        task = get_task(cfg.task)
        if cfg.data is None:
            raise XlingError(f"task {task.name} needs --data DIR", fix="the directory holding the task's files")
        if not Path(cfg.data).is_dir():
            raise XlingError("data directory does not exist", file=cfg.data)
        langs = cfg.langs or task.found_langs(cfg.data, cfg.split)
        if not langs:
            task.find(cfg.data, "xx", cfg.split)  # raises with the expected layout
        pairs = [load_bitext(task, cfg.data, lg.split("-")[0], cfg.split) for lg in langs]
    if cfg.max_sentences:
        pairs = [_head(p, cfg.max_sentences) for p in pairs]
    for p in pairs:
        if not p.gold:
            raise XlingError(f"pair {p.pair} has no gold pair", file=p.files[0] if p.files else None)
    return task, pairs


def _head(p: Bitext, n: int) -> Bitext:
    src, tgt = p.src[:n], p.tgt[:n] if p.gold == [(i, i) for i in range(len(p.src))] else p.tgt
    gold = [(i, j) for i, j in p.gold if i < n and j < len(tgt)]
    return Bitext(p.pair, src, tgt, gold, f"{p.digest}|head:{n}", p.files)


def signature(cfg: RetrievalConfig, task_name: str, pairs: list[Bitext], model_hash: str, layers: list[int]) -> str:
    data = sha256_text("\n".join(f"{p.pair}:{p.digest}" for p in pairs))[:12]
    sim = "cosine" if cfg.similarity == "cosine" else f"margin-ratio(k={cfg.margin_k})"
    layer = "all" if len(layers) > 1 and layers == list(range(len(layers))) else ",".join(map(str, layers))
    return (f"xling:{__version__}|model:{model_hash}|task:{task_name}|data:{data}|split:{cfg.split or '-'}|"
            f"pairs:{','.join(p.pair for p in pairs)}|pooling:{cfg.embed.pooling}|layer:{layer}|"
            f"prefix:{json.dumps(cfg.embed.prefix, ensure_ascii=False)}|sim:{sim}|"
            f"maxlen:{cfg.embed.max_length or 'model'}|max_sentences:{cfg.max_sentences}")


def score_parallel(scorer: Scorer, p: Bitext, src: str, tgt: str) -> tuple[dict, dict]:
    fwd, bwd = scorer.forward(), scorer.backward()
    want_t = {i: j for i, j in p.gold}
    want_s = {j: i for i, j in p.gold}
    acc_f = 100 * sum(fwd.index[i] == j for i, j in want_t.items()) / len(want_t)
    acc_b = 100 * sum(bwd.index[j] == i for j, i in want_s.items()) / len(want_s)
    scores = {f"{src}->{tgt}": acc_f, f"{tgt}->{src}": acc_b, "avg": (acc_f + acc_b) / 2}
    return scores, {f"{src}->{tgt}": fwd.index, f"{tgt}->{src}": bwd.index}


def score_mining(scorer: Scorer, p: Bitext) -> tuple[dict, dict]:
    cands = candidates(scorer.forward(), scorer.backward())
    gold = set(p.gold)
    best = best_threshold(cands, gold)
    rows = per_source_outcomes(cands, gold, len(p.src), best["threshold"])
    return best, {"per_source": rows, "candidates": [[c.src, c.tgt, round(c.score, 6)] for c in cands]}


def evaluate(cfg: RetrievalConfig, on_progress: Optional[Callable[[str, int, int], None]] = None) -> dict:
    """Run (or skip, when ``OUT/results.json`` has the same signature) and return the results."""
    from xling.modeling import load_encoder

    if cfg.similarity not in ("cosine", "margin"):
        raise XlingError(f"unknown similarity {cfg.similarity!r}", fix="cosine or margin")
    resolve_device(cfg.embed.device, allow_index=True)
    task, pairs = load_pairs(cfg)
    kind = task.kind if task else "parallel"
    task_name = task.name if task else "bitext"
    enc = load_encoder(cfg.model)
    top = num_layers(enc)
    layers = parse_layers(cfg.layer, top)
    from xling.retrieval.embed import check_layers

    check_layers(enc, layers)
    sig = signature(cfg, task_name, pairs, enc.fingerprint(), layers)
    out = Path(cfg.out)
    res_path = out / "results.json"
    old = None
    if res_path.is_file():
        try:
            old = json.loads(res_path.read_text(encoding="utf-8"))
        except ValueError:
            old = None
    ours = isinstance(old, dict) and old.get("kind") == "xling-retrieval"
    if ours and old.get("signature") == sig:
        return {**old, "skipped": True}
    if out.exists() and not ours and any(out.iterdir()):  # refused before any work, not when writing
        raise XlingError("output directory exists and holds no xling retrieval results", file=out,
                         fix="pass a new or empty directory for --out")
    device = resolve_device(cfg.embed.device, allow_index=True)
    total = sum(len(p.src) + len(p.tgt) for p in pairs)
    done = 0
    result_pairs, outcomes = {}, {}
    for p in pairs:
        src, tgt = (p.pair.split("-", 1) + ["tgt"])[:2] if "-" in p.pair else ("src", "tgt")

        def tick(n, _name=p.pair):
            nonlocal done
            done += n
            if on_progress:
                on_progress(_name, done, total)

        ex, ey = embed(enc, p.src, layers, cfg.embed, tick), embed(enc, p.tgt, layers, cfg.embed, tick)
        entry = {"n_src": len(p.src), "n_tgt": len(p.tgt), "n_gold": len(p.gold), "digest": p.digest,
                 "files": p.files, "layers": {}}
        oc = {"pair": p.pair, "kind": kind, "digest": p.digest, "gold": p.gold, "layers": {}}
        for layer in layers:
            scorer = Scorer(ex[layer], ey[layer], cfg.similarity, cfg.margin_k, device)
            if kind == "parallel":
                entry["layers"][str(layer)], oc["layers"][str(layer)] = score_parallel(scorer, p, src, tgt)
            else:
                entry["layers"][str(layer)], oc["layers"][str(layer)] = score_mining(scorer, p)
        result_pairs[p.pair] = entry
        outcomes[p.pair] = oc
    key = "avg" if kind == "parallel" else "f1"
    average = {str(layer): sum(e["layers"][str(layer)][key] for e in result_pairs.values()) / len(result_pairs)
               for layer in layers}
    result = {"kind": "xling-retrieval", "signature": sig, "task": task_name, "task_kind": kind,
              "metric": "top-1 accuracy %" if kind == "parallel" else "F1 % at the best threshold",
              "model": str(cfg.model), "layers": layers, "report_layer": layers[-1], "num_layers": top,
              "config": {"pooling": cfg.embed.pooling, "prefix": cfg.embed.prefix, "similarity": cfg.similarity,
                         "margin_k": cfg.margin_k, "max_length": cfg.embed.max_length, "split": cfg.split,
                         "batch_size": cfg.embed.batch_size, "device": str(device),
                         "max_sentences": cfg.max_sentences, "data": str(cfg.data) if cfg.data else None},
              "pairs": result_pairs, "average": average,
              "best_layer": max(layers, key=lambda x: average[str(x)])}
    from xling.retrieval.report import markdown

    with atomic_dir(out) as tmp:
        for pair, oc in outcomes.items():
            write_json_atomic(tmp / "outcomes" / f"{pair}.json", oc)
        (tmp / "results.md").write_text(markdown(result), encoding="utf-8")
        write_json_atomic(tmp / "results.json", result)
    return {**result, "skipped": False}
