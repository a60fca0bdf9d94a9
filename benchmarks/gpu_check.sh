#!/bin/bash
# The one prepared GPU check (issues 11 and 12): at most 5 minutes on an H100/H200 (the GPU
# steps' timeouts add up to 300 s; a CPU-only pipeline step adds 20 s), synthetic data only.
# Run it from the repository root on a machine with CuPy and PyTorch for CUDA:
#
#   OUT=/tmp/gpu-check bash benchmarks/gpu_check.sh
#
# It writes, under $OUT (each step bounded so the whole stays inside ~5 minutes):
#   info.txt            nvidia-smi, `tinyproj info` (GPU, CUDA, CuPy, kernel family)
#   gpu-tests.txt       pytest -m gpu: every kernel against the reference on the GPU
#   graph-tests.txt     pytest -m gpu tests/test_gpu_graphs.py: eager vs replayed CUDA-graph
#                       training steps give the same weights (issue 12)
#   suite-cupy.txt      the array-code tests on the real device (TINYPROJ_BACKEND=cupy)
#   gpu-bench.json      benchmarks/gpu_bench.py: step, epoch, sweep draw, AlexNet vs PyTorch
#   gpu-bench-tf32.json the same with TF32 allowed on both sides (and the 20-step losses)
#   summary.json        passed/failed counts of both test runs and each step's exit status
#   pipeline.json       benchmarks/imagenet_pipeline.py on the GPU machine's cores (1 and 16
#                       workers, original and shrunk JPEGs): CPU only, the last step, 20 s on
#                       top of the 300 s of GPU steps
# A step that fails or runs out of time is recorded and the next one still runs.
set -uo pipefail
OUT=${OUT:?set OUT to a folder for the results}
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
timeout 55 $PY -m pytest -q -m gpu -p no:cacheprovider --ignore=tests/test_gpu_graphs.py tests \
    > "$OUT/gpu-tests.txt" 2>&1
gpu_rc=$?
timeout 45 $PY -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu_graphs.py \
    > "$OUT/graph-tests.txt" 2>&1
graph_rc=$?
TINYPROJ_BACKEND=cupy timeout 75 $PY -m pytest -q -p no:cacheprovider $DEVICE_TESTS \
    > "$OUT/suite-cupy.txt" 2>&1
suite_rc=$?
timeout 80 $PY benchmarks/gpu_bench.py --repeats 20 --out "$OUT/gpu-bench.json" \
    > "$OUT/gpu-bench.txt" 2>&1
bench_rc=$?
timeout 45 $PY benchmarks/gpu_bench.py --tf32 --repeats 10 --skip draw,alexnet \
    --out "$OUT/gpu-bench-tf32.json" >> "$OUT/gpu-bench.txt" 2>&1
tf32_rc=$?

$PY - "$OUT" "$gpu_rc" "$graph_rc" "$suite_rc" "$bench_rc" "$tf32_rc" <<'PYEOF'
import json, re, sys
out, *rcs = sys.argv[1:]
def counts(name):
    text = open(f"{out}/{name}").read()
    tail = text.strip().splitlines()[-1] if text.strip() else ""
    return {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed)", tail)}
summary = {"gpu_tests": counts("gpu-tests.txt"), "graph_tests": counts("graph-tests.txt"),
           "suite_cupy": counts("suite-cupy.txt"),
           "exit": dict(zip(("gpu_tests", "graph_tests", "suite_cupy", "bench", "bench_tf32"),
                            map(int, rcs)))}
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)
print(json.dumps(summary))
PYEOF

# the ImageNet input pipeline on this machine's 16 cores (no GPU needed; issue 12's >= 1.2x)
timeout 20 $PY benchmarks/imagenet_pipeline.py --images 192 --workers 1,16 \
    --json "$OUT/pipeline.json" > "$OUT/pipeline.txt" 2>&1
echo "pipeline exit $?" >> "$OUT/pipeline.txt"
