#!/bin/bash
# The one prepared GPU check (issues 11 and 12): at most 6 minutes on an H100/H200 (the tests
# and the bench: 300 s; a real training epoch: 40 s; a CPU-only pipeline step: 20 s), plus
# 45 s for TF32's effect on accuracy when a CIFAR-10 subset was carried along; otherwise
# synthetic data only.
# Run it from the repository root on a machine with CuPy and PyTorch for CUDA:
#
#   OUT=/tmp/gpu-check bash benchmarks/gpu_check.sh
#
# It writes, under $OUT (each step bounded so the whole stays inside 6-7 minutes):
#   info.txt            nvidia-smi, `tinyproj info` (GPU, CUDA, CuPy, kernel family)
#   gpu-tests.txt       pytest -m gpu: every kernel against the reference on the GPU
#   graph-tests.txt     pytest -m gpu tests/test_gpu_graphs.py: eager vs replayed CUDA-graph
#                       training steps give the same weights (issue 12)
#   suite-cupy.txt      the array-code tests on the real device (TINYPROJ_BACKEND=cupy)
#   gpu-bench.json      benchmarks/gpu_bench.py: step, epoch, sweep draw, AlexNet vs PyTorch
#   gpu-bench-tf32.json the same with TF32 allowed on both sides (and the 20-step losses)
#   gpu-epoch.json      one real epoch of the training loop (tr-sign-c, width 1.0, 45,000
#                       synthetic images) with its evaluation: 40 s on top of the 300 s
#   tf32-accuracy.json  benchmarks/tf32_accuracy.py: the same short training strict and with
#                       TF32, test errors compared (45 s; only with a carried CIFAR-10 subset,
#                       $TF32_SUBSET, default build/cifar-subset.npz)
#   summary.json        each step's exit status and seconds, and the test steps' counts (per
#                       test when a timeout stopped the step: benchmarks/gpu_check_summary.py)
#   pipeline.json       benchmarks/imagenet_pipeline.py on the GPU machine's cores (1 and 16
#                       workers, original and shrunk JPEGs) against the AlexNet-BN step time
#                       of gpu-bench.json: CPU only, the last step
# A step that fails or runs out of time is recorded and the next one still runs; what it
# finished before its timeout is kept (test lines, the bench's rows so far).
set -uo pipefail
OUT=${OUT:?set OUT to a folder for the results}
if [ -e "$OUT/summary.json" ] || [ -e "$OUT/gpu-bench.json" ]; then
    echo "error: OUT=$OUT holds an earlier check's results; set OUT to a new folder" >&2
    exit 2
fi
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
# the framework's array code (the whole suite takes longer than this check may)
DEVICE_TESTS="tests/test_budgets.py tests/test_tensor.py tests/test_functional.py tests/test_nn.py
  tests/test_optim.py tests/test_clipping.py tests/test_projections.py tests/test_algorithm1.py
  tests/test_models.py tests/test_kernels.py tests/test_kernels_fused.py
  tests/test_kernels_stochastic.py tests/test_against_torch.py tests/test_training.py
  tests/test_robustness.py tests/test_bn_estimate.py tests/test_walking_noise.py" 

{ nvidia-smi; $PY -m tinyproj.cli info; } > "$OUT/info.txt" 2>&1

# step NAME SECONDS LOG COMMAND...: run COMMAND for at most SECONDS, its output appended to
# $OUT/LOG; record NAME=exit:seconds for the summary (exit 124: stopped by the timeout).
STEPS=()
step() {
    local name=$1 limit=$2 log=$3 t0=$SECONDS; shift 3
    timeout "$limit" "$@" >> "$OUT/$log" 2>&1
    local rc=$?
    STEPS+=("$name=$rc:$((SECONDS - t0))")
    echo "$name: exit $rc after $((SECONDS - t0)) s (limit $limit s)"
}
# -v: one line per finished test, so a step its timeout stops still tells how far it got.
# The first step also pays for CuPy's first compilation of each kernel (cached on disk after).
PYTEST=($PY -m pytest -v -p no:cacheprovider --durations=10)
step gpu_tests 55 gpu-tests.txt "${PYTEST[@]}" -m gpu --ignore=tests/test_gpu_graphs.py tests
step graph_tests 45 graph-tests.txt "${PYTEST[@]}" -m gpu tests/test_gpu_graphs.py
step suite_cupy 75 suite-cupy.txt env TINYPROJ_BACKEND=cupy "${PYTEST[@]}" $DEVICE_TESTS
# the bench rewrites its JSON after every row ("complete": false until it ends)
step bench 80 gpu-bench.txt $PY benchmarks/gpu_bench.py --repeats 20 --skip training \
    --out "$OUT/gpu-bench.json"
step bench_tf32 45 gpu-bench.txt $PY benchmarks/gpu_bench.py --tf32 --repeats 10 \
    --skip draw,alexnet,training --out "$OUT/gpu-bench-tf32.json"
# one real training epoch (45,000 synthetic images, width 1.0, replayed) with its evaluation
step epoch 40 gpu-bench.txt $PY benchmarks/gpu_bench.py --skip step,alexnet,trajectory \
    --out "$OUT/gpu-epoch.json"
# TF32's effect on accuracy: Tr-Sign-C at width 0.25, 5 epochs on 8,000 real CIFAR-10 images,
# strict and then TF32 -- only when the subset was made and carried along (see README)
TF32_SUBSET=${TF32_SUBSET:-build/cifar-subset.npz}
if [ -f "$TF32_SUBSET" ]; then
    step tf32_accuracy 45 tf32-accuracy.txt $PY benchmarks/tf32_accuracy.py \
        --subset "$TF32_SUBSET" --json "$OUT/tf32-accuracy.json"
fi
# the ImageNet input pipeline on this machine's 16 cores (no GPU needed; issue 12's >= 1.2x),
# against the AlexNet-BN step the bench just measured (an assumed step time when it did not)
STEP_S=$($PY benchmarks/gpu_check_summary.py --alexnet-step "$OUT/gpu-bench.json")
step pipeline 20 pipeline.txt $PY benchmarks/imagenet_pipeline.py --images 192 \
    --workers 1,16 ${STEP_S:+--step-seconds "$STEP_S"} --json "$OUT/pipeline.json"

# summary.json, and issue 12's targets as the last lines of the output
$PY benchmarks/gpu_check_summary.py "$OUT" "${STEPS[@]}"
