"""Orchestrate zero-shot XGLUE: fine-tune on the train language per task and seed, select on the
train language's dev set, predict dev/test for every language, score with the official metrics.

Every task family is a :class:`xling.xglue.runner.Runner` (see :data:`RUNNERS`); this module alone drives
them: fine-tuning (:func:`xling.xglue.finetune.train`), prediction files and scoring (:func:`write_and_score`).

Output (written atomically as one directory; a finished run with the same signature is skipped):
``OUT/TASK/lang.prediction`` (test, best seed: the submission; ``TASK`` is the release's folder name,
``POS``, ``MLQA``, as the official scorer reads it), ``OUT/seeds/S/{dev,test}/TASK/...``,
``OUT/results.json``, ``OUT/results.md``, ``OUT/TASK.png`` (when matplotlib is installed).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from xling import __version__
from xling.errors import XlingError
from xling.io import atomic_dir, sha256_text
from xling.xglue.classify import Classifier
from xling.xglue.finetune import FinetuneConfig, set_seed, train
from xling.xglue.generate import GenerateConfig, GenerationRunner
from xling.xglue.qa import QaRunner
from xling.xglue.rank import Ranker
from xling.xglue.score import score_file
from xling.xglue.tag import Tagger
from xling.xglue.tasks import TaskSpec, get_tasks

# the runner of each task family (a TaskSpec's ``family``); torch is imported only when one is built
RUNNERS = {"tag": Tagger, "classify": Classifier, "rank": Ranker, "qa": QaRunner, "generate": GenerationRunner}


@dataclass
class EvalConfig:
    model: Path
    data: Path
    tasks: str = "pos"
    zero_shot: list[str] = field(default_factory=list)
    train_lang: str = "en"
    seeds: int = 1
    out: Path = Path("xglue-out")
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    ft: FinetuneConfig = field(default_factory=FinetuneConfig)
    gen: GenerateConfig = field(default_factory=GenerateConfig)  # generation tasks (QG, NTG) only


def _data_hash(specs, cfg, langs) -> str:
    """``langs``: the languages of each task (a dict by task name) or one list for all tasks."""
    parts = []
    for spec in specs:
        sides = spec.sides or ["tgt"]
        task_langs = langs[spec.name] if isinstance(langs, dict) else langs
        files = [spec.path(cfg.data, cfg.train_lang, "train", sd) for sd in sides] + [
            spec.path(cfg.data, lg, sp, sd) for lg in task_langs for sp in ("dev", "test") for sd in sides]
        for f in files:
            st = f.stat()
            parts.append(f"{f.relative_to(cfg.data)}:{st.st_size}:{int(st.st_mtime)}")
    return sha256_text("\n".join(parts))[:12]


def signature(cfg: EvalConfig, specs, langs, model_hash: str, task_langs: dict | None = None) -> str:
    ft = cfg.ft.as_dict()
    ft.pop("seed")
    if any(s.family == "generate" for s in specs):
        ft.update({f"gen.{k}": v for k, v in cfg.gen.as_dict().items()})
    hp = ",".join(f"{k}={v}" for k, v in ft.items())
    return (f"xling:{__version__}|model:{model_hash}|data:{_data_hash(specs, cfg, task_langs or langs)}|"
            f"tasks:{','.join(s.name for s in specs)}|train:{cfg.train_lang}|langs:{','.join(langs)}|"
            f"seeds:{cfg.seeds}|max_train:{cfg.max_train_examples}|max_eval:{cfg.max_eval_examples}|{hp}")


def _prepare(cfg: EvalConfig):
    specs = get_tasks(cfg.tasks)
    if any(s.family == "generate" for s in specs):
        cfg.gen.check()
    langs = [cfg.train_lang] + [lg for lg in cfg.zero_shot if lg != cfg.train_lang]
    # A language a task does not have at all (no dev or test file, as MLQA has no fr) is left out of that
    # task only. One that no requested task has stays in all of them, so that the missing files are listed
    # with the expected layout; so does half a language (a dev file without its test file).
    task_langs = {spec.name: [lg for lg in langs if lg == cfg.train_lang or _has_any(spec, cfg.data, lg)]
                  for spec in specs}
    unused = {lg for lg in langs if not any(lg in tl for tl in task_langs.values())}
    task_langs = {name: [lg for lg in langs if lg in tl or lg in unused] for name, tl in task_langs.items()}
    for spec in specs:
        spec.check_files(cfg.data, task_langs[spec.name], ["dev", "test"], train=True)
    if cfg.seeds < 1:
        raise XlingError("--seeds must be at least 1")
    return specs, langs, task_langs


def _has_any(spec: TaskSpec, data: Path, lang: str) -> bool:
    return any(spec.path(data, lang, sp, sd).exists() for sp in ("dev", "test") for sd in (spec.sides or ["tgt"]))


def load_model(spec: TaskSpec, cfg: EvalConfig):
    """The model a task's runner fine-tunes, freshly loaded from ``cfg.model``."""
    from xling.modeling import load_encoder, load_seq2seq

    return (load_seq2seq if RUNNERS[spec.family].model_kind == "seq2seq" else load_encoder)(cfg.model)


def run_task(spec: TaskSpec, cfg: EvalConfig, langs, seed: int, tmp: Path, on_step=None, model=None) -> dict:
    """Fine-tune one seed on the train language, select on its dev set, predict, write and score dev and
    test of every language in ``langs``. ``model``: a freshly loaded one to use (saves a load)."""
    set_seed(seed)
    if model is None:
        model = load_model(spec, cfg)
    if cfg.ft.max_length and hasattr(model, "max_positions"):  # encoders: inputs capped at --max-length
        model.max_positions = min(model.max_positions, cfg.ft.max_length)
    r = RUNNERS[spec.family](spec, model, cfg)  # its head is initialised from the seed
    r.check_inputs(cfg.data, langs)
    items = r.train_items(r.load(cfg.data, cfg.train_lang, "train", cfg.max_train_examples, train=True))
    dev = r.load(cfg.data, cfg.train_lang, "dev", cfg.max_eval_examples)
    ft = FinetuneConfig(**{**cfg.ft.as_dict(), "seed": seed})
    hist = train(r, items, lambda m: r.dev_score(m, dev, cfg.train_lang), ft, on_step)
    scores: dict = {}
    extra: dict = {}
    for split in ("dev", "test"):
        for lg in langs:
            ex = r.load(cfg.data, lg, split, cfg.max_eval_examples)
            pred = r.predict(r.module, ex)
            scores.setdefault(split, {})[lg] = write_and_score(spec, cfg, tmp, seed, split, lg, r.format(pred),
                                                               lambda: r.gold_slice(ex))
            for name, value in r.extra_scores(ex, pred, lg, langs).items():
                extra.setdefault(name, {}).setdefault(split, {})[lg] = value
    out = {"seed": seed, "scores": scores, **extra, **hist}
    if r.signature() is not None:
        out["metric_signature"] = r.signature()
    return out


def write_and_score(spec: TaskSpec, cfg: EvalConfig, tmp: Path, seed: int, split: str, lang: str, predictions: str,
                    gold_slice) -> float:
    """Write one language's prediction file under ``tmp/seeds/SEED/SPLIT/TASK/`` and score it against the
    gold file, or with ``--max-eval-examples`` against ``gold_slice()``, the same slice of the gold in its
    file format (written beside the prediction, then removed)."""
    pred_path = tmp / "seeds" / str(seed) / split / spec.pred_dir / f"{lang}.{spec.pred_ext}"
    pred_path.parent.mkdir(parents=True, exist_ok=True)
    pred_path.write_text(predictions, encoding="utf-8")
    if not cfg.max_eval_examples:
        return score_file(spec, spec.path(cfg.data, lang, split), pred_path, lang)
    gold_path = pred_path.with_suffix(".gold")
    gold_path.write_text(gold_slice(), encoding="utf-8")
    try:
        return score_file(spec, gold_path, pred_path, lang)
    finally:
        gold_path.unlink()


def evaluate(cfg: EvalConfig, on_step=None, console=None) -> dict:
    specs, langs, task_langs = _prepare(cfg)
    from xling.modeling import check_seq2seq, load_encoder

    fresh: list = []
    kinds = {RUNNERS[s.family].model_kind for s in specs}
    if kinds == {"seq2seq"}:
        # a seq2seq model dir with a token for every language
        model_hash = check_seq2seq(cfg.model, sorted({lg for tl in task_langs.values() for lg in tl}))
    else:
        fresh = [load_encoder(cfg.model)]  # checks the model once; the first fine-tune then uses it
        model_hash = fresh[0].fingerprint()
        if len(kinds) > 1:
            raise XlingError("generation tasks (qg, ntg) need an encoder-decoder model, understanding tasks "
                             "an encoder: evaluate them in two runs", fix="--tasks qg,ntg with a model from "
                             "`xling pretrain --arch seq2seq`, the others with an encoder model")
    sig = signature(cfg, specs, langs, model_hash, task_langs)
    out = Path(cfg.out)
    res_path = out / "results.json"
    if res_path.is_file():
        try:
            old = json.loads(res_path.read_text(encoding="utf-8"))
            if old.get("signature") == sig:
                old["skipped"] = True
                return old
        except ValueError:
            pass
    from xling.xglue.report import aggregate, write_reports

    with atomic_dir(out) as tmp:
        runs = {}
        for spec in specs:
            reuse = RUNNERS[spec.family].model_kind == "encoder"
            runs[spec.name] = [run_task(spec, cfg, task_langs[spec.name], s, tmp, on_step,
                                        model=fresh.pop() if reuse and fresh else None)
                               for s in range(1, cfg.seeds + 1)]
            best = max(runs[spec.name], key=lambda r: r["best_dev"])
            src = tmp / "seeds" / str(best["seed"]) / "test" / spec.pred_dir
            shutil.copytree(src, tmp / spec.pred_dir)  # the submission: OUT/POS/en.prediction, as the release
        result = aggregate(runs, specs, langs, sig, cfg)
        result["task_langs"] = task_langs
        write_reports(result, tmp)
    return result
