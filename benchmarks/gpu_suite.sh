#!/usr/bin/env bash
# Issue 18's GPU figures in one call of the `device` tool: xling's MLM pretraining against fairseq's masked_lm
# (benchmarks/gpu_pretrain.py), XLM-R base shape, 250k vocabulary, bf16, on what the device lends.
#
#   bash benchmarks/gpu_suite.sh prepare   # here (CPU, registry): .gpu/site (fairseq & co. for the device's
#                                          # Python 3.12) and .gpu/data (tatoeba x 8, e5-small's 250k vocabulary)
#   bash benchmarks/gpu_suite.sh check     # here: the same runs, --cpu --tiny, into .gpu/check (minutes)
#   bash benchmarks/gpu_suite.sh run       # there: run(command="bash benchmarks/gpu_suite.sh run", carry=[".gpu"],
#                                          # timeout_s=580); JSON tables and profiler summaries under $OUT
#
# `run` measures, alternately in each process group: batch 64 x 512 tokens (the base preset's GPU micro-batch)
# with fairseq, xling's GPU default (GPU_COMPILE_ARGS), xling with fp32 master weights in the optimizer
# (--memory-efficient-bf16) and with bf16 autocast (--amp-bf16); then whole-sentence blocks
# (--break-mode complete: padded rows, varying shapes, as `xling pretrain` trains) for fairseq and xling. Each
# group has a time limit so that the call ends within the device's 10 minutes; what finished is kept.
# .gpu must be in .git/info/exclude (prepare adds it).
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=${1:?usage: gpu_suite.sh prepare|check|run}
COMPILE="--compile-layers --compile-loss"
VARIANTS=(--variant "xling=$COMPILE" --variant "masters=$COMPILE --memory-efficient-bf16"
          --variant "amp=$COMPILE --amp-bf16")

case "$MODE" in
prepare)
    set -e
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
    [ -d .gpu/site/fairseq ] || bash ../shared/tools/build_gpu_site.sh .gpu/site
    [ -f .gpu/data/manifest.json ] || python benchmarks/gpu_pretrain.py --prepare-only --data .gpu/data
    du -sh .gpu/site .gpu/data
    ;;
check)
    OUT=${OUT:-.gpu/check}; mkdir -p "$OUT"
    T=(--cpu --tiny --data "$OUT/data" --batch-size 8 --updates 6 --repeats 1 --precision bf16)
    python benchmarks/gpu_pretrain.py "${T[@]}" --variant xling= --variant "masters=--memory-efficient-bf16" \
        --variant "amp=--amp-bf16" --profile "$OUT/prof" --json "$OUT/b64.json" || exit 1
    python benchmarks/gpu_pretrain.py "${T[@]}" --break-mode complete --json "$OUT/b64c.json" || exit 1
    ;;
run)
    OUT=${OUT:?run on the device machine, where \$OUT is set}
    export PYTHONPATH=$PWD/.gpu/site:$PWD
    export TORCHINDUCTOR_CACHE_DIR=${TMPDIR:-/tmp}/xling-inductor-cache  # shared by the runs of this call
    nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
    python -c "import torch, fairseq, xling; print('torch', torch.__version__, 'cuda', torch.version.cuda)" \
        | tee -a "$OUT/gpu.txt" || exit 1
    D=(--data .gpu/data --site .gpu/site --updates 40 --repeats 1)
    timeout 330 python benchmarks/gpu_pretrain.py "${D[@]}" --batch-size 64 "${VARIANTS[@]}" \
        --profile "$OUT/prof" --json "$OUT/b64.json" 2>&1 | tail -40
    timeout 170 python benchmarks/gpu_pretrain.py "${D[@]}" --batch-size 64 --break-mode complete \
        --json "$OUT/b64c.json" 2>&1 | tail -25
    ls "$OUT"
    ;;
*)
    echo "usage: gpu_suite.sh prepare|check|run" >&2; exit 2
    ;;
esac
