#!/usr/bin/env bash
# The chapter-8 GPU check, in one call of a lent GPU machine (issue 16): data-parallel
# DARTS with NCCL on 1, 2 and 4 GPUs (as many as the machine has), both algorithms,
# the thesis's search network (16 channels, 8 cells, batch 64) on a share of
# Fashion-MNIST; epoch times, speed-ups (thesis: 1.82 at 2 GPUs, 3.18 at 4) and
# all-reduce traffic per epoch.
#
# Before calling, here:
#     mkdir -p .device_data && cp -r /usr/share/datasets/fashion-mnist .device_data/
# then run:  bash benchmarks/darts_device_check.sh   with carry [".device_data"] and
# timeout_s 600. Results land in $OUT (world1.json, world2.json, ..., darts_gpu.log).
#
# Stage 2 (STAGES="vs-random", a second call): the searched genotype against a random one
# of the same size, 3 seeds sharing the GPU, at budgets a CPU cannot afford (10 search
# epochs of the thesis's network on a quarter of the training set, the thesis's
# architecture learning rate; final C=16, 8 cells, 10 epochs on half of it); each seed's
# row lands in $OUT/vs_random.json as it finishes.
#
# Options (environment): STAGES ("parallel vs-random"), SHARE (0.1), ROUNDS (2),
# CHANNELS (16), CELLS (8), VS_SECONDS (300), PYTHON.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/darts_device_check}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 NORD_DATA=$PWD/.device_data
PYTHON=${PYTHON:-python3}
SHARE=${SHARE:-0.1}
ROUNDS=${ROUNDS:-2}
CHANNELS=${CHANNELS:-16}
CELLS=${CELLS:-8}
if [ ! -f "$NORD_DATA/fashion-mnist/train-images-idx3-ubyte.gz" ]; then
    echo "no Fashion-MNIST under $NORD_DATA/fashion-mnist: copy it there and carry .device_data" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpus.txt"
GPUS=$(nvidia-smi -L | wc -l)
STAGES=${STAGES:-parallel vs-random}
if [[ " $STAGES " == *" vs-random "* ]]; then
    echo "== searched vs random genotypes, 3 seeds on the GPU" | tee -a "$OUT/darts_gpu.log"
    timeout "${VS_SECONDS:-300}" "$PYTHON" benchmarks/darts_vs_random.py --workers 3 \
        --epochs 10 --share 0.25 --search-channels 16 --search-cells 8 --arch-lr 3e-4 \
        --channels 16 --cells 8 --train-epochs 10 --train-share 0.5 \
        --out "$OUT/vs_random.json" 2>&1 | tail -12 | tee -a "$OUT/darts_gpu.log"
fi
[[ " $STAGES " == *" parallel "* ]] || exit 0
for N in 1 2 4; do
    if [ "$N" -gt "$GPUS" ]; then
        echo "== $N GPUs: skipped (the machine has $GPUS)" | tee -a "$OUT/darts_gpu.log"
        continue
    fi
    echo "== $N GPU(s), NCCL" | tee -a "$OUT/darts_gpu.log"
    timeout 240 "$PYTHON" -m torch.distributed.run --standalone --nproc-per-node "$N" \
        benchmarks/darts_parallel.py --torchrun --out "$OUT" --share "$SHARE" \
        --rounds "$ROUNDS" --channels "$CHANNELS" --cells "$CELLS" --steps 4 --batch 64 \
        2>&1 | tail -5 | tee -a "$OUT/darts_gpu.log"
done
"$PYTHON" - "$OUT" <<'PY' | tee -a "$OUT/darts_gpu.log"
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
runs = {int(p.stem[5:]): json.loads(p.read_text()) for p in out.glob("world*.json")}
if 1 not in runs:
    sys.exit("no 1-GPU run to compare with")
for algorithm in ("weights", "gradients"):
    base = runs[1][algorithm]["epoch_seconds"]
    for n in sorted(runs):
        r = runs[n][algorithm]
        print(f"{algorithm:<10} {n} GPU(s): {r['epoch_seconds']:.2f} s/epoch, speed-up "
              f"{base / r['epoch_seconds']:.2f}, {r['all_reduce_calls']} all-reduces, "
              f"{r['all_reduce_bytes'] / 2**20:.1f} MB")
PY
