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
import gpu_check_summary  # noqa: E402

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


@pytest.mark.numpy_only("runs the script in a process of its own, on the backend it names")
@pytest.mark.parametrize("device, graph", [("cpu", "eager"), ("standin", "standin")])
def test_cpu_smoke_run_writes_every_row(tmp_path, device, graph):
    """``--device cpu`` runs the script on NumPy (no graph); ``--device standin`` on the CPU
    stand-in for CuPy, so device arrays that meet host arrays, or a step that cannot be
    recorded, fail here instead of on a lent GPU."""
    out = tmp_path / "b.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_bench.py"),
                           "--device", device, "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["complete"] is True and not out.with_name("b.json.tmp").exists()
    cases = [r["case"] for r in result["rows"]]
    assert [c.split()[0] for c in cases] == ["step", "step", "epoch", "sweep", "alexnet_bn"]
    replayed = result["rows"][1]
    assert cases[1].endswith("replayed") and replayed["graph"] == graph
    assert replayed["graph_fallbacks"] == []
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


@pytest.mark.numpy_only("calls gpu_bench.run, which selects the NumPy backend")
def test_a_stopped_bench_keeps_the_rows_it_measured(tmp_path, monkeypatch):
    """gpu_check.sh stops the bench at its timeout: the rows measured so far are on disk,
    marked incomplete."""
    def stop(*args, **kwargs):
        raise KeyboardInterrupt                    # what the timeout's signal amounts to
    monkeypatch.setattr(gpu_bench, "tinyproj_forward", stop)   # the epoch row's first call
    out = tmp_path / "b.json"
    with pytest.raises(KeyboardInterrupt):
        gpu_bench.run("cpu", True, 1, 1, out=out)
    partial = json.loads(out.read_text())
    assert partial["complete"] is False
    assert [r["case"].split()[0] for r in partial["rows"]] == ["step", "step"]
    assert partial["rows"][0]["ratio"] > 0


def test_gpu_check_script_parses_and_names_existing_test_files():
    script = ROOT / "benchmarks" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    listed = subprocess.run(["bash", "-c", 'eval "$(grep -A5 ^DEVICE_TESTS= ' + str(script)
                             + ')"; echo $DEVICE_TESTS'], cwd=ROOT, capture_output=True,
                            text=True).stdout.split()
    assert len(listed) > 10 and all((ROOT / name).is_file() for name in listed), listed


# -- gpu_check.sh and its summary ---------------------------------------------------------


def test_summary_counts_a_finished_pytest_run_from_its_closing_line():
    log = "tests/test_a.py::test_x PASSED\n...\n= 3 passed, 1 failed, 2 skipped in 30.12s ="
    assert gpu_check_summary.counts(log) == {"passed": 3, "failed": 1, "skipped": 2}


def test_summary_counts_a_stopped_pytest_run_test_by_test():
    """A step stopped by its timeout has no closing line: the -v lines are counted."""
    log = ("tests/test_a.py::test_x[float32] PASSED      [ 10%]\n"
           "tests/test_a.py::test_y FAILED               [ 20%]\n"
           "tests/test_b.py::test_z SKIPPED (no GPU)     [ 30%]\n"
           "tests/test_b.py::test_w PASSED               [ 40%]\n"
           "tests/test_b.py::test_v ")                       # stopped while it ran
    assert gpu_check_summary.counts(log) == {"stopped": True, "passed": 2, "failed": 1,
                                             "skipped": 1}


def test_summary_records_exit_seconds_and_timeouts(tmp_path):
    (tmp_path / "gpu-tests.txt").write_text("x::t PASSED\n1 passed in 1.0s\n")
    (tmp_path / "suite-cupy.txt").write_text("x::t PASSED\nx::u ")
    assert gpu_check_summary.main([str(tmp_path), "gpu_tests=0:12", "suite_cupy=124:75",
                                   "bench=1:3"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["exit"] == {"gpu_tests": 0, "suite_cupy": 124, "bench": 1}
    assert summary["seconds"] == {"gpu_tests": 12, "suite_cupy": 75, "bench": 3}
    assert summary["timed_out"] == ["suite_cupy"]
    assert summary["gpu_tests"] == {"passed": 1}
    assert summary["suite_cupy"] == {"stopped": True, "passed": 1}


def test_gpu_check_script_runs_every_step_and_summarises(tmp_path):
    """The script's plumbing on the CPU, with a stand-in for python that answers each step:
    every step runs with the arguments meant for it, the summary is written, and a second
    run into the same folder is refused before anything is written."""
    stub = tmp_path / "py"
    stub.write_text(f"""#!/bin/bash
case "$*" in
  *gpu_check_summary.py*) exec {sys.executable} "$@" ;;
  *"-m pytest"*) echo "backend=${{TINYPROJ_BACKEND:-}} args: $*"
                 echo "tests/test_a.py::test_x PASSED"; echo "1 passed in 0.1s" ;;
  *gpu_bench.py*) echo "bench: $*" ;;
  *) echo "ran: $*" ;;
esac
""")
    stub.chmod(0o755)
    out = tmp_path / "out"
    env = {"PATH": "/usr/bin:/bin", "OUT": str(out), "PYTHON": str(stub)}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["exit"] == dict.fromkeys(
        ["gpu_tests", "graph_tests", "suite_cupy", "bench", "bench_tf32"], 0)
    assert summary["timed_out"] == [] and summary["suite_cupy"] == {"passed": 1}
    assert "backend=cupy" in (out / "suite-cupy.txt").read_text()
    assert "-m gpu" in (out / "gpu-tests.txt").read_text()
    bench = (out / "gpu-bench.txt").read_text()
    assert "--repeats 20" in bench and "--tf32" in bench
    again = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "new folder" in again.stderr
