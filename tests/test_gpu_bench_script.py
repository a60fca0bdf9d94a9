"""benchmarks/gpu_bench.py and gpu_check.sh: checked on the CPU so a lent GPU's minutes are not
spent finding a typo. The timings of the CPU smoke run mean nothing; its structure does."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_bench  # noqa: E402

from tinyproj import backend, models  # noqa: E402


@pytest.mark.numpy_only("compares with PyTorch's CPU build on host arrays")
@pytest.mark.parametrize("build, shape", [
    (lambda rng: models.bc_cifar10(width=0.0625, rng=rng), (3, 32, 32)),
    (lambda rng: models.alexnet_bn(10, input_size=67, width=0.0625, rng=rng), (3, 67, 67)),
])
def test_the_torch_twin_computes_what_the_tinyproj_model_computes(build, shape):
    model = build(backend.make_rng(0))
    model.eval()
    x = np.random.default_rng(1).standard_normal((3,) + shape).astype(np.float32)
    mine = backend.to_numpy(model(x).data)
    twin = gpu_bench.to_torch(model, "cpu").eval()
    with torch.no_grad():
        ref = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(mine, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.numpy_only("runs the script on NumPy")
def test_cpu_smoke_run_writes_every_row(tmp_path):
    out = tmp_path / "b.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_bench.py"),
                           "--device", "cpu", "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    cases = [r["case"] for r in result["rows"]]
    assert [c.split()[0] for c in cases] == ["step", "step", "epoch", "sweep", "alexnet_bn"]
    replayed = result["rows"][1]
    assert cases[1].endswith("replayed") and replayed["graph"] == "eager"   # NumPy: no graph
    assert "replayed_median_s" in result["rows"][2]["tinyproj"]
    traj = result["trajectory"]
    assert len(traj["tinyproj_losses"]) == len(traj["torch_losses"]) == 3
    # the same weights and data: the first loss agrees between the frameworks
    assert abs(traj["tinyproj_losses"][0] - traj["torch_losses"][0]) < 1e-3 * max(1.0, abs(traj["torch_losses"][0]))
    assert all(r["ratio"] > 0 for r in result["rows"])
    again = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_bench.py"),
                            "--device", "cpu", "--smoke", "--out", str(out)],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "exists" in again.stderr


def test_gpu_check_script_parses_and_names_existing_test_files():
    script = ROOT / "benchmarks" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    listed = subprocess.run(["bash", "-c", 'eval "$(grep -A5 ^DEVICE_TESTS= ' + str(script)
                             + ')"; echo $DEVICE_TESTS'], cwd=ROOT, capture_output=True,
                            text=True).stdout.split()
    assert len(listed) > 10 and all((ROOT / name).is_file() for name in listed), listed
