"""What a pretraining run is asked to do: :class:`PretrainOptions` (both architectures),
:class:`NoiseOptions` (the encoder-decoder's denoising), the training presets of each architecture,
and :class:`DataInfo` (what the checks found in the data directory)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from xling.errors import XlingError

ARCHS = ("encoder", "seq2seq")

# Model shape lives in the plugin's architectures; these are the training defaults per preset. The batch is
# micro_batch x update_freq sequences per update over all ranks (XLM-R base/large: 256 x 512 tokens; the
# encoder-decoder's 128), split over the devices by xling.pretrain.batching; micro_batch: sequences per
# micro-batch and rank on CPU (GPUs: GPU_BATCH_SCALE times more). save_interval:
# updates between mid-epoch checkpoints (each after a validation), so that a run whose epoch is a whole corpus of
# gigabytes does not wait for the end of the epoch to save or validate (XLM-R base on one GPU: 2000 updates of
# 256 x 512 tokens, about 270M tokens, a quarter of an hour at 300k tokens/s); a crash loses at most that much.
PRESETS = {
    "tiny": dict(arch="xling_xlm_tiny", tokens_per_sample=64, micro_batch=16, lr=1e-3, warmup=20,
                 max_updates=300, update_freq=1, log_interval=10, weight_decay=0.01, save_interval=100),
    "base": dict(arch="xling_xlm_base", tokens_per_sample=512, micro_batch=32, lr=6e-4, warmup=10000,
                 max_updates=125000, update_freq=8, log_interval=100, weight_decay=0.01, save_interval=2000),
    "large": dict(arch="xling_xlm_large", tokens_per_sample=512, micro_batch=16, lr=4e-4, warmup=10000,
                  max_updates=125000, update_freq=16, log_interval=100, weight_decay=0.01, save_interval=2000),
}
SEQ2SEQ_PRESETS = {
    "tiny": dict(arch="xling_dae_tiny", tokens_per_sample=64, micro_batch=16, lr=1e-3, warmup=20,
                 max_updates=300, update_freq=1, log_interval=10, weight_decay=0.01, save_interval=100),
    "base": dict(arch="xling_dae_base", tokens_per_sample=512, micro_batch=16, lr=3e-4, warmup=10000,
                 max_updates=250000, update_freq=8, log_interval=100, weight_decay=0.01, save_interval=2000),
    "large": dict(arch="xling_dae_large", tokens_per_sample=512, micro_batch=8, lr=3e-4, warmup=10000,
                  max_updates=250000, update_freq=16, log_interval=100, weight_decay=0.01, save_interval=2000),
}
# On GPUs a preset trains the same batch in fewer, larger micro-batches: micro_batch x GPU_BATCH_SCALE sequences'
# worth per step (XLM-R base at 512 tokens: 64 x 512 tokens per micro-batch, about 30 GB of activations in bf16),
# batched by that token budget (--max-tokens) with no cap on sequences, so that short examples (TLM pairs) fill a
# micro-batch as blocks do; data-loader workers per GPU process, and bf16 where the GPU supports it (compute
# capability >= 8: Ampere, Hopper), else fp16.
GPU_BATCH_SCALE = {"tiny": 1, "base": 2, "large": 2}
GPU_WORKERS = 2
# On GPUs the encoder's layers and its masked-LM loss run through torch.compile (fused element-wise work, fewer
# kernel launches): on one H200, XLM-R base, 32 x 512 tokens, bf16, 247k tokens/s against 199k eager
# (fairseq masked_lm: 127k); --no-compile runs eager.
GPU_COMPILE_ARGS = ("--compile-layers", "--compile-loss")
SEQ2SEQ_TASKS = ("xdae",)  # what the encoder-decoder trains (multilingual denoising)
DECODERS = ("transformer", "prophetnet")  # --decoder of --arch seq2seq: bart's, or ProphetNet's n-stream one


@dataclass
class PretrainOptions:
    data: Path
    out: Path
    preset: str = "base"
    tlm: bool = False
    tlm_ratio: Optional[float] = None  # default 0.5 with tlm
    tasks: Optional[list[str]] = None  # objectives; None: mlm (+tlm with tlm)
    task_weights: Optional[list[float]] = None  # one per task; None: all 1
    langs: Optional[list[str]] = None
    pairs: Optional[list[str]] = None
    alpha: float = 0.3
    max_updates: Optional[int] = None
    total_updates: Optional[int] = None  # LR schedule length; default max_updates
    batch_size: Optional[int] = None  # sequences per update over all ranks; None: the preset's
    micro_batch_size: Optional[int] = None  # most sequences per micro-batch and rank; None: the preset's
    lr: Optional[float] = None
    log_interval: Optional[int] = None
    save_interval: Optional[int] = None  # updates between mid-epoch checkpoints; 0: epoch ends only; None: preset's
    seed: int = 1
    lang_embeddings: bool = False
    mask_span_p: float = 0.0  # --mask-span geometric:p=P: span lengths ~ Geometric(P); 0: single tokens
    mask_span_max: int = 10  # --mask-span geometric:max=N: longest span (tokens, or words with whole words)
    mask_whole_words: bool = False  # mask whole words (SentencePiece's ▁ starts a word)
    decoder: Optional[str] = None  # seq2seq decoder: transformer (bart's, the default) or prophetnet
    ngram: Optional[int] = None  # prophetnet: tokens predicted ahead (default 2)
    gpus: Optional[int] = None
    cpu_procs: int = 1
    nodes: int = 1
    node_rank: int = 0
    master: Optional[str] = None  # ADDR or ADDR:PORT
    precision: Optional[str] = None  # "bf16" | "fp16" | "fp32" (none: bf16/fp16 on GPUs, fp32 on CPU)
    compile: Optional[bool] = None  # torch.compile layers and loss (none: on GPUs, not on CPU); encoder only
    extra: list[str] = field(default_factory=list)
    init: Optional[Path] = None
    force_resume: bool = False  # resume checkpoint_last.pt even if data/model/objectives/schedule changed
    plan_only: bool = False  # a dry run, maybe for another machine: GPUs this one lacks are not refused

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.out) / "checkpoints"


MASK_SPAN_HELP = "geometric:p=P,max=N (SpanBERT: p=0.2,max=10), or none"


def parse_mask_span(text: Optional[str]) -> tuple[float, int]:
    """``(p, max)`` of ``--mask-span geometric:p=0.2,max=10`` (``none``/empty: ``(0, 10)``, single tokens)."""
    if not text or text.strip().lower() in ("none", "off", "token"):
        return 0.0, 10
    kind, _, rest = text.strip().partition(":")
    values = {"p": "0.2", "max": "10"}
    try:
        if kind != "geometric":
            raise ValueError(f"unknown span distribution {kind!r}")
        for item in filter(None, (x.strip() for x in rest.split(","))):
            key, eq, value = item.partition("=")
            if key not in values or not eq:
                raise ValueError(f"unknown setting {item!r}")
            values[key] = value
        p, longest = float(values["p"]), int(values["max"])
    except ValueError as e:
        raise XlingError(f"--mask-span {text!r}: {e}", fix=f"give {MASK_SPAN_HELP}") from None
    if not 0.0 < p < 1.0 or longest < 1:
        raise XlingError(f"--mask-span {text!r}: p must be within (0, 1) and max at least 1",
                         fix=f"give {MASK_SPAN_HELP}")
    return p, longest


@dataclass
class NoiseOptions:
    """One rate per noise (0 switches it off); defaults follow mBART (span infilling 35 % of the words,
    Poisson lambda 3.5, all sentences permuted)."""
    mask: float = 0.35  # fraction of words in masked spans (text infilling: one <mask> per span)
    poisson_lambda: float = 3.5  # mean span length
    permute_sentences: float = 1.0  # fraction of sentences shuffled
    insert: float = 0.0  # inserted <mask>/random tokens, as a fraction of the length
    rotate: float = 0.0  # probability of rotating the document to start at a random token
    word_shuffle: float = 0.0  # XLM: maximal displacement of a word (0/1: off)
    word_dropout: float = 0.0  # XLM: probability of dropping a word
    word_blank: float = 0.0  # XLM: probability of blanking a word
    mask_random: float = 0.1  # share of masked spans/insertions that get a random token instead of <mask>

    # the `xling pretrain` flag of each field whose flag is not its name in dashes
    FLAGS = {"mask": "--mask-ratio", "permute_sentences": "--permute-ratio", "insert": "--insert-ratio",
             "rotate": "--rotate-ratio"}

    @classmethod
    def flag(cls, name: str) -> str:
        return cls.FLAGS.get(name, "--" + name.replace("_", "-"))

    def changed(self) -> list[str]:
        """The fields that differ from the defaults."""
        default = NoiseOptions()
        return [k for k, v in asdict(self).items() if v != getattr(default, k)]

    def check(self) -> None:
        for name, v in asdict(self).items():
            if name == "poisson_lambda":
                if v <= 0:
                    raise XlingError(f"{self.flag(name)} must be positive, got {v}")
            elif name == "word_shuffle":
                if v < 0:
                    raise XlingError(f"{self.flag(name)} must be >= 0 (a distance in words), got {v}")
            elif not 0.0 <= v <= 1.0:
                raise XlingError(f"{self.flag(name)} must be within [0, 1], got {v}")

    def args(self) -> list[str]:
        return ["--mask", str(self.mask), "--mask-length", "span-poisson", "--replace-length", "1",
                "--poisson-lambda", str(self.poisson_lambda), "--mask-random", str(self.mask_random),
                "--permute-sentences", str(self.permute_sentences), "--insert", str(self.insert),
                "--rotate", str(self.rotate), "--word-shuffle", str(self.word_shuffle),
                "--word-dropout", str(self.word_dropout), "--word-blank", str(self.word_blank)]


@dataclass
class DataInfo:
    langs: list[str]
    pairs: list[str]
    tlm_ratio: float
    validate: bool
    dict_size: int
    manifest: dict
    tasks: list[str] = field(default_factory=list)  # Unicoder objectives (task xling_unicoder); empty: xling_xlm
    task_weights: list[float] = field(default_factory=list)
