"""The GPU benchmark (bench/gpu_suite.py, `tinyproj bench --device`, benchmarks/gpu_bench.py)
and gpu_check.sh: checked on the CPU so a lent GPU's minutes are not spent finding a typo.
The timings of the CPU smoke runs mean nothing; their structure does."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check_summary  # noqa: E402

from tinyproj import backend, models  # noqa: E402
from tinyproj.bench import gpu_suite, targets, torch_ref  # noqa: E402
from tinyproj.cli import bench as cli_bench  # noqa: E402

ROW_KINDS = ["step", "step", "epoch", "sweep", "training", "alexnet_bn"]


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
    twin = torch_ref.to_torch(model, "cpu").eval()
    with torch.no_grad():
        ref = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(mine, ref, rtol=1e-4, atol=1e-4)


def check_leg(leg, graph, tf32):
    """One leg of a smoke run: every row, the graph as expected, the trajectory agreeing."""
    cases = [r["case"] for r in leg["rows"]]
    assert [c.split()[0] for c in cases] == ROW_KINDS
    assert leg["tf32"] is tf32 and leg["tf32_in_effect"] is False      # no TF32 off the GPU
    assert all(c.endswith(" TF32") is tf32 for c in cases)
    replayed = leg["rows"][1]
    assert "replayed" in cases[1] and replayed["graph"] == graph
    assert replayed["graph_fallbacks"] == []
    assert "replayed_median_s" in leg["rows"][2]["tinyproj"]
    assert all(r["ratio"] > 0 for r in leg["rows"] if r["torch"] is not None)
    epoch = leg["rows"][4]                       # the real training epoch: tinyproj alone
    assert epoch["torch"] is None and "ratio" not in epoch
    assert epoch["tinyproj"]["steps"] == epoch["tinyproj"]["images"] // 50
    assert epoch["tinyproj"]["median_s"] == pytest.approx(epoch["tinyproj"]["train_s"]
                                                          + epoch["tinyproj"]["eval_s"])
    assert epoch["graph_fallbacks"] == []        # no "CUDA graph: ..." reason to run eagerly
    traj = leg["trajectory"]
    assert len(traj["tinyproj_losses"]) == len(traj["torch_losses"]) == 3
    # the same weights and data: the first loss agrees between the frameworks
    first = traj["torch_losses"][0]
    assert abs(traj["tinyproj_losses"][0] - first) < 1e-3 * max(1.0, abs(first))


@pytest.mark.numpy_only("runs the script in a process of its own, on the backend it names")
@pytest.mark.parametrize("device, graph", [("cpu", "eager"), ("standin", "standin")])
def test_cpu_smoke_run_writes_every_row(tmp_path, device, graph):
    """``--device cpu`` runs the script on NumPy (no graph); ``--device standin`` on the CPU
    stand-in for CuPy, so device arrays that meet host arrays, or a step that cannot be
    recorded, fail here instead of on a lent GPU."""
    out = tmp_path / "b.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_bench.py"),
                           "--device", device, "--smoke", "--tf32", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["complete"] is True and not out.with_name("b.json.tmp").exists()
    assert result["kind"] == gpu_suite.RESULT_KIND and result["strict"] is None
    assert result["versions"]["device"] == device and result["versions"]["gpu"] is None
    check_leg(result["tf32"], graph, tf32=True)
    again = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_bench.py"),
                            "--device", "cpu", "--smoke", "--out", str(out)],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "exists" in again.stderr


@pytest.mark.numpy_only("runs the command in a process of its own, on the stand-in")
def test_bench_device_measures_both_precisions_in_one_run(tmp_path):
    """`tinyproj bench --device standin --smoke`: strict float32, then TF32, in one file of one
    process; a later run may replace that earlier result, but never someone else's file."""
    out = tmp_path / "both.json"
    command = [sys.executable, "-m", "tinyproj.cli", "bench", "--device", "standin", "--smoke",
               "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["complete"] is True and result["smoke"] is True
    # a smoke run measures none of issue 12's targets (other widths, no pipeline), and says so
    assert len(result["targets"]) == 6
    assert all(t["measured"] is None and t["met"] is None for t in result["targets"])
    assert "not measured" in done.stdout
    assert set(result["tf32_effect"]["largest_loss_change"]) == {"tinyproj", "torch"}
    check_leg(result["strict"], "standin", tf32=False)
    check_leg(result["tf32"], "standin", tf32=True)
    assert "strict float32:" in done.stdout
    # off a GPU the TF32 leg says that it times strict float32 again
    assert "TF32 allowed on both sides (a no-op off a GPU" in done.stdout
    assert not (tmp_path / "results").exists()         # --json given: nothing else written
    assert gpu_suite.is_result_file(out)
    cli_bench._check_json_target(str(out))             # an earlier result may be replaced
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": 1}')
    refused = subprocess.run(command[:-1] + [str(notes)], capture_output=True, text=True,
                             timeout=120, cwd=tmp_path)
    assert refused.returncode == 2 and "--json" in refused.stderr
    assert notes.read_text() == '{"mine": 1}'


@pytest.mark.parametrize("flags, named", [
    (["--device", "gpu", "--only", "conv"], "--only"),
    (["--device", "standin", "--no-torch"], "--no-torch"),
    (["--smoke"], "--smoke"),
    (["--device", "standin", "--smoke", "--repeats", "0"], "--repeats"),
    (["--device", "standin", "--smoke", "--json", "missing/b.json"], "--json"),
    (["--only", "first", "--json", "missing/b.json"], "--json"),
])
def test_bench_refuses_flags_that_do_not_fit_the_device(tmp_path, flags, named):
    done = subprocess.run([sys.executable, "-m", "tinyproj.cli", "bench", *flags],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and named in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_bench_device_gpu_without_a_gpu_names_the_fix(tmp_path):
    if backend.cupy_available():
        pytest.skip("a GPU is here")
    done = subprocess.run([sys.executable, "-m", "tinyproj.cli", "bench", "--device", "gpu"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and "--device gpu needs CuPy" in done.stderr
    assert "--device standin --smoke" in done.stderr and list(tmp_path.iterdir()) == []


def test_bench_device_gpu_with_a_cpu_build_of_pytorch_names_the_fix(monkeypatch, capsys,
                                                                     tmp_path):
    """CuPy and a GPU, but PyTorch without CUDA (the `bench` extra installs the CPU build):
    refused before anything is measured or written, naming the flag and the fix."""
    from tinyproj.cli import main
    monkeypatch.setattr(backend, "cupy_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--device", "gpu"]) == 2
    err = capsys.readouterr().err
    assert "--device gpu" in err and "CUDA build of PyTorch" in err
    assert list(tmp_path.iterdir()) == []


def test_the_default_result_file_names_the_gpu_and_never_replaces_one(tmp_path):
    import datetime
    day = datetime.date(2026, 12, 3)
    first = cli_bench.default_result_path("NVIDIA H200", tmp_path, day)
    assert first.name == "bench-gpu-nvidia-h200-2026-12-03.json"
    first.write_text("{}")
    second = cli_bench.default_result_path("NVIDIA H200", tmp_path, day)
    assert second.name == "bench-gpu-nvidia-h200-2026-12-03-2.json"


@pytest.mark.numpy_only("calls gpu_suite.run, which selects the NumPy backend")
def test_a_stopped_bench_keeps_the_rows_it_measured(tmp_path, monkeypatch):
    """gpu_check.sh stops the bench at its timeout: the rows measured so far are on disk,
    marked incomplete."""
    def stop(*args, **kwargs):
        raise KeyboardInterrupt                    # what the timeout's signal amounts to
    monkeypatch.setattr(gpu_suite, "tinyproj_forward", stop)   # the epoch row's first call
    out = tmp_path / "b.json"
    with pytest.raises(KeyboardInterrupt):
        gpu_suite.run_both("cpu", True, 1, 1, out=out, log=lambda line: None)
    partial = json.loads(out.read_text())
    assert partial["complete"] is False and partial["tf32"] is None
    assert [r["case"].split()[0] for r in partial["strict"]["rows"]] == ["step", "step"]
    assert partial["strict"]["rows"][0]["ratio"] > 0


def test_tf32_exists_only_on_cupy():
    """NumPy and the stand-in multiply float32 strictly, whatever is asked."""
    if backend.name() == "cupy":
        pytest.skip("tested on the GPU by test_tf32_switch_changes_cupys_products")
    assert backend.set_tf32(True) is False and backend.tf32_enabled() is False
    assert backend.set_tf32(False) is False


def test_info_says_float32_products_are_strict(capsys):
    from tinyproj.cli import main
    assert main(["info"]) == 0
    line = next(li for li in capsys.readouterr().out.splitlines() if li.startswith("float32"))
    assert "strict products" in line


def test_set_tf32_sets_cupys_float32_compute_type(monkeypatch):
    """The wiring, with a stand-in for CuPy's switch (names as in cupy 14's
    cupy._core._routines_linalg): True asks for TF32, False for CuPy's default (strict), and
    the answer is read back, so a GPU that refuses TF32 (compute capability < 8) says False."""
    import types
    calls = []

    class Linalg(types.ModuleType):
        COMPUTE_TYPE_DEFAULT, COMPUTE_TYPE_TF32 = 1, 7
        current = 1
        refuse = False

        def set_compute_type(self, dtype, kind):
            calls.append((np.dtype(dtype), kind))
            self.current = self.COMPUTE_TYPE_DEFAULT if self.refuse else kind

        def get_compute_type(self, dtype):
            assert np.dtype(dtype) == np.float32
            return self.current

    linalg = Linalg("cupy._core._routines_linalg")
    core = types.ModuleType("cupy._core")
    core._routines_linalg = linalg
    monkeypatch.setitem(sys.modules, "cupy", types.ModuleType("cupy"))
    monkeypatch.setitem(sys.modules, "cupy._core", core)
    monkeypatch.setitem(sys.modules, "cupy._core._routines_linalg", linalg)
    monkeypatch.setitem(backend._state, "name", "cupy")
    assert backend.set_tf32(True) is True and backend.tf32_enabled() is True
    assert backend.set_tf32(False) is False and backend.tf32_enabled() is False
    assert calls == [(np.dtype(np.float32), 7), (np.dtype(np.float32), 1)]
    linalg.refuse = True                               # an older GPU: CuPy keeps the default
    assert backend.set_tf32(True) is False


@pytest.mark.gpu
def test_tf32_switch_changes_cupys_products(on_cupy, capsys):
    """On a GPU (compute capability >= 8): strict float32 products agree with float64 to
    float32 rounding; with TF32 on, the inputs lose 13 mantissa bits and the error grows; off
    again, strict again."""
    import cupy
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((512, 512)) for _ in range(2))
    exact = a @ b
    ga, gb = cupy.asarray(a, dtype=cupy.float32), cupy.asarray(b, dtype=cupy.float32)
    try:
        assert backend.set_tf32(False) is False
        strict = np.abs(cupy.asnumpy(ga @ gb) - exact).max()
        assert backend.set_tf32(True) is True and backend.tf32_enabled()
        tf32 = np.abs(cupy.asnumpy(ga @ gb) - exact).max()
        from tinyproj.cli import main
        assert main(["info"]) == 0
        assert "may use TF32" in capsys.readouterr().out
    finally:
        backend.set_tf32(False)
    assert strict < 1e-3 < tf32, (strict, tf32)
    assert np.abs(cupy.asnumpy(ga @ gb) - exact).max() == strict


def test_gpu_check_script_parses_and_names_existing_test_files():
    script = ROOT / "benchmarks" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    listed = subprocess.run(["bash", "-c", 'eval "$(grep -A5 ^DEVICE_TESTS= ' + str(script)
                             + ')"; echo $DEVICE_TESTS'], cwd=ROOT, capture_output=True,
                            text=True).stdout.split()
    assert len(listed) > 10 and all((ROOT / name).is_file() for name in listed), listed
    import re
    named = set(re.findall(r"tests/\S+?\.py", script.read_text()))
    assert {"tests/test_gpu_graphs.py", "tests/test_kernels_gpu_host.py"} <= named
    assert all((ROOT / name).is_file() for name in named), named


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


def test_summary_finds_the_closing_line_under_a_trailing_warning():
    log = "x::t PASSED\n= 1 passed, 3 deselected in 2.00s =\nsys:1: ResourceWarning: x\n"
    assert gpu_check_summary.counts(log) == {"passed": 1, "deselected": 3}


def test_summary_counts_xdist_workers_lines_and_ids_with_spaces():
    """suite_cupy runs in 4 processes (pytest-xdist): its -v lines put the outcome first."""
    log = ("tests/test_a.py::test_x \n"
           "[gw0] [  2%] PASSED tests/test_a.py::test_x \n"
           "[gw1] [ 13%] FAILED tests/test_b.py::test_y[a b] \n"
           "[gw1] [100%] SKIPPED tests/test_b.py::test_z \n"
           "tests/test_c.py::test_w[x y] PASSED      [ 50%]\n")
    assert gpu_check_summary.counts(log) == {"stopped": True, "passed": 2, "failed": 1,
                                             "skipped": 1}


def test_summary_records_exit_seconds_and_timeouts(tmp_path):
    (tmp_path / "gpu-tests.txt").write_text("x::t PASSED\n1 passed in 1.0s\n")
    (tmp_path / "suite-cupy.txt").write_text("x::t PASSED\nx::u ")
    (tmp_path / "graph-tests.txt").write_text("ImportError while loading conftest\n")
    assert gpu_check_summary.main([str(tmp_path), "gpu_tests=0:12", "suite_cupy=124:75",
                                   "bench=1:3", "graph_tests=4:1", "epoch=137:60"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["exit"] == {"gpu_tests": 0, "suite_cupy": 124, "bench": 1,
                               "graph_tests": 4, "epoch": 137}
    assert summary["seconds"] == {"gpu_tests": 12, "suite_cupy": 75, "bench": 3,
                                  "graph_tests": 1, "epoch": 60}
    assert summary["graph_tests"] == {"no_closing_line": True}     # pytest's own error
    assert summary["timed_out"] == ["suite_cupy", "epoch"]         # 137: killed 10 s later
    assert summary["gpu_tests"] == {"passed": 1}
    assert summary["suite_cupy"] == {"stopped": True, "passed": 1}


def test_the_pipeline_gets_the_measured_alexnet_step(tmp_path):
    bench = tmp_path / "gpu-bench.json"
    assert gpu_check_summary.alexnet_step_seconds(bench) is None            # no bench ran
    bench.write_text(json.dumps({"strict": {"rows": [
        {"kind": "step", "width": 1.0, "tinyproj": {"median_s": 0.01}},
        {"kind": "alexnet", "width": 1.0, "tinyproj": {"median_s": 0.25}}]}}))
    assert gpu_check_summary.alexnet_step_seconds(bench) == 0.25
    bench.write_text(json.dumps({"strict": {"rows": [{"kind": "step", "width": 1.0,
                                                      "tinyproj": {"median_s": 0.01}}]}}))
    assert gpu_check_summary.alexnet_step_seconds(bench) is None            # stopped before
    bench.write_text("{not json")
    assert gpu_check_summary.alexnet_step_seconds(bench) is None


def _stub_python(tmp_path, bench_tf32="echo ran: $*"):
    """A stand-in for python that answers each step of gpu_check.sh at once (``bench_tf32``:
    what the TF32 bench step does instead)."""
    stub = tmp_path / "py"
    stub.write_text(f"""#!/bin/bash
case "$*" in
  *gpu_check_summary.py*) exec {sys.executable} "$@" ;;
  *"-m pytest"*) echo "backend=${{TINYPROJ_BACKEND:-}} args: $*"
                 echo "tests/test_a.py::test_x PASSED"; echo "1 passed in 0.1s" ;;
  *gpu_bench.py*--tf32*) {bench_tf32} ;;
  *gpu_bench.py*gpu-bench.json*) echo "bench: $*"
                  echo '{{"strict": {{"rows": [{{"kind": "alexnet", "case": "alexnet",
                        "tinyproj": {{"median_s": 0.123}}}}]}}}}' > "$WORK/gpu-bench.json" ;;
  *) echo "ran: $*" ;;
esac
""")
    stub.chmod(0o755)
    return stub


def _unpack(tgz, into):
    import tarfile
    with tarfile.open(tgz) as bundle:
        bundle.extractall(into, filter="data")
    return into


def test_gpu_check_script_runs_every_step_and_summarises(tmp_path):
    """The script's plumbing on the CPU, with a stand-in for python that answers each step:
    every step runs with the arguments meant for it (the TF32 accuracy step too, its subset
    being there), $OUT gets just two files (the device tool returns at most 8): the packed
    work folder and the summary; a second run into the same folder is refused before
    anything is written."""
    stub = _stub_python(tmp_path)
    out, work = tmp_path / "out", tmp_path / "work"
    subset = tmp_path / "subset.npz"
    subset.write_bytes(b"")                     # present: the TF32 accuracy step runs
    env = {"PATH": "/usr/bin:/bin", "OUT": str(out), "WORK": str(work), "PYTHON": str(stub),
           "TF32_SUBSET": str(subset)}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["gpu-check.tgz", "summary.json"]
    got = _unpack(out / "gpu-check.tgz", tmp_path / "unpacked")
    summary = json.loads((out / "summary.json").read_text())
    assert json.loads((got / "summary.json").read_text()) == summary
    assert summary["exit"] == dict.fromkeys(
        ["info", "gpu_tests", "graph_tests", "bench", "epoch", "bench_tf32", "tf32_accuracy",
         "pipeline", "profile", "suite_cupy"], 0)
    assert f"--subset {subset}" in (got / "tf32-accuracy.txt").read_text()
    assert len(summary["targets"]) == 6 and "issue 12's targets" in done.stdout
    assert summary["timed_out"] == [] and summary["suite_cupy"] == {"passed": 1}
    suite = (got / "suite-cupy.txt").read_text()
    assert "backend=cupy" in suite and "-n 4" in suite
    gpu_tests = (got / "gpu-tests.txt").read_text()
    assert "-m gpu" in gpu_tests and "test_kernels_gpu_host.py" in gpu_tests
    assert "TINYPROJ_BACKEND=cupy" not in gpu_tests
    bench = (got / "gpu-bench.txt").read_text()
    assert "--repeats 20 --skip training" in bench and "--tf32" in bench
    assert "--skip step,alexnet,trajectory --out" in (got / "gpu-epoch.txt").read_text()
    # the pipeline is compared with the AlexNet step the bench measured
    assert "imagenet_pipeline.py" in (got / "pipeline.txt").read_text()
    assert "--step-seconds 0.123000" in (got / "pipeline.txt").read_text()
    profile = (got / "step-profile.txt").read_text()
    assert profile.count("step_profile.py --gpu") == 2 and "--model alexnet_bn" in profile
    again = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "new folder" in again.stderr
    reused = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], cwd=ROOT,
                            env=dict(env, OUT=str(tmp_path / "out2")), capture_output=True,
                            text=True, timeout=60)
    assert reused.returncode == 2 and "WORK" in reused.stderr
    assert not (tmp_path / "out2").exists()
    for work in ("out3", "out3/work"):                     # OUT must hold only the results
        inside = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], cwd=ROOT,
                                env=dict(env, OUT=str(tmp_path / "out3"),
                                         WORK=str(tmp_path / work)),
                                capture_output=True, text=True, timeout=60)
        assert inside.returncode == 2 and "inside" in inside.stderr
        assert not (tmp_path / "out3").exists()


def test_gpu_check_keeps_every_finished_step_when_the_run_is_killed(tmp_path):
    """The device tool kills a command at its limit (no trap runs then): the steps finished
    before it are already packed in $OUT, with their summary."""
    import os
    import signal
    import time
    marker = tmp_path / "tf32-started"
    stub = _stub_python(tmp_path, bench_tf32=f"touch {marker}; sleep 20")
    out = tmp_path / "out"
    env = {"PATH": "/usr/bin:/bin", "OUT": str(out), "WORK": str(tmp_path / "work"),
           "PYTHON": str(stub), "TF32_SUBSET": str(tmp_path / "none.npz")}
    script = subprocess.Popen(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], cwd=ROOT,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.monotonic() + 120
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(script.pid, signal.SIGKILL)             # the script and its pipeline, at once
    script.wait()
    assert marker.exists()
    assert sorted(p.name for p in out.iterdir()) == ["gpu-check.tgz", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["exit"]) == ["info", "gpu_tests", "graph_tests", "bench", "epoch"]
    got = _unpack(out / "gpu-check.tgz", tmp_path / "unpacked")
    assert json.loads((got / "gpu-bench.json").read_text())["strict"]["rows"]


# -- issue 12's targets, read off the rows --------------------------------------------------

def _leg(step_ratio=1.4, replayed_ratio=1.1, epoch_s=9.0, alexnet_ratio=2.5, losses=(1.0, 0.9)):
    def timed(seconds):
        return {"median_s": seconds}
    return {"rows": [
        {"kind": "step", "width": 1.0, "ratio": step_ratio, "tinyproj": timed(0.014),
         "torch": timed(0.01)},
        {"kind": "step", "width": 0.25, "ratio": 0.5, "tinyproj": timed(0.004),
         "torch": timed(0.008)},
        {"kind": "step_replayed", "width": 0.25, "ratio": replayed_ratio,
         "tinyproj": timed(0.0088), "torch": timed(0.008)},
        {"kind": "training_epoch", "width": 1.0, "tinyproj": timed(epoch_s), "torch": None},
        {"kind": "alexnet", "width": 1.0, "ratio": alexnet_ratio, "tinyproj": timed(0.25),
         "torch": timed(0.1)}],
        "trajectory": {"tinyproj_losses": list(losses), "torch_losses": list(losses)}}


def test_targets_are_read_off_the_rows_met_missed_or_not_measured():
    pipeline = {"needed_images_per_s": 1000.0, "step_assumed": False, "rows": [
        {"path": "DecodePool train transform, shrunk to 256", "workers": 1,
         "images_per_s": 200.0},
        {"path": "DecodePool train transform, shrunk to 256", "workers": 16,
         "images_per_s": 1500.0},
        {"path": "DecodePool test transform, shrunk to 256", "workers": 16,
         "images_per_s": 9000.0}]}
    found = {t["target"].split()[0] + " " + t["unit"]: t
             for t in targets.check(_leg(), pipeline)}
    step, replayed, alexnet = (t for t in targets.check(_leg())[:3])
    assert (step["measured"], step["met"]) == (1.4, True)            # 1.4 <= 1.5
    assert (replayed["measured"], replayed["met"]) == (1.1, False)   # 1.1 > 1.0
    assert (alexnet["measured"], alexnet["met"]) == (2.5, False)     # 2.5 > 2.0
    epoch = found["one s"]
    assert (epoch["measured"], epoch["met"]) == (9.0, True)
    assert found["Table GPU-h"]["measured"] == pytest.approx(9.0 * 3000 / 3600)   # 7.5 h
    assert found["Table GPU-h"]["met"] is True
    decoding = found["decoding ×"]                     # the most workers, training crops
    assert decoding["measured"] == pytest.approx(1.5) and decoding["met"] is True
    assert "16 workers" in decoding["note"]


def test_a_missing_row_or_an_assumed_step_is_not_measured_never_met():
    empty = targets.check(None)
    assert all(t["measured"] is None and t["met"] is None for t in empty)
    leg = _leg()
    leg["rows"] = [r for r in leg["rows"] if r["kind"] != "training_epoch"]   # stopped early
    by_unit = {t["unit"]: t for t in targets.check(leg)}
    assert by_unit["s"]["met"] is None and by_unit["GPU-h"]["met"] is None
    assumed = {"needed_images_per_s": 1000.0, "step_assumed": True, "rows": [
        {"path": "DecodePool train transform, shrunk to 256", "workers": 16,
         "images_per_s": 5000.0}]}
    decoding = targets.check(leg, assumed)[-1]
    assert decoding["met"] is None and "assumed step" in decoding["note"]
    table = targets.format_table(targets.check(leg, assumed))
    assert "not measured" in table and "MISSED" in table and " met" in table


def test_tf32_effect_compares_the_same_rows_and_the_losses():
    strict, tf32 = _leg(losses=(1.0, 0.9, 0.8)), _leg(losses=(1.0, 0.95, 0.7))
    for row in tf32["rows"]:
        row["tinyproj"] = {"median_s": row["tinyproj"]["median_s"] / 2}   # twice as fast
    effect = targets.tf32_effect(strict, tf32)
    assert effect["time_tf32_over_strict"]["step w1.0"] == {"tinyproj": 0.5, "torch": 1.0}
    assert effect["time_tf32_over_strict"]["training_epoch w1.0"] == {"tinyproj": 0.5}
    assert effect["largest_loss_change"] == {"tinyproj": pytest.approx(0.1),
                                             "torch": pytest.approx(0.1)}
    assert targets.tf32_effect(strict, None) == {"time_tf32_over_strict": {},
                                                 "largest_loss_change": {}}
    text = targets.format_tf32({**effect, "test_error_change": {"none": -0.004}})
    assert "step w1.0" in text and "tinyproj ×0.50" in text and "Te-None -0.40%" in text
    assert targets.format_tf32({}) == "  (no TF32 leg to compare)"


# -- TF32's effect on accuracy (benchmarks/tf32_accuracy.py) ---------------------------------
def _tiny_subset(path):
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 256, (100, 3, 32, 32), dtype=np.uint8),
             y_train=np.arange(100) % 10,
             x_test=rng.integers(0, 256, (40, 3, 32, 32), dtype=np.uint8),
             y_test=np.arange(40) % 10)


@pytest.mark.numpy_only("runs the script in a process of its own, on the stand-in")
def test_tf32_accuracy_trains_twice_and_compares(tmp_path):
    """Off the GPU there is no TF32, so the two runs are the same computation: every loss and
    test error must agree exactly, and the comparison must say 0."""
    _tiny_subset(tmp_path / "s.npz")
    out = tmp_path / "a.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "tf32_accuracy.py"),
                           "--subset", str(tmp_path / "s.npz"), "--device", "standin",
                           "--epochs", "2", "--width", "0.0625", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    strict, tf32 = result["strict"], result["tf32"]
    assert (strict["tf32"], tf32["tf32"]) == (False, True)
    assert strict["tf32_in_effect"] is tf32["tf32_in_effect"] is False
    assert len(strict["train_loss"]) == len(strict["test_error"]) == 2
    assert strict["train_loss"] == tf32["train_loss"]
    assert strict["test_error"] == tf32["test_error"]
    comparison = result["comparison"]
    assert comparison["largest_loss_change"] == 0
    assert comparison["test_error_change"][-1] == {"none": 0.0, "sign": 0.0}
    p = strict["test_error"][-1]["none"]
    assert comparison["standard_error"]["none"] == pytest.approx(np.sqrt(p * (1 - p) / 40))
    assert result["train_images"] == 100 and result["test_images"] == 40
    assert result["complete"] is True


def test_tf32_accuracy_keeps_the_strict_run_when_the_tf32_run_is_stopped(tmp_path, monkeypatch,
                                                                          capsys):
    """gpu_check.sh's timeout may stop the second (TF32) training: the first is on disk."""
    import tf32_accuracy

    def train_once(subset, device, tf32, *args):
        if tf32:
            raise KeyboardInterrupt("the step's timeout")
        return {"tf32": False, "train_loss": [0.5], "test_error": [{"none": 0.25}]}
    monkeypatch.setattr(tf32_accuracy, "train_once", train_once)
    _tiny_subset(tmp_path / "s.npz")
    out = tmp_path / "a.json"
    with pytest.raises(KeyboardInterrupt):
        tf32_accuracy.main(["--subset", str(tmp_path / "s.npz"), "--device", "standin",
                            "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["complete"] is False and "comparison" not in result and "tf32" not in result
    assert result["strict"]["test_error"] == [{"none": 0.25}]


def test_tf32_accuracy_refuses_a_missing_subset_and_an_existing_file(tmp_path):
    script = [sys.executable, str(ROOT / "benchmarks" / "tf32_accuracy.py")]
    missing = subprocess.run(script + ["--subset", str(tmp_path / "nope.npz")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "--subset" in missing.stderr
    _tiny_subset(tmp_path / "s.npz")
    nowhere = subprocess.run(script + ["--subset", str(tmp_path / "s.npz"), "--device",
                                       "standin", "--json", str(tmp_path / "no" / "a.json")],
                             capture_output=True, text=True, timeout=120)
    assert nowhere.returncode == 2 and "folder does not exist" in nowhere.stderr
    (tmp_path / "taken.npz").write_bytes(b"mine")
    taken = subprocess.run(script + ["--make-subset", str(tmp_path / "taken.npz")],
                           capture_output=True, text=True, timeout=120)
    assert taken.returncode == 2 and "exists" in taken.stderr
    assert (tmp_path / "taken.npz").read_bytes() == b"mine"


def test_the_cifar_subset_holds_the_first_images(tmp_path):
    """--make-subset copies the first images of the real CIFAR-10 (skipped where it is absent)
    and load_subset standardises them per channel."""
    import warnings

    import tf32_accuracy
    from tinyproj.data import cifar
    from tinyproj.data.files import DatasetNotFoundError
    from tinyproj.errors import UserError
    try:
        folder = cifar.locate_cifar10(None, download=False)
    except (DatasetNotFoundError, UserError):
        pytest.skip("CIFAR-10 is not here (../shared/datasets)")
    out = tmp_path / "sub" / "s.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # the shared copy's md5 note
        shapes = tf32_accuracy.make_subset(out, train=12, test=5, data_dir=folder.parent)
        x_train, y_train, x_test, _ = cifar.load_cifar10(folder.parent, download=False)
    assert shapes["x_train"] == (12, 3, 32, 32) and shapes["x_test"] == (5, 3, 32, 32)
    with np.load(out) as f:
        np.testing.assert_array_equal(f["x_train"], x_train[:12])
        np.testing.assert_array_equal(f["y_train"], y_train[:12])
        np.testing.assert_array_equal(f["x_test"], x_test[:5])
    standardised = tf32_accuracy.load_subset(out)[0]
    assert standardised.dtype == np.float32
    np.testing.assert_allclose(standardised.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(standardised.std(axis=(0, 2, 3)), 1, atol=1e-4)
