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
# Options (environment): SHARE (0.1), ROUNDS (2), CHANNELS (16), CELLS (8), PYTHON.
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
