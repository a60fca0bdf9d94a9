"""Thread settings at run time (tinyproj/_threads.py): the import order no longer matters."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# numpy first, and a product so that OpenBLAS's threads are already running
_PROBE = """
import json, numpy as np
a = np.ones((256, 256), dtype=np.float32); a @ a
import tinyproj, numba
from tinyproj import _threads
out = {"timeouts": _threads.openblas_timeouts(), "omp": __import__("os").environ.get("OMP_WAIT_POLICY")}
if MEASURE:
    out["spin"] = _threads.spin_cpu_seconds(size=512, wait=0.2, repeats=3)
blas = lambda: [p["num_threads"] for p in _threads.pools() if p["user_api"] == "blas"]
before = (blas(), numba.get_num_threads())
with tinyproj.limit_threads(1):
    a @ a
    out["inside"] = (blas(), numba.get_num_threads())
out["after"] = (blas(), numba.get_num_threads())
out["before"] = before
print(json.dumps(out))
"""


def _probe(measure=False, **env):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    for key in ("OPENBLAS_THREAD_TIMEOUT", "OMP_WAIT_POLICY", "TINYPROJ_THREAD_DEFAULTS"):
        if key not in env or env[key] is None:
            env.pop(key, None)
    code = _PROBE.replace("MEASURE", str(measure))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_numpy_imported_first_still_gets_the_openblas_timeout_and_no_idle_spinning():
    got = _probe(measure=True, OPENBLAS_THREAD_TIMEOUT=None, OMP_WAIT_POLICY=None)
    assert got["timeouts"] == [4]                   # read again and the threads restarted
    assert got["omp"] == "PASSIVE"
    # CPU time burnt while the process sleeps after a product (OpenBLAS's default spins
    # ~30 ms of it here): with the timeout the idle threads sleep, whatever the load
    assert got["spin"] < 0.01


def test_the_users_own_settings_win_and_defaults_can_be_switched_off():
    mine = _probe(OPENBLAS_THREAD_TIMEOUT="6", OMP_WAIT_POLICY="ACTIVE")
    assert mine["timeouts"] == [6] and mine["omp"] == "ACTIVE"
    off = _probe(TINYPROJ_THREAD_DEFAULTS="0", OPENBLAS_THREAD_TIMEOUT=None, OMP_WAIT_POLICY=None)
    assert off["timeouts"] == [0] and off["omp"] is None      # OpenBLAS's own default


def test_limit_threads_caps_blas_and_numba_then_restores_them():
    got = _probe()
    assert got["inside"] == [[1], 1]
    assert got["after"] == got["before"]


def test_limit_threads_rejects_zero():
    import tinyproj
    with pytest.raises(ValueError, match="at least 1"):
        tinyproj.limit_threads(0)


def test_info_lists_the_thread_pools(capsys):
    from tinyproj.cli import main
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "pool     blas: openblas" in out
    assert "thread timeout 2^4 cycles" in out
