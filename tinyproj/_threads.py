"""Thread settings for the CPU, applied at run time: the order of ``import numpy`` and
``import tinyproj`` does not matter.

A training step alternates between two thread pools on the same cores: OpenBLAS's (the
matrix products) and Numba's OpenMP pool (im2col, col2im, pooling, batch norm). By default
each pool's threads keep spinning after their work is done — OpenBLAS's for up to 2^28 CPU
cycles (about 0.1 s) — and steal the cores from the other pool. Measured on 2 cores
(``spin_cpu_seconds`` below, NumPy imported first): after one 1024² product, OpenBLAS's idle
thread burnt 30 ms of CPU in the following 0.3 s by default, 0.06 ms with the timeout below;
an im2col right after a product took 14.3 ms instead of 8.3 ms alone by default, 10.5 ms
with it. So, unless you set them yourself:

    OpenBLAS thread timeout 2^4 cycles   idle OpenBLAS threads sleep almost at once
    OMP_WAIT_POLICY=PASSIVE              idle OpenMP threads sleep at once

How, without depending on the import order:

* OpenBLAS reads ``OPENBLAS_THREAD_TIMEOUT`` once, when it is loaded (by NumPy), and its
  threads keep the value they were started with. ``apply()`` finds the loaded OpenBLAS
  through threadpoolctl, has it read the setting again (its exported ``openblas_read_env``,
  with the variable set only for that call) and stops its threads
  (``blas_thread_shutdown_``, the call OpenBLAS itself makes before a ``fork``); the next
  product starts them again, with the new timeout. A build of OpenBLAS without those
  symbols (or another BLAS) is left alone, and ``report()`` says so. Caveat: this happens
  once, at ``import tinyproj``; a program that runs matrix products in other threads at that
  very moment should import tinyproj first (or set ``TINYPROJ_THREAD_DEFAULTS=0``).
* libgomp reads ``OMP_WAIT_POLICY`` when it is loaded, which Numba does lazily, at its first
  parallel kernel — after ``import tinyproj`` whatever the order of the imports, so the
  environment variable is still the way (set in ``os.environ`` unless you set it).

Thread counts: ``limit(n)`` caps BLAS, OpenMP and Numba at ``n`` threads at run time
(threadpoolctl and ``numba.set_num_threads``) — the cure for two BLAS-heavy processes on
the same cores, which oversubscribe them (each runs 4–10× slower).

``TINYPROJ_THREAD_DEFAULTS=0`` leaves everything alone (the benchmark starts its PyTorch
worker so, to measure PyTorch with PyTorch's own settings).
"""
from __future__ import annotations

import os

OPENBLAS_TIMEOUT = 4                  # log2 of the cycles an idle OpenBLAS thread spins
OMP_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}

set_by_tinyproj: list = []            # the environment variables apply() set
_openblas_status: list = []           # one line per OpenBLAS library: what apply() did


def enabled() -> bool:
    return os.environ.get("TINYPROJ_THREAD_DEFAULTS", "1").strip() != "0"


def apply() -> None:
    """Set the defaults above where the user has not set them (see the module docstring)."""
    if not enabled():
        return
    for key, value in OMP_DEFAULTS.items():
        if key not in os.environ:
            os.environ[key] = value
            set_by_tinyproj.append(key)
    _openblas_status[:] = [_set_openblas_timeout(c) for c in _openblas_controllers()]


def _openblas_controllers():
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController().select(internal_api="openblas").lib_controllers


def _set_openblas_timeout(controller) -> str:
    """Give the running OpenBLAS of ``controller`` the timeout; a line saying what happened."""
    name = os.path.basename(controller.filepath)
    if controller.threading_layer != "pthreads":
        return f"{name}: {controller.threading_layer} threads (its OpenMP runtime's policy applies)"
    lib = controller.dynlib
    if not all(hasattr(lib, s) for s in ("openblas_read_env", "openblas_thread_timeout",
                                         "blas_thread_shutdown_")):
        return f"{name}: thread timeout not settable at run time (an unusual build)"
    wanted = int(os.environ.get("OPENBLAS_THREAD_TIMEOUT", OPENBLAS_TIMEOUT))
    if lib.openblas_thread_timeout() == wanted:
        return f"{name}: thread timeout 2^{wanted} cycles (already in force)"
    saved = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(wanted)
    try:
        lib.openblas_read_env()              # OpenBLAS reads its environment variables again
    finally:                                 # the variable stays the user's (child processes)
        if saved is None:
            del os.environ["OPENBLAS_THREAD_TIMEOUT"]
        else:
            os.environ["OPENBLAS_THREAD_TIMEOUT"] = saved
    lib.blas_thread_shutdown_()              # restarted by the next product, with the timeout
    return f"{name}: thread timeout 2^{lib.openblas_thread_timeout()} cycles (set by tinyproj)"


def openblas_timeouts() -> list:
    """The thread timeout (log2 cycles, 0 = OpenBLAS's default) of each loaded OpenBLAS."""
    return [c.dynlib.openblas_thread_timeout() for c in _openblas_controllers()
            if hasattr(c.dynlib, "openblas_thread_timeout")]


class limit:
    """Cap BLAS, OpenMP and Numba at ``n`` threads, now; as a ``with`` block, until its end.

        tinyproj.limit_threads(1)            # the rest of the program: one thread each
        with tinyproj.limit_threads(1): ...  # only inside the block
    """

    def __init__(self, n: int):
        import numba
        from threadpoolctl import threadpool_limits
        n = int(n)
        if n < 1:
            raise ValueError(f"limit_threads: n must be at least 1, got {n}")
        self._numba_before = numba.get_num_threads()
        self._pools = threadpool_limits(limits=n)
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        import numba
        self._pools.restore_original_limits()
        numba.set_num_threads(self._numba_before)


def pools() -> list:
    """threadpoolctl's view of the thread pools loaded now: dicts with user_api, internal_api,
    num_threads, version, filepath (and threading_layer for OpenBLAS)."""
    from threadpoolctl import threadpool_info
    return threadpool_info()


def report() -> dict:
    """What is in force: the pools, the OpenBLAS timeouts, OMP_WAIT_POLICY and Numba's pool."""
    import numba
    return {"defaults": enabled(), "openblas": list(_openblas_status),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
            "omp_set_by_tinyproj": "OMP_WAIT_POLICY" in set_by_tinyproj,
            "numba_threads": numba.get_num_threads(), "pools": pools()}


def spin_cpu_seconds(size: int = 1024, wait: float = 0.3, repeats: int = 5) -> float:
    """CPU seconds this process burns in the ``wait`` seconds after a ``size``² float32
    product (median of ``repeats``): the idle spinning of BLAS threads, ~0 when they sleep."""
    import resource
    import time

    import numpy as np

    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    a = np.ones((size, size), dtype=np.float32)
    burnt = []
    for _ in range(repeats):
        a @ a
        start = cpu()
        time.sleep(wait)
        burnt.append(cpu() - start)
    return sorted(burnt)[len(burnt) // 2]
