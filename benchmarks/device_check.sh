#!/usr/bin/env bash
# The GPU checks, in one call of a lent GPU machine (issue 7, thesis §6.4.2):
#   1. the cuda-marked tests (augmentation, LocalEvaluator, train-final on CUDA);
#   2. REMNet-128 and REMNet-256 final training with the thesis settings
#      (20 epochs of Adamax, flip + erasing, whole training set), the two widths
#      side by side on the one GPU; each compared with table 6.2.
#
# The machine is bare and offline: it has python3 with torch, numpy, scipy,
# networkx, matplotlib and pytest, and runs NORD from this tree (PYTHONPATH).
# Fashion-MNIST travels with the call. Before calling, here:
#     mkdir -p .device_data && cp -r /usr/share/datasets/fashion-mnist .device_data/
# then run:  bash benchmarks/device_check.sh   with carry [".device_data"] and
# timeout_s 600. Logs and summaries land in $OUT (at most 8 files come back).
#
# Options (environment): EPOCHS (20), CHANNELS ("128 256"), TRAIN_LIMIT_S (480),
# DEVICE (cuda; cpu for a dry run of this script), PYTHON (python3).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/device_check}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 NORD_DATA=$PWD/.device_data
PYTHON=${PYTHON:-python3}
EPOCHS=${EPOCHS:-20}
CHANNELS=${CHANNELS:-"128 256"}
TRAIN_LIMIT_S=${TRAIN_LIMIT_S:-480}
DEVICE=${DEVICE:-cuda}

if [ ! -f "$NORD_DATA/fashion-mnist/train-images-idx3-ubyte.gz" ]; then
    echo "no Fashion-MNIST under $NORD_DATA/fashion-mnist: copy it there and carry .device_data" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

echo "== cuda-marked tests"
CUDA_TESTS=$(grep -rl "mark.cuda" tests --include="test_*.py" | sort)
timeout 180 "$PYTHON" -m pytest -q -rs -m cuda -p no:cacheprovider $CUDA_TESTS 2>&1 \
    | tee "$OUT/cuda_tests.log" | tail -15

echo "== REMNet final training: C in $CHANNELS, $EPOCHS epochs"
pids=()
for c in $CHANNELS; do
    timeout "$TRAIN_LIMIT_S" "$PYTHON" examples/remnet_final_training.py --channels "$c" \
        --epochs "$EPOCHS" --device "$DEVICE" --out "/tmp/remnet_final/$c" >"$OUT/remnet_$c.log" 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
for c in $CHANNELS; do
    echo "-- REMNet-$c (last lines of $OUT/remnet_$c.log)"
    tail -4 "$OUT/remnet_$c.log"
    cp "/tmp/remnet_final/$c/summary.json" "$OUT/remnet_$c.json" 2>/dev/null || true
done
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader
exit $status
