"""tinyproj/_memory.py: freed arrays stay in the process, so the next step touches no new pages."""
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import json, resource, numpy as np
import tinyproj
from tinyproj import _memory
def step():                       # what a training step does: allocate, use, free
    a = np.ones(4 * 2**20, dtype=np.float32)          # 16 MB
    b = a * 2
    del a, b
step(); step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"status": _memory.status, "faults": faults}))
"""


def _probe(**env):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    for key in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"):
        if env.get(key) is None:
            env.pop(key, None)
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="the settings are glibc's")
def test_freed_arrays_are_reused_without_new_pages():
    on = _probe()
    assert on["status"].startswith("freed memory kept")
    off = _probe(TINYPROJ_MALLOC_DEFAULTS="0")
    assert off["status"].startswith("left alone")
    # 5 steps of 2 × 16 MB: glibc's defaults map fresh pages (≈ 4096 faults per 16 MB)
    assert off["faults"] > 4096
    assert on["faults"] < 100


def test_the_users_own_malloc_settings_are_left_alone():
    got = _probe(MALLOC_TRIM_THRESHOLD_="131072")
    assert got["status"] == "left alone (your MALLOC_*/GLIBC_TUNABLES settings apply)"
