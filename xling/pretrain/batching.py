"""What one update holds, on any number of devices: :func:`plan_batching`.

``--batch-size`` is the run's batch, sequences per update over all data-parallel ranks (XLM-R's "batch size
8192"), as the preset's is; it does not change when a run moves from 1 GPU to 8, to another node count or from CPU
to GPU. How an update is split is the device's business: each of the ``W`` ranks takes ``--update-freq``
micro-batches per update, of at most ``--micro-batch-size`` sequences (the memory knob; default the preset's, on
GPUs ``GPU_BATCH_SCALE`` times larger), so that ``W x update_freq x micro = batch size``.

On CPU micro-batches are whole sequences (``--batch-size`` of fairseq). On GPUs they are token budgets
(``--max-tokens`` = the micro-batch's sequences x ``tokens_per_sample``) with no cap on sequences, so that short
examples (TLM pairs) fill a micro-batch as 512-token blocks do; the update then holds up to ``batch size x
tokens_per_sample`` tokens (fairseq counts an example of the Unicoder objectives as the tokens of all its
objectives' sub-batches, which one backward holds at once). A ``--micro-batch-size`` the user gives is kept as a
cap on sequences there too, with its token budget. fairseq's ``--batch-size``/``--update-freq``/``--max-tokens``
given after ``--`` override all of this (and are then part of the run's identity)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from xling.errors import XlingError
from xling.pretrain.options import GPU_BATCH_SCALE, GPU_WORKERS, PretrainOptions

# fairseq flags that split an update into micro-batches (set here; the user's after `--` override them)
LAYOUT_FLAGS = ("--batch-size", "--update-freq", "--max-tokens", "--required-batch-size-multiple")
# fairseq trims a micro-batch of 8 or more sequences to a multiple of this (--required-batch-size-multiple)
FAIRSEQ_BATCH_MULTIPLE = 8


@dataclass(frozen=True)
class Batching:
    batch_size: int  # sequences per update over all ranks (token budgets: block-sized sequences' worth)
    world: int  # data-parallel ranks
    update_freq: int  # micro-batches per rank and update
    micro: int  # sequences per micro-batch and rank (GPU token budgets: whole blocks within the budget)
    max_tokens: Optional[int]  # token budget of a micro-batch (GPUs); None: whole sequences (CPU)
    cap: bool  # fairseq's --batch-size caps a micro-batch's sequences
    workers: int  # data-loader worker processes per rank
    tokens_per_sample: int

    def args(self) -> list[str]:
        """fairseq-train's batching flags; a micro-batch that is not a multiple of 8 sequences is kept whole (fairseq
        would cut 12 sequences to 8, 42 blocks to 40)."""
        whole = self.micro % FAIRSEQ_BATCH_MULTIPLE != 0
        return [*(["--batch-size", str(self.micro)] if self.cap else []), "--update-freq", str(self.update_freq),
                *(["--max-tokens", str(self.max_tokens)] if self.max_tokens else []),
                *(["--required-batch-size-multiple", "1"] if whole else [])]

    def describe(self, device: str) -> str:
        """One line for ``--dry-run``: the update and how it is split."""
        ranks = f"{self.world} {plural(device, self.world)}"
        head = f"batch {self.batch_size} sequences per update: {ranks} x --update-freq {self.update_freq} x "
        if self.max_tokens is None:
            return head + f"micro-batches of {self.micro} sequences"
        t = self.tokens_per_sample
        per_update = self.max_tokens * self.update_freq * self.world
        size = f"micro-batches of up to {self.max_tokens} tokens (--max-tokens: {self.micro} x {t}-token blocks"
        size += f", at most {self.micro} sequences)" if self.cap else ", more examples when they are shorter)"
        return head + size + f", up to {per_update} tokens per update"


def plural(noun: str, n: int) -> str:
    return noun if n == 1 else noun + ("es" if noun.endswith("s") else "s")


def preset_batch(p: dict) -> int:
    """A preset's sequences per update."""
    return p["micro_batch"] * p["update_freq"]


def plan_batching(opts: PretrainOptions, p: dict, gpus: int) -> Batching:
    """How ``opts`` (its ``--batch-size``, ``--micro-batch-size`` and devices) split the updates of preset ``p``
    on ``gpus`` GPUs per node (0: CPU, ``--cpu-procs`` ranks); raise :class:`XlingError` when the batch cannot be
    split evenly over the ranks."""
    total = opts.batch_size or preset_batch(p)
    world = gpus * opts.nodes if gpus else opts.cpu_procs
    t = p["tokens_per_sample"]
    device = plural("GPU" if gpus else "process", 2)
    if total < world:
        raise XlingError(f"--batch-size {total} is fewer sequences per update than the {world} data-parallel "
                         f"{device}: some would train on nothing",
                         fix=f"use --batch-size {world} or more (a multiple of {world}), or fewer {device}")
    if gpus and not opts.micro_batch_size:
        # token budgets: any integer splits an update, so only the number of micro-batches is chosen
        most = p["micro_batch"] * GPU_BATCH_SCALE.get(opts.preset, 1)
        freq = -(-total // (most * world))
        max_tokens = total * t // (world * freq)
        return Batching(total, world, freq, max_tokens // t, max_tokens, False, GPU_WORKERS, t)
    if total % world:
        lower, upper = total // world * world, -(-total // world) * world
        raise XlingError(f"--batch-size {total} sequences per update do not split evenly over {world} "
                         f"data-parallel {device} (each takes whole sequences)",
                         fix=f"use --batch-size {lower} or {upper}")
    per_rank, most = total // world, opts.micro_batch_size or p["micro_batch"]
    freq = next(f for f in range(-(-per_rank // most), per_rank + 1) if per_rank % f == 0)
    micro = per_rank // freq
    if gpus:
        return Batching(total, world, freq, micro, micro * t, True, GPU_WORKERS, t)
    return Batching(total, world, freq, micro, None, True, 0, t)
