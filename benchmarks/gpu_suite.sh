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
# (--break-mode complete: padded rows, varying shapes, as `xling pretrain` trains) for fairseq and xling; then
# `xling pretrain` itself through the CLI with its GPU defaults (tiny preset), stopped by SIGTERM mid-run and
# resumed (smoke.log); then, in what is left of the call, micro-batches of 128 (b128.json). Each group has a time
# limit so that the call ends within the device's 10 minutes; each run's tokens/s is printed as it finishes.
# .gpu must be in .git/info/exclude (prepare adds it).
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=${1:?usage: gpu_suite.sh prepare|check|run|smoke}
COMPILE="--compile-layers --compile-loss"
VARIANTS=(--variant "xling=$COMPILE" --variant "masters=$COMPILE --memory-efficient-bf16"
          --variant "amp=$COMPILE --amp-bf16")

# `xling pretrain` through the CLI: GPU defaults (or CPU), SIGTERM at ~the middle, then the re-run resumes
smoke() {  # DATA WORK
    local data=$1 work=$2
    rm -rf "$work" && mkdir -p "$work/pkg"
    cp -r xling "$work/pkg/" && cp -r cli "$work/pkg/xling/cli"  # xling.cli, as the package installs it
    local X=(env PYTHONPATH="$work/pkg:${PYTHONPATH:-}" python -m xling.cli.main pretrain --data "$data"
             --out "$work/run" --preset tiny --max-updates 400 --log-interval 10 --save-interval 50)
    "${X[@]}" --dry-run 2>&1 | grep -v xlmplug.train
    "${X[@]}" > "$work/first.log" 2>&1 &
    local pid=$! i=0
    while [ $i -lt 300 ] && ! grep -q '"num_updates": "1[0-9][0-9]"' "$work/run/train.log" 2>/dev/null; do
        sleep 0.5; i=$((i + 1)); done
    kill -TERM $pid; wait $pid; echo "first launch: exit $? (130: stopped by SIGTERM)"
    tail -3 "$work/first.log"
    "${X[@]}" 2>&1 | tail -8
    python - "$work/run/pretrain.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print("launches from", [x["from_update"] for x in s["launches"]], "updates", s["num_updates"],
      "curve points", len(s["curve"]), "batch", s.get("batch_size"))
PY
}

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
    smoke "$OUT/data" "$OUT/smoke" 2>&1 | tee "$OUT/smoke.log"
    ;;
run)
    OUT=${OUT:?run on the device machine, where \$OUT is set}
    BUDGET=${BUDGET:-570}  # seconds: the device call's timeout_s (580) less what writing $OUT back needs
    export PYTHONPATH=$PWD/.gpu/site:$PWD
    export TORCHINDUCTOR_CACHE_DIR=${TMPDIR:-/tmp}/xling-inductor-cache  # shared by the runs of this call
    nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
    python -c "import torch, fairseq, xling; print('torch', torch.__version__, 'cuda', torch.version.cuda)" \
        | tee -a "$OUT/gpu.txt" || exit 1
    D=(--data .gpu/data --site .gpu/site --updates 40 --repeats 1)
    timeout 300 python benchmarks/gpu_pretrain.py "${D[@]}" --batch-size 64 "${VARIANTS[@]}" \
        --profile "$OUT/prof" --json "$OUT/b64.json" 2>&1 | tail -40
    timeout 150 python benchmarks/gpu_pretrain.py "${D[@]}" --batch-size 64 --break-mode complete \
        --json "$OUT/b64c.json" 2>&1 | tail -25
    timeout 110 bash -c "$(declare -f smoke); smoke .gpu/data ${TMPDIR:-/tmp}/xling-smoke" > "$OUT/smoke.log" 2>&1
    tail -30 "$OUT/smoke.log"
    # what is left of the call: micro-batches of 128 (64 x 512 peaked at 18.9 GB with --amp-bf16 on an H200 in
    # session 5, fairseq's at 30.5 GB, so 128 fits an 80 GB card): does a larger micro-batch raise the MFU?
    LEFT=$((BUDGET - SECONDS))
    if [ $LEFT -gt 90 ]; then
        timeout $LEFT python benchmarks/gpu_pretrain.py "${D[@]}" --batch-size 128 --variant "amp=$COMPILE --amp-bf16" \
            --variant "xling=$COMPILE" --json "$OUT/b128.json" 2>&1 | tail -25
    else
        echo "no time left for batch 128 ($LEFT s)"
    fi
    ls "$OUT"
    ;;
smoke)  # here: the CLI smoke alone, on a prep-data directory
    smoke "${2:?usage: gpu_suite.sh smoke DATA [WORK]}" "${3:-.gpu/smoke}"
    ;;
*)
    echo "usage: gpu_suite.sh prepare|check|run|smoke" >&2; exit 2
    ;;
esac
