"""Wall time and peak memory of `xling prep-vocab` vs calling SentencePieceTrainer.train directly.

Both train on the same sampled text with the same trainer arguments, in this one process, so the
ratio is xling's overhead (scan + sampling + dict counts + held-out stats). Target: ratio <= 1.15.

    python benchmarks/prep_vocab.py [--vocab-size 8000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "tatoeba"
LANGS = "ar bg de el es fr hi it ja nl pl pt ro ru sw th tr ur vi zh".split()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", type=Path, default=SHARED)
    a = ap.parse_args()
    import sentencepiece as spm

    from xling.vocab import VocabConfig, build_vocab, sample_corpus, spm_train_kwargs

    tmp = Path(tempfile.mkdtemp())
    en = tmp / "en.txt"
    en.write_text("".join((a.data / f"tatoeba.{lg}-en.en").read_text(encoding="utf-8") for lg in LANGS))
    inputs = [(lg, str(a.data / f"tatoeba.{lg}-en.{lg}")) for lg in LANGS] + [("en", str(en))]
    t_x, t_s = [], []
    for r in range(a.repeat):
        cfg = VocabConfig(inputs=inputs, out=str(tmp / f"x{r}"), vocab_size=a.vocab_size)
        t0 = time.perf_counter()
        build_vocab(cfg)
        t_x.append(time.perf_counter() - t0)
        sample = tmp / f"sample{r}.txt"
        n = sample_corpus(cfg, sample)["lines"]
        t0 = time.perf_counter()
        spm.SentencePieceTrainer.train(**spm_train_kwargs(cfg, sample, tmp / f"direct{r}", n))
        t_s.append(time.perf_counter() - t0)
    # memory in a separate, untimed run (tracemalloc slows Python code down)
    tracemalloc.start()
    build_vocab(VocabConfig(inputs=inputs, out=str(tmp / "mem"), vocab_size=a.vocab_size))
    peak_x = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    bx, bs = min(t_x), min(t_s)
    print(f"languages: {len(inputs)}  vocab: {a.vocab_size}  runs: {a.repeat} (best of)")
    print(f"xling prep-vocab:              {bx:.3f} s")
    print(f"SentencePieceTrainer.train:    {bs:.3f} s")
    print(f"ratio xling / direct:          {bx / bs:.3f}  (target <= 1.15)")
    print(f"peak Python heap (tracemalloc) in prep-vocab: {peak_x / 2**20:.1f} MiB")
    print(f"peak RSS of this process:      {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
