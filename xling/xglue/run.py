"""Orchestrate zero-shot XGLUE: fine-tune on the train language per task and seed, select on the
train language's dev set, predict dev/test for every language, score with the official metrics.

Every task family is a :class:`xling.xglue.runner.Runner` (see :data:`RUNNERS`); this module alone drives
them: fine-tuning (:func:`xling.xglue.finetune.train`), prediction files and scoring (:func:`write_and_score`).
Each task's hyper-parameters come from its recipe (:mod:`xling.xglue.recipes`) unless given.
``gpus`` > 1 runs the same evaluation in torchrun worker processes (:mod:`xling.xglue.distributed`).

Output (:mod:`xling.xglue.outdir`): one directory per task, written atomically and replaced only by a
re-run of that task (a task whose signature is unchanged is skipped); ``OUT/results.json``,
``OUT/results.md`` and ``OUT/TASK.png`` aggregate every task the directory holds.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from xling import __version__
from xling.errors import XlingError
from xling.io import atomic_dir, sha256_text, write_json_atomic
from xling.xglue import outdir
from xling.xglue import sources as src
from xling.xglue.classify import Classifier
from xling.xglue.finetune import FinetuneConfig, set_seed, train
from xling.xglue.generate import GenerateConfig, GenerationRunner
from xling.xglue.qa import QaRunner
from xling.xglue.rank import Ranker
from xling.xglue.score import score_file
from xling.xglue.tag import Tagger
from xling.xglue.tag_pooling import DEFAULT as WORD_POOLING
from xling.xglue.tasks import TaskSpec, get_tasks

# the runner of each task family (a TaskSpec's ``family``); torch is imported only when one is built
RUNNERS = {"tag": Tagger, "classify": Classifier, "rank": Ranker, "qa": QaRunner, "generate": GenerationRunner}


@dataclass
class EvalConfig:
    model: Path
    data: Path
    tasks: str = "pos"
    zero_shot: Optional[list[str]] = None  # None: every language each task has in ``data``; []: train only
    train_lang: str = "en"  # a language, a comma-separated list of them (multi-source) or all
    train_split: str = "train"  # dev: train on the sources' dev sets (xling.xglue.sources)
    balance_langs: bool = False  # multi-source: every source language equally often per epoch
    seeds: int = 1
    out: Path = Path("xglue-out")
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    ft: FinetuneConfig = field(default_factory=FinetuneConfig)
    gen: GenerateConfig = field(default_factory=GenerateConfig)  # generation tasks (QG, NTG) only
    word_pooling: str = WORD_POOLING  # tagging tasks (POS, NER): first|first-content|mean (xling.xglue.tag_pooling)
    recipe: Optional[str] = None  # per-task lr/epochs/batch/length (xling.xglue.recipes); None: ``ft`` as given
    overrides: dict = field(default_factory=dict)  # recipe fields given explicitly (they win over the recipe)
    force: bool = False  # write into a foreign --out / drop another evaluation's tasks from it
    gpus: int = 1  # data-parallel processes per node (torchrun)
    nnodes: int = 1
    node_rank: int = 0
    master_addr: Optional[str] = None
    master_port: int = 29500

    def task_ft(self, spec: TaskSpec) -> FinetuneConfig:
        """The fine-tuning settings of one task: ``ft``, the recipe's values, then the explicit ones."""
        vals = self.ft.as_dict()
        if self.recipe:
            from xling.xglue.recipes import FIELDS, recipe

            r = recipe(self.recipe, spec.name)
            vals.update({k: getattr(r, k) for k in FIELDS})
        vals.update(self.overrides)
        return FinetuneConfig(**vals)

    def sources(self, spec: TaskSpec) -> list[str]:
        """The languages fine-tuned on for ``spec`` (``--train-lang``; see :mod:`xling.xglue.sources`)."""
        return src.parse(self.train_lang, spec, self.data, self.train_split)

    def identity(self, model_hash: str) -> dict:
        """What every task of one output directory must share (one aggregate)."""
        return {"model": model_hash, "data": str(Path(self.data).resolve()), "train_lang": src.key(
            self.train_lang, self.train_split, self.balance_langs),
                "seeds": self.seeds, "max_train": self.max_train_examples, "max_eval": self.max_eval_examples}


def quiet_logs() -> None:
    """fairseq sets the root logger to DEBUG when imported: keep its INFO lines (model configs) and the
    DEBUG lines of matplotlib, PIL and the language identifier out of the command's output."""
    import logging

    for name in ("fairseq", "fairseq_cli", "hydra", "matplotlib", "PIL", "py3langid", "torch.distributed"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _data_hash(spec: TaskSpec, cfg: EvalConfig, langs: list[str]) -> str:
    sides = spec.sides or ["tgt"]
    files = [spec.path(cfg.data, lg, cfg.train_split, sd) for lg in cfg.sources(spec) for sd in sides] + [
        spec.path(cfg.data, lg, sp, sd) for lg in langs for sp in ("dev", "test") for sd in sides]
    parts = []
    for f in files:
        st = f.stat()
        parts.append(f"{f.relative_to(cfg.data)}:{st.st_size}:{int(st.st_mtime)}")
    return sha256_text("\n".join(parts))[:12]


def hparams_text(spec: TaskSpec, ft: FinetuneConfig, cfg: EvalConfig) -> str:
    hp = ft.hparams()
    if spec.family == "generate":
        hp.update({f"gen.{k}": v for k, v in cfg.gen.as_dict().items()})
    if spec.family == "tag":
        hp["word_pooling"] = cfg.word_pooling
    return ",".join(f"{k}={v}" for k, v in hp.items())


def task_signature(spec: TaskSpec, cfg: EvalConfig, langs: list[str], model_hash: str) -> str:
    """What decides one task's results: a re-run with the same signature is skipped."""
    return (f"xling:{__version__}|model:{model_hash}|data:{_data_hash(spec, cfg, langs)}|task:{spec.name}|"
            f"train:{src.key(cfg.train_lang, cfg.train_split, cfg.balance_langs)}|langs:{','.join(langs)}|seeds:{cfg.seeds}|max_train:{cfg.max_train_examples}|"
            f"max_eval:{cfg.max_eval_examples}|{hparams_text(spec, cfg.task_ft(spec), cfg)}")


def signature(tasks: dict, identity: dict, langs: list[str]) -> str:
    """The aggregate's signature over the task records ``{name: task.json}``: shared fields once, then
    each task's data digest and hyper-parameters (the recipe's defaults included)."""
    fields = {name: dict(p.split(":", 1) for p in t["signature"].split("|") if ":" in p) for name, t in tasks.items()}
    data = sha256_text("|".join(f"{n}:{f['data']}" for n, f in fields.items()))[:12]
    hp = "|".join(f"{n}:{t['hparams']}" for n, t in tasks.items())
    return (f"xling:{__version__}|model:{identity['model']}|data:{data}|tasks:{','.join(tasks)}|"
            f"train:{identity['train_lang']}|langs:{','.join(langs)}|seeds:{identity['seeds']}|"
            f"max_train:{identity['max_train']}|max_eval:{identity['max_eval']}|{hp}")


def _prepare(cfg: EvalConfig):
    specs = get_tasks(cfg.tasks)
    if any(s.family == "generate" for s in specs):
        cfg.gen.check()
    for flag, value in (("--seeds", cfg.seeds), ("--gpus", cfg.gpus), ("--nodes", cfg.nnodes)):
        if value < 1:
            raise XlingError(f"{flag} must be at least 1, got {value}", fix=f"give {flag} 1 or more")
    for spec in specs:
        cfg.task_ft(spec)  # recipe and values checked before anything is read
    sources = {spec.name: cfg.sources(spec) for spec in specs}
    if cfg.zero_shot is None:  # every language the task has in --data
        task_langs = {spec.name: sources[spec.name] + sorted(
            {lg for sp in ("dev", "test") for lg in spec.found_langs(cfg.data, sp)} - set(sources[spec.name]))
            for spec in specs}
    else:
        # A language a task does not have at all (no dev or test file, as MLQA has no fr) is left out of that
        # task only. One that no requested task has stays in all of them, so that the missing files are listed
        # with the expected layout; so does half a language (a dev file without its test file).
        task_langs = {spec.name: sources[spec.name] + [lg for lg in dict.fromkeys(cfg.zero_shot)
                                                       if lg not in sources[spec.name] and _has_any(spec, cfg.data, lg)]
                      for spec in specs}
        langs = list(dict.fromkeys([lg for sp in specs for lg in sources[sp.name]] + list(cfg.zero_shot)))
        unused = {lg for lg in langs if not any(lg in tl for tl in task_langs.values())}
        task_langs = {name: [lg for lg in langs if lg in tl or lg in unused] for name, tl in task_langs.items()}
    for spec in specs:
        src.check_files(spec, cfg.data, sources[spec.name], cfg.train_split)
        spec.check_files(cfg.data, task_langs[spec.name], ["dev", "test"], train=False)
    return specs, task_langs


def _has_any(spec: TaskSpec, data: Path, lang: str) -> bool:
    return any(spec.path(data, lang, sp, sd).exists() for sp in ("dev", "test") for sd in (spec.sides or ["tgt"]))


def load_model(spec: TaskSpec, cfg: EvalConfig):
    """The model a task's runner fine-tunes, freshly loaded from ``cfg.model``."""
    from xling.modeling import load_encoder, load_seq2seq

    return (load_seq2seq if RUNNERS[spec.family].model_kind == "seq2seq" else load_encoder)(cfg.model)


def run_task(spec: TaskSpec, cfg: EvalConfig, langs, seed: int, tmp: Path | None, on_step=None,
             model=None) -> dict | None:
    """Fine-tune one seed on the train language, select on its dev set, predict, write and score dev and
    test of every language in ``langs`` under ``tmp`` (the task's directory being written). ``model``: a
    freshly loaded one to use (saves a load). In a data-parallel run only process 0 predicts and writes;
    the others return None after training."""
    from xling.xglue import distributed
    from xling.xglue.device import autocast

    set_seed(seed)
    ft = FinetuneConfig(**{**cfg.task_ft(spec).as_dict(), "seed": seed})
    if model is None:
        model = load_model(spec, cfg)
    if ft.max_length and hasattr(model, "max_positions"):  # encoders: inputs capped at --max-length
        model.max_positions = min(model.max_positions, ft.max_length)
    r = RUNNERS[spec.family](spec, model, _TaskConfig(cfg, ft))  # its head is initialised from the seed
    r.check_inputs(cfg.data, langs)
    sources = cfg.sources(spec)
    items, select = src.load(r, cfg.data, sources, cfg.train_split, cfg.max_train_examples, cfg.max_eval_examples,
                             cfg.balance_langs, seed)
    hist = train(r, items, lambda m: src.select_score(r, m, select), ft, on_step)
    if not distributed.is_main():
        return None
    scores: dict = {"dev": {}, "test": {}}
    extra: dict = {}
    for split in ("dev", "test"):
        for lg in (lg for lg in langs if not src.trained_on(lg, split, sources, cfg.train_split)):
            ex = r.load(cfg.data, lg, split, cfg.max_eval_examples)
            with autocast(r.precision, r.device):
                pred = r.predict(r.module, ex)
            scores.setdefault(split, {})[lg] = write_and_score(spec, cfg, tmp, seed, split, lg, r.format(pred),
                                                               lambda: r.gold_slice(ex))
            for name, value in r.extra_scores(ex, pred, lg, langs).items():
                extra.setdefault(name, {}).setdefault(split, {})[lg] = value
    out = {"seed": seed, "scores": scores, **extra, **hist, "device": str(r.device), "precision": r.precision}
    if r.signature() is not None:
        out["metric_signature"] = r.signature()
    return out


@dataclass
class _TaskConfig:
    """What a runner's constructor reads: the run's settings with the task's fine-tuning settings."""

    run: EvalConfig
    ft: FinetuneConfig

    def __getattr__(self, name):
        return getattr(self.run, name)


def write_and_score(spec: TaskSpec, cfg: EvalConfig, tmp: Path, seed: int, split: str, lang: str, predictions: str,
                    gold_slice) -> float:
    """Write one language's prediction file under ``tmp/seeds/SEED/SPLIT/`` (``tmp``: the task's
    directory) and score it against the gold file, or with ``--max-eval-examples`` against
    ``gold_slice()``, the same slice of the gold in its file format (written beside, then removed)."""
    pred_path = tmp / "seeds" / str(seed) / split / f"{lang}.{spec.pred_ext}"
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


def _check_model(cfg: EvalConfig, specs, task_langs) -> tuple[str, list]:
    """The model's fingerprint, and a loaded encoder to start with (understanding tasks)."""
    from xling.modeling import check_seq2seq, load_encoder

    kinds = {RUNNERS[s.family].model_kind for s in specs}
    if kinds == {"seq2seq"}:
        # a seq2seq model dir with a token for every language
        return check_seq2seq(cfg.model, sorted({lg for tl in task_langs.values() for lg in tl})), []
    fresh = [load_encoder(cfg.model)]  # checks the model once; the first fine-tune then uses it
    if len(kinds) > 1:
        raise XlingError("generation tasks (qg, ntg) need an encoder-decoder model, understanding tasks "
                         "an encoder: evaluate them in two runs", fix="--tasks qg,ntg with a model from "
                         "`xling pretrain --arch seq2seq`, the others with an encoder model")
    return fresh[0].fingerprint(), fresh


def evaluate(cfg: EvalConfig, on_step=None, console=None) -> dict | None:
    """Run (or skip, when up to date) every requested task; return the aggregate of the output
    directory (``skipped``: nothing needed running). None on processes other than 0."""
    from xling.xglue import distributed
    from xling.xglue.device import check_precision, resolve_device

    specs, task_langs = _prepare(cfg)
    for spec in specs:
        check_precision(cfg.task_ft(spec).precision, resolve_device(cfg.ft.device))
    outdir.claim(cfg.out, cfg.model, cfg.data, None, cfg.force, [])  # before the model is read
    model_hash, fresh = _check_model(cfg, specs, task_langs)
    identity = cfg.identity(model_hash)
    outdir.claim(cfg.out, cfg.model, cfg.data, identity, cfg.force, [f"{s.name}.png" for s in specs])
    sigs = {s.name: task_signature(s, cfg, task_langs[s.name], model_hash) for s in specs}
    todo = [s for s in specs if (outdir.task_record(cfg.out, s.pred_dir) or {}).get("signature") != sigs[s.name]]
    if not todo:
        return {**aggregate_out(cfg.out, identity), "skipped": True}
    if cfg.gpus * cfg.nnodes > 1 and not distributed.under_torchrun():
        return distributed.launch(distributed.config_dict(cfg), cfg.gpus, cfg.nnodes, cfg.node_rank, cfg.master_addr,
                                  cfg.master_port)
    distributed.init(resolve_device(cfg.ft.device))
    distributed.barrier()  # every process has checked the output directory before process 0 writes there
    return _run_tasks(cfg, todo, task_langs, sigs, identity, fresh, on_step)


def _run_tasks(cfg: EvalConfig, todo, task_langs, sigs, identity, fresh, on_step) -> dict | None:
    from xling.xglue import distributed

    out = Path(cfg.out)
    main = distributed.is_main()
    created = main and not out.exists()
    try:
        for spec in todo:
            reuse = RUNNERS[spec.family].model_kind == "encoder"
            if not main:
                for s in range(1, cfg.seeds + 1):
                    run_task(spec, cfg, task_langs[spec.name], s, None, on_step,
                             model=fresh.pop() if reuse and fresh else None)
                continue
            ft = cfg.task_ft(spec)
            with atomic_dir(out / spec.pred_dir, command=outdir.COMMAND, identity=identity, force=cfg.force) as tmp:
                runs = [run_task(spec, cfg, task_langs[spec.name], s, tmp, on_step,
                                 model=fresh.pop() if reuse and fresh else None) for s in range(1, cfg.seeds + 1)]
                best = max(runs, key=lambda r: r["best_dev"])
                for f in (tmp / "seeds" / str(best["seed"]) / "test").iterdir():
                    shutil.copy2(f, tmp / f.name)  # the submission: OUT/POS/en.prediction, as the release
                write_json_atomic(tmp / "task.json", {
                    "task": spec.name, "signature": sigs[spec.name], "identity": identity,
                    "langs": task_langs[spec.name], "hparams": hparams_text(spec, ft, cfg),
                    "settings": ft.as_dict(), "runs": runs})
            outdir.note(out, identity, [])  # OUT is xling's from its first task on
            result = aggregate_out(out, identity)
            from xling.xglue.report import write_reports

            write_reports(result, out)
            outdir.note(out, identity, [*outdir.TOP_FILES, *result["charts"]])
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # created by this run and left empty
        raise
    return aggregate_out(out, identity) if main else None


def aggregate_out(out: Path, identity: dict) -> dict:
    """The aggregate of every task folder in ``out`` evaluated for ``identity`` (what results.json holds)."""
    from xling.xglue.report import aggregate

    tasks = outdir.tasks_in(out, identity)
    specs = get_tasks(list(tasks))
    langs: list[str] = []
    for t in tasks.values():
        langs += [lg for lg in t["langs"] if lg not in langs]
    result = aggregate({n: t["runs"] for n, t in tasks.items()}, specs, langs, signature(tasks, identity, langs),
                       identity, {n: t["settings"] for n, t in tasks.items()})
    result["task_langs"] = {n: t["langs"] for n, t in tasks.items()}
    return result
