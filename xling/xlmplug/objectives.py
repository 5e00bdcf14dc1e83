"""The registry of pretraining objectives: every place that needs the list of objectives reads it here.

Each :class:`Objective` says what the objective is made of:

* ``data``: its data builder, ``build(task, root, split, unit, seed) -> dataset`` called once per
  language (``parallel=False``: monolingual text) or once per pair (``parallel=True``), returning the
  objective's unmixed examples for that language or pair (see :mod:`xling.xlmplug.unicoder.builders`);
* ``head``: the ``nn.Module`` class of its head (owned by criterion ``xling_unicoder``, saved in the
  checkpoint's ``criterion`` entry), or ``None`` when the model's own LM head scores it;
* ``loss``: its :class:`LossKind` (what the logged mean is over, whether an accuracy is logged).

Builders and heads are named ``"module:attribute"`` and imported on first use, so this module imports
neither torch nor fairseq: ``xling.pretrain`` validates ``--tasks`` with :func:`parse_objectives` cheaply.
Task ``xling_unicoder`` and criterion ``xling_unicoder`` read ``OBJECTIVES`` and nothing else.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class LossKind:
    name: str
    unit: str  # what the objective's logged loss is a mean over
    accuracy: bool  # logs ``{objective}_acc`` (% of ``unit`` right)
    description: str


LOSSES: dict[str, LossKind] = {k.name: k for k in (
    LossKind("masked_lm", "masked token", False, "cross-entropy of the masked tokens, by the model's LM head"),
    LossKind("word_recovery", "recovered token", False,
             "cross-entropy of X's hidden tokens, predicted by the LM head from an attention over Y's states"),
    LossKind("pair_classification", "pair", True, "2-way cross-entropy (translation or not) from the <s> state"),
    LossKind("contrast", "pair", True, "InfoNCE between the two sides of translation pairs (both directions)"),
    LossKind("replaced_token", "token", True,
             "the discriminator's binary cross-entropy (replaced by the generator or not) of every real token; "
             "optimised: generator MLM + --rtd-weight x that, the generator's logged as {objective}_gen_loss"),
)}
MASKING_LOSSES = ("masked_lm", "replaced_token")  # objectives whose examples the task masks

_BUILDERS = "xling.xlmplug.unicoder.builders"
_HEADS = "xling.xlmplug.heads"


@dataclass(frozen=True)
class Objective:
    name: str
    parallel: bool  # needs parallel pairs: one data builder call per pair (else one per language)
    loss: str  # a key of LOSSES
    data: str  # "module:function" of the data builder
    head: str | None  # "module:Class" of its head nn.Module; None: the model's LM head
    description: str

    @property
    def masked(self) -> bool:
        """A masked-LM objective: its examples are masked, its loss is the mean per masked token."""
        return self.loss == "masked_lm"

    @property
    def masks_input(self) -> bool:
        """Its examples are masked by the task (the masked-LM family, and rtd/trtd whose generator fills them)."""
        return self.loss in MASKING_LOSSES

    @property
    def log_key(self) -> str:
        """Its name in the logs: ``{log_key}_loss``, ``{log_key}_acc``."""
        return self.name.replace("-", "_")

    @property
    def loss_kind(self) -> LossKind:
        return LOSSES[self.loss]

    def data_builder(self):
        return _resolve(self.data)

    def head_class(self):
        return _resolve(self.head) if self.head else None


def _resolve(ref: str):
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (
    Objective("mlm", False, "masked_lm", f"{_BUILDERS}:monolingual_segments", None,
              "monolingual masked LM (XLM-R)"),
    Objective("tlm", True, "masked_lm", f"{_BUILDERS}:translation_segments", None,
              "translation LM: masked LM over a packed translation pair (XLM)"),
    Objective("clwr", True, "word_recovery", f"{_BUILDERS}:recovery_pairs", f"{_HEADS}.clwr:ClwrHead",
              "cross-lingual word recovery (Unicoder)"),
    Objective("clpc", True, "pair_classification", f"{_BUILDERS}:classification_pairs",
              f"{_HEADS}.clpc:ClpcHead", "cross-lingual paraphrase classification (Unicoder)"),
    Objective("clmlm", True, "masked_lm", f"{_BUILDERS}:mixed_documents", None,
              "masked LM over documents mixing both languages' sentences (Unicoder)"),
    Objective("cs-mlm", True, "masked_lm", f"{_BUILDERS}:code_switched_segments", None,
              "masked LM over alignment-driven code-switched sentences"),
    Objective("xlco", True, "contrast", f"{_BUILDERS}:contrast_pairs", f"{_HEADS}.xlco:XlcoHead",
              "cross-lingual contrast (InfoXLM)"),
    Objective("rtd", False, "replaced_token", f"{_BUILDERS}:monolingual_segments", f"{_HEADS}.rtd:RtdHead",
              "replaced-token detection (ELECTRA): a small generator fills the masked tokens, the encoder finds them"),
    Objective("trtd", True, "replaced_token", f"{_BUILDERS}:translation_segments", f"{_HEADS}.rtd:RtdHead",
              "translation replaced-token detection (XLM-E): rtd over a packed translation pair"),
)}
assert all(o.loss in LOSSES for o in OBJECTIVES.values())
PARALLEL_OBJECTIVES = tuple(n for n, o in OBJECTIVES.items() if o.parallel)
MASKED_OBJECTIVES = tuple(n for n, o in OBJECTIVES.items() if o.masked)


def _split(text) -> list[str]:
    if isinstance(text, (list, tuple)):
        return [str(x).strip() for x in text if str(x).strip()]
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def parse_objectives(names, weights=None) -> tuple[list[str], list[float]]:
    """``(objectives, weights)`` from comma-separated text or lists; ``ValueError`` naming the problem."""
    objectives = _split(names)
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown or not objectives:
        raise ValueError(f"unknown objective(s) {', '.join(unknown) or '(none given)'}; "
                         f"known: {', '.join(OBJECTIVES)}")
    if len(set(objectives)) != len(objectives):
        raise ValueError(f"an objective is listed twice: {','.join(objectives)}")
    w = [float(x) for x in _split(weights)] if weights else [1.0] * len(objectives)
    if len(w) != len(objectives):
        raise ValueError(f"{len(w)} weight(s) given for {len(objectives)} objective(s) ({','.join(objectives)}); "
                         "give one weight per objective, in the same order")
    if any(x < 0 for x in w) or not any(w):
        raise ValueError(f"weights must be non-negative and not all 0, got {','.join(map(str, w))}")
    return objectives, w


def needing_pairs(objectives) -> list[str]:
    """The objectives of ``objectives`` that read parallel pairs."""
    return [o for o in objectives if OBJECTIVES[o].parallel]
