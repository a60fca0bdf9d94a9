"""Edge cases of the ImageNet tools (audit B7-B10, H21): `reproduce --slurm` checks, the
pipeline benchmark's flags, DecodePool's empty / mismatched batches, its worker bound, and
workers that leave Ctrl-C to the parent."""
import importlib.util
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from tinyproj.cli import main
from tinyproj.data.decode_pool import DecodePool
from tinyproj.data.process_pool import ScriptSafePool, check_workers, max_workers

Image = pytest.importorskip("PIL.Image")
ROOT = Path(__file__).resolve().parents[1]


def _jpeg(path, w=80, h=60, seed=0):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path, quality=90)
    return path


def _imagenet(data):
    """A data folder holding imagenet/{train,val}/<class>/ with one tiny JPEG each."""
    for split in ("train", "val"):
        _jpeg(data / "imagenet" / split / "n01" / "a.JPEG")
    return data


# --- reproduce --slurm (B7, B9) ---------------------------------------------------------

def test_dry_run_slurm_checks_the_data_before_writing_the_script(tmp_path, capsys):
    script, out = tmp_path / "s5.sh", tmp_path / "r5"
    argv = ["reproduce", "alexnet", "--out", str(out), "--dry-run", "--slurm", str(script)]
    assert main(argv + ["--data-dir", str(tmp_path / "nowhere")]) == 2
    assert "--data-dir" in capsys.readouterr().err
    assert not script.exists() and not out.exists()
    # with the data there, --dry-run --slurm writes the script and runs nothing
    assert main(argv + ["--data-dir", str(_imagenet(tmp_path / "data"))]) == 0
    assert script.is_file() and not out.exists()


def test_dry_run_without_slurm_still_writes_nothing(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["reproduce", "alexnet", "--out", str(out), "--dry-run",
                 "--data-dir", str(tmp_path / "nowhere")]) == 0
    assert "alexnet-stochm3-c" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["s 6.sh", "my dir/t.sh", "t%j.sh"])
def test_a_slurm_path_with_whitespace_or_percent_is_refused(tmp_path, capsys, where):
    script = tmp_path / where
    script.parent.mkdir(exist_ok=True)
    assert main(["reproduce", "table2", "--out", str(tmp_path / "r"),
                 "--slurm", str(script)]) == 2
    err = capsys.readouterr().err
    assert "--slurm" in err and "whitespace" in err and "Traceback" not in err
    assert not script.exists()


def test_a_worker_count_must_be_a_whole_number():
    for bad in (True, 2.5, "4"):
        with pytest.raises(ValueError, match="workers must be between"):
            check_workers(bad)
    assert check_workers(0) == 0


# --- benchmarks/imagenet_pipeline.py (B8) -------------------------------------------------

def _bench():
    spec = importlib.util.spec_from_file_location(
        "imagenet_pipeline_bench", ROOT / "benchmarks" / "imagenet_pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _refused(argv, capsys):
    """The benchmark's exit status for ``argv`` (tiny: 1 image, 1 worker) and its stderr."""
    with pytest.raises(SystemExit) as stop:
        _bench().main(["--images", "1", "--workers", "1"] + argv)
    return stop.value.code, capsys.readouterr().err


def test_benchmark_refuses_a_json_in_a_missing_folder_before_running(tmp_path, capsys):
    code, err = _refused(["--json", str(tmp_path / "nodir" / "x.json")], capsys)
    assert code == 2 and "--json" in err and "does not exist" in err


def test_benchmark_never_overwrites_a_json(tmp_path, capsys):
    mine = tmp_path / "mine.json"
    mine.write_text("keep\n")
    code, err = _refused(["--json", str(mine)], capsys)
    assert code == 2 and "exists; give a new file" in err
    assert mine.read_text() == "keep\n"


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf"])
def test_benchmark_step_seconds_must_be_positive(capsys, seconds):
    code, err = _refused(["--step-seconds", seconds], capsys)
    assert code == 2 and "--step-seconds must be > 0" in err


def test_benchmark_refuses_an_absurd_worker_count(capsys):
    code, err = _refused(["--workers", str(max_workers() + 1)], capsys)
    assert code == 2 and "--workers" in err


# --- DecodePool (B10, H21) --------------------------------------------------------------

@pytest.mark.parametrize("workers", [0, 1])
def test_an_empty_batch_is_an_empty_array_of_the_batch_layout(tmp_path, workers):
    one = [_jpeg(tmp_path / "a.JPEG")]
    with DecodePool(workers) as pool:
        for decode in (lambda paths: pool.center(paths, 72, 64),
                       lambda paths: pool.random(paths, 0, 0, range(len(paths)), 64)):
            empty, full = decode([]), decode(one)
            assert empty.shape == (0, 3, 64, 64) and full.shape == (1, 3, 64, 64)
            assert empty.dtype == full.dtype == np.uint8


def test_random_refuses_indices_of_another_length(tmp_path):
    paths = [_jpeg(tmp_path / f"{i}.JPEG", seed=i) for i in range(3)]
    with DecodePool(0) as pool:
        with pytest.raises(ValueError, match=r"3 paths but 2 indices"):
            pool.random(paths, 0, 0, [0, 1])
        with pytest.raises(ValueError, match=r"3 paths but 4 indices"):
            pool.random(paths, 0, 0, range(4))


def test_a_worker_count_above_four_per_cpu_is_refused_before_any_process_starts():
    assert max_workers() >= 16                  # gpu_check.sh's --workers 1,16 runs anywhere
    DecodePool(16).close()                      # (no process starts before a batch)
    for make in (DecodePool, ScriptSafePool):
        with pytest.raises(ValueError, match=r"between 0 and \d+ \(4 per CPU, at least 16"):
            make(max_workers() + 1)
    with pytest.raises(ValueError, match="workers"):
        ScriptSafePool(0)


def test_pool_workers_ignore_ctrl_c_and_the_pool_stays_usable(tmp_path):
    with ScriptSafePool(1) as pool:
        assert pool.submit(signal.getsignal, signal.SIGINT).result() == signal.SIG_IGN
    paths = [_jpeg(tmp_path / "a.JPEG")]
    with DecodePool(1) as pool:
        first = pool.center(paths, 72, 64)
        (worker,) = pool._pool._processes               # started by the first batch
        os.kill(worker, signal.SIGINT)                  # as Ctrl-C reaches the process group
        time.sleep(0.3)
        np.testing.assert_array_equal(pool.center(paths, 72, 64), first)
        assert list(pool._pool._processes) == [worker]
