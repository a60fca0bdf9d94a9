"""Thread settings for the CPU, applied when tinyproj is imported (before NumPy if possible).

A training step alternates between two thread pools on the same cores: OpenBLAS's (the
matrix products) and Numba's OpenMP pool (im2col, col2im, pooling, batch norm). By default
each pool's threads keep spinning after their work is done — OpenBLAS's for up to 2^28 CPU
cycles (about 0.1 s) — and steal the cores from the other pool: measured on 2 cores, an
im2col right after a matrix product took 15 ms instead of 9 ms, and the product after an
im2col 31 ms instead of 23 ms. So, unless you set them yourself:

    OPENBLAS_THREAD_TIMEOUT=4   OpenBLAS threads sleep after 2^4 cycles of waiting
                                (read once, when NumPy loads OpenBLAS)
    OMP_WAIT_POLICY=PASSIVE     OpenMP threads sleep as soon as they are idle
                                (read when Numba first starts its pool)

OPENBLAS_THREAD_TIMEOUT only takes effect if NumPy is imported after tinyproj; ``tinyproj
info`` says whether it did. Running two BLAS-heavy processes on the same cores is a
different problem (oversubscription): give each ``OPENBLAS_NUM_THREADS=1``.
"""
from __future__ import annotations

import os
import sys

DEFAULTS = {"OPENBLAS_THREAD_TIMEOUT": "4", "OMP_WAIT_POLICY": "PASSIVE"}

numpy_was_loaded_first = "numpy" in sys.modules
set_by_tinyproj: list = []          # the variables apply() set (the others were the user's)


def apply() -> None:
    """Set the defaults above where the environment does not set them already.

    ``TINYPROJ_THREAD_DEFAULTS=0`` leaves the environment alone (the benchmark starts its
    PyTorch worker so, to measure PyTorch with PyTorch's own settings).
    """
    if os.environ.get("TINYPROJ_THREAD_DEFAULTS", "1").strip() == "0":
        return
    for key, value in DEFAULTS.items():
        if key not in os.environ:
            os.environ[key] = value
            set_by_tinyproj.append(key)


def report() -> dict:
    """``{variable: value or None}`` in force, plus whether OpenBLAS could see its setting."""
    out = {key: os.environ.get(key) for key in DEFAULTS}
    out["openblas_setting_applied"] = (not numpy_was_loaded_first
                                       or "OPENBLAS_THREAD_TIMEOUT" not in set_by_tinyproj)
    return out
