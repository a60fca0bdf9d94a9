#!/bin/bash
# The one prepared GPU check (issues 11 and 12) on an H100/H200: about 3.3 minutes on an H200
# (2026-12-04; under 9 if every step ran to its limit), each step bounded by its own timeout;
# synthetic data only, plus TF32's effect on accuracy when a CIFAR-10 subset was carried along.
# Run it from the repository root on a machine with CuPy and PyTorch for CUDA:
#
#   OUT=/tmp/gpu-check bash benchmarks/gpu_check.sh
#
# What comes back. The device tool returns at most 8 files from $OUT, and a command stopped at
# its own limit is killed outright. So every step writes into a work folder ($WORK, default a
# new folder under /tmp), and after *every* step the whole folder is packed again into
# $OUT/gpu-check.tgz, with summary.json beside it: whatever stops the run, $OUT holds what the
# finished steps measured, in two files (four for a moment while one is replaced).
# Unpack with `tar xzf gpu-check.tgz -C results/gpu-check-<gpu>-<date>/`. The folder holds:
#   info.txt            nvidia-smi, `tinyproj info` on CuPy (GPU, CUDA, CuPy, kernels, TF32)
#   gpu-tests.txt       pytest -m gpu: every kernel against the reference on the GPU
#   graph-tests.txt     pytest -m gpu tests/test_gpu_graphs.py: eager vs replayed CUDA-graph
#                       training steps give the same weights (issue 12)
#   gpu-bench.json      benchmarks/gpu_bench.py: step, sweep draw, AlexNet vs PyTorch
#   gpu-epoch.json      one real epoch of the training loop (tr-sign-c, width 1.0, 45,000
#                       synthetic images) with its evaluation
#   gpu-bench-tf32.json the steps again with TF32 allowed on both sides (and the 20-step losses)
#   tf32-accuracy.json  benchmarks/tf32_accuracy.py: the same short training strict and with
#                       TF32, test errors compared (only with a carried CIFAR-10 subset,
#                       $TF32_SUBSET, default build/cifar-subset.npz)
#   pipeline.json       benchmarks/imagenet_pipeline.py on the GPU machine's cores (1 and 16
#                       workers, original and shrunk JPEGs) against the AlexNet-BN step time
#                       of gpu-bench.json (CPU only)
#   step-profile.txt    benchmarks/step_profile.py --gpu: GPU time per op and kernel of the
#                       bc_cifar10 step (width 1.0) and the AlexNet-BN step (batch 512)
#   suite-cupy.txt      the array-code tests on the real device (TINYPROJ_BACKEND=cupy, 4
#                       processes): last, with whatever time is left of the budget
#   *.txt of the other steps, and summary.json: each step's exit status and seconds, the test
#                       steps' counts (per test when a timeout stopped the step), issue 12's
#                       targets (benchmarks/gpu_check_summary.py)
# A step that fails or runs out of time is recorded and the next one still runs; what it
# finished before its timeout is kept (test lines, the bench's rows so far, the strict run).
# The most important measurements run first.
set -uo pipefail
OUT=${OUT:?set OUT to a folder for the results}
if [ -e "$OUT/summary.json" ] || [ -e "$OUT/gpu-check.tgz" ]; then
    echo "error: OUT=$OUT holds an earlier check's results; set OUT to a new folder" >&2
    exit 2
fi
WORK=${WORK:-$(mktemp -d /tmp/gpu-check.XXXXXX)}
if [ -n "$(ls -A "$WORK" 2>/dev/null)" ]; then
    echo "error: WORK=$WORK is not empty; leave WORK unset (a new folder) or give an empty one" >&2
    exit 2
fi
case "$(realpath -m "$WORK")/" in
    "$(realpath -m "$OUT")"/*)
        echo "error: WORK=$WORK is OUT or inside it; OUT must hold only the packed results" >&2
        exit 2 ;;
esac
mkdir -p "$OUT" "$WORK"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
# the framework's array code (the whole suite takes longer than this check may): the files
# that train and evaluate first, as they exercise most of the device code together
DEVICE_TESTS="tests/test_training.py tests/test_robustness.py tests/test_bn_estimate.py
  tests/test_walking_noise.py tests/test_budgets.py tests/test_algorithm1.py
  tests/test_against_torch.py tests/test_kernels.py tests/test_kernels_fused.py
  tests/test_kernels_stochastic.py tests/test_tensor.py tests/test_functional.py
  tests/test_nn.py tests/test_optim.py tests/test_clipping.py tests/test_projections.py
  tests/test_models.py"

# step NAME SECONDS LOG COMMAND...: run COMMAND for at most SECONDS (then TERM; KILL 10 s
# later, as training turns a first TERM into "stop after this step" and pytest would go on),
# its output appended to $WORK/LOG; record NAME=exit:seconds (exit 124 or 137: the timeout).
STEPS=()
step() {
    local name=$1 limit=$2 log=$3 t0=$SECONDS; shift 3
    timeout -k 10 "$limit" "$@" >> "$WORK/$log" 2>&1
    local rc=$?
    STEPS+=("$name=$rc:$((SECONDS - t0))")
    echo "$name: exit $rc after $((SECONDS - t0)) s (limit $limit s)"
    pack
}
# pack: summary.json from the steps so far, and the work folder into $OUT/gpu-check.tgz,
# each replaced whole (a partial file under another name first, then a rename).
pack() {
    timeout -k 5 30 $PY benchmarks/gpu_check_summary.py "$WORK" ${STEPS[@]+"${STEPS[@]}"} \
        > "$WORK/summary.txt" 2>&1
    tar czf "$OUT/gpu-check.tgz.part" -C "$WORK" .      # exit 1 (a file changed): still whole
    [ -s "$OUT/gpu-check.tgz.part" ] && mv -f "$OUT/gpu-check.tgz.part" "$OUT/gpu-check.tgz"
    if [ -f "$WORK/summary.json" ]; then
        cp "$WORK/summary.json" "$OUT/summary.json.part" && mv -f "$OUT/summary.json.part" "$OUT/summary.json"
    fi
}

step info 30 info.txt bash -c "nvidia-smi; TINYPROJ_BACKEND=cupy $PY -m tinyproj.cli info"
# -v: one line per finished test, so a step its timeout stops still tells how far it got.
# The first step also pays for CuPy's first compilation of each kernel (cached on disk after).
PYTEST=($PY -m pytest -v -p no:cacheprovider --durations=10)
step gpu_tests 50 gpu-tests.txt "${PYTEST[@]}" -m gpu tests/test_gemm.py tests/test_alpha_pieces.py \
    tests/test_kernels_gpu_host.py \
    tests/test_device_generator.py tests/test_gpu_bench_script.py
step graph_tests 45 graph-tests.txt "${PYTEST[@]}" -m gpu tests/test_gpu_graphs.py
# the bench rewrites its JSON after every row ("complete": false until it ends)
step bench 80 gpu-bench.txt $PY benchmarks/gpu_bench.py --repeats 20 --skip training \
    --out "$WORK/gpu-bench.json"
# one real training epoch (45,000 synthetic images, width 1.0, replayed) with its evaluation
step epoch 50 gpu-epoch.txt $PY benchmarks/gpu_bench.py --skip step,alexnet,trajectory \
    --out "$WORK/gpu-epoch.json"
step bench_tf32 40 gpu-bench.txt $PY benchmarks/gpu_bench.py --tf32 --repeats 10 \
    --skip draw,alexnet,training --out "$WORK/gpu-bench-tf32.json"
# TF32's effect on accuracy: Tr-Sign-C at width 0.25, 5 epochs on 8,000 real CIFAR-10 images,
# strict and then TF32 -- only when the subset was made and carried along (see README)
TF32_SUBSET=${TF32_SUBSET:-build/cifar-subset.npz}
if [ -f "$TF32_SUBSET" ]; then
    step tf32_accuracy 45 tf32-accuracy.txt $PY benchmarks/tf32_accuracy.py \
        --subset "$TF32_SUBSET" --json "$WORK/tf32-accuracy.json"
fi
# the ImageNet input pipeline on this machine's 16 cores (no GPU needed; issue 12's >= 1.2x),
# against the AlexNet-BN step the bench just measured (an assumed step time when it did not)
STEP_S=$(timeout 30 $PY benchmarks/gpu_check_summary.py --alexnet-step "$WORK/gpu-bench.json")
step pipeline 30 pipeline.txt $PY benchmarks/imagenet_pipeline.py --images 192 \
    --workers 1,16 ${STEP_S:+--step-seconds "$STEP_S"} --json "$WORK/pipeline.json"
# where a GPU step spends its time, op by op (the profile that explains a missed target)
step profile 35 step-profile.txt bash -c "$PY benchmarks/step_profile.py --gpu --width 1 \
    --steps 5; $PY benchmarks/step_profile.py --gpu --model alexnet_bn --width 1 --batch 512 \
    --steps 3"
step suite_cupy 45 suite-cupy.txt env TINYPROJ_BACKEND=cupy "${PYTEST[@]}" -n 4 \
    --dist loadfile $DEVICE_TESTS

# issue 12's targets as the last lines of the output
cat "$WORK/summary.txt"
echo "results: $OUT/gpu-check.tgz (all files) and $OUT/summary.json; work folder $WORK"
