"""Task ``xling_unicoder``: Unicoder-style multi-objective pretraining on one shared encoder.

Objectives (``--objectives``, weighted by ``--objective-weights``): ``mlm`` (monolingual masked LM),
``tlm`` (translation LM), ``clwr`` (cross-lingual word recovery), ``clpc`` (cross-lingual paraphrase
classification), ``clmlm`` (MLM over mixed-language documents), ``cs-mlm`` (alignment-driven
code-switch MLM) and ``xlco`` (InfoXLM cross-lingual contrast). Every training example index yields one
example per objective, so each update's batch holds a sub-batch of ``--batch-size`` examples for every
objective and criterion ``xling_unicoder`` sums their weighted losses. Data: the ``xling prep-data``
layout; cs-mlm also reads ``DATA/para/{split}.{pair}.align`` (``prep-data --align``), the ``.txt`` lines
and ``DATA/spm.model``. The model is task ``xling_xlm``'s, unchanged. Each objective's examples come
from its data builder in the registry (:mod:`xling.xlmplug.objectives`), called once per pair (or per
language for mlm); this task mixes, repeats and masks them the same way for every objective.
"""
import logging
from dataclasses import dataclass, field

from fairseq.data import ConcatDataset, ResamplingDataset
from fairseq.dataclass import ChoiceEnum
from fairseq.tasks import register_task

from xling.xlmplug.data import MaskedExamples, sampling_probs
from xling.xlmplug.objectives import OBJECTIVES, needing_pairs, parse_objectives
from xling.xlmplug.tasks.xlm_pretrain import XlmPretrainConfig, XlmPretrainTask
from xling.xlmplug.unicoder.multi import MultiObjectiveDataset, Repeat, Repeatable
from xling.xlmplug.unicoder.pairs import NEGATIVES

logger = logging.getLogger(__name__)


@dataclass
class UnicoderPretrainConfig(XlmPretrainConfig):
    objectives: str = field(default="mlm", metadata={
        "help": "comma-separated objectives: " + ", ".join(OBJECTIVES)})
    objective_weights: str = field(default="", metadata={
        "help": "comma-separated loss weights, one per objective (empty: all 1)"})
    clpc_negatives: ChoiceEnum(NEGATIVES) = field(default="random", metadata={
        "help": "clpc negatives from the same pair corpus: random, length (closest length of --clpc-pool "
                "candidates) or pieces (most pieces shared with the true translation)"})
    clpc_pool: int = field(default=8, metadata={"help": "clpc: candidates drawn per hard negative"})
    clwr_mask_prob: float = field(default=0.5, metadata={
        "help": "clwr: fraction of X's tokens hidden (<mask>) and recovered from Y (at least one per sentence)"})
    cs_ratio: float = field(default=0.3, metadata={
        "help": "cs-mlm: probability that an aligned word is replaced by its aligned words of the other language"})


@register_task("xling_unicoder", dataclass=UnicoderPretrainConfig)
class UnicoderPretrainTask(XlmPretrainTask):
    cfg: UnicoderPretrainConfig

    def __init__(self, cfg: UnicoderPretrainConfig, dictionary=None):
        super().__init__(cfg, dictionary)
        self.objectives, self.objective_weights = parse_objectives(cfg.objectives, cfg.objective_weights)
        need = needing_pairs(self.objectives)
        if need and not self.pairs:
            raise ValueError(f"objective(s) {', '.join(need)} need parallel pairs (--pairs)")
        self.model_dim = self.model_layers = None

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        self.model_dim = model.encoder.sentence_encoder.embed_tokens.embedding_dim
        self.model_layers = len(model.encoder.sentence_encoder.layers)
        return model

    # ---- data ---------------------------------------------------------------------------------
    def _mix(self, parts, train, epoch):
        """One dataset over the parts; in training, parts resampled with ``alpha`` smoothing."""
        if len(parts) == 1:
            return parts[0]
        if train:
            sizes = [len(p) for p in parts]
            n = sum(sizes)
            ratios = [max(round(n * q), 1) / len(p) for p, q in zip(parts, sampling_probs(sizes, self.cfg.alpha))]
            parts = [ResamplingDataset(p, size_ratio=r, replace=r >= 1.0, seed=self.cfg.seed, epoch=epoch)
                     for p, r in zip(parts, ratios)]
        return ConcatDataset(parts)

    def _masked(self, dataset, k, train):
        c = self.cfg
        return MaskedExamples(dataset, self.source_dictionary, self.mask_idx, c.seed + 1000 * k,
                              mask_prob=c.mask_prob, leave_unmasked_prob=c.leave_unmasked_prob,
                              random_token_prob=c.random_token_prob, span_p=c.mask_span_p, max_span=c.max_span_len,
                              whole_words=c.mask_whole_words, shuffle=False, resampled=train)

    def leaves(self, name, root, split, k):
        """The unmixed example datasets of objective ``name``: its data builder's, one per pair (parallel
        objectives) or per language."""
        objective = OBJECTIVES[name]
        build = objective.data_builder()
        units = self.pairs if objective.parallel else self.langs
        return [build(self, root, split, unit, self.cfg.seed + 1000 * k) for unit in units]

    def objective_dataset(self, name, leaves, k, train, epoch, reps=1):
        """Objective ``name``'s examples: leaves listed ``reps`` times, mixed, masked for the MLM family.
        Monolingual leaves are resampled per language as task ``xling_xlm`` does, then repeated."""
        objective = OBJECTIVES[name]
        if not objective.parallel:
            parts = self.resample(leaves, [], epoch) if train else leaves
            return self._masked(ConcatDataset([Repeat(p, reps) for p in parts]), k, train)
        parts = [leaf.with_reps(reps) if isinstance(leaf, Repeatable) else Repeat(leaf, reps) for leaf in leaves]
        mixed = self._mix(parts, train, epoch)
        return self._masked(mixed, k, train) if objective.masks_input else mixed

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        root = self._root(epoch)
        train = split == getattr(self.cfg, "train_subset", "train")
        leaves = {name: self.leaves(name, root, split, k) for k, name in enumerate(self.objectives)}
        natural = {name: sum(len(x) for x in ls) for name, ls in leaves.items()}
        n = max(natural.values())
        # in training a small objective (clmlm's documents, a few pairs beside much mono text) is listed
        # several times per epoch with fresh random draws each time, instead of replaying the same ones
        reps = {name: max(1, round(n / max(m, 1))) if train else 1 for name, m in natural.items()}
        parts = {name: self.objective_dataset(name, leaves[name], k, train, epoch, reps[name])
                 for k, name in enumerate(self.objectives)}
        self.datasets[split] = MultiObjectiveDataset(parts, self.cfg.seed, shuffle=train)
        logger.info("%s: %d examples per objective and epoch (%s)", split, len(self.datasets[split]),
                    ", ".join(f"{n} {len(ds)}" for n, ds in parts.items()))
