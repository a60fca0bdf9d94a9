"""Shared pytest fixtures."""
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The read-only real datasets next to the project (``../shared/datasets``), or skip.

    Users elsewhere will not have this folder; tests that need it skip cleanly.
    """
    path = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
    if not path.is_dir():
        pytest.skip(f"no shared datasets folder at {path}")
    return path


def _backend_for_a_test(name: str):
    from tinyproj import backend
    previous = backend.name()
    backend.use(name)
    yield
    backend.use(previous)


@pytest.fixture
def on_standin():
    """The test runs on the counting stand-in (``tinyproj/standin/``); the backend before it
    comes back afterwards."""
    yield from _backend_for_a_test("standin")


@pytest.fixture
def on_cupy():
    """The test runs on CuPy (GPU tests only); the backend before it comes back afterwards."""
    yield from _backend_for_a_test("cupy")


def _backends_present() -> list:
    """numpy always, cupy when CuPy imports and sees a GPU (the params of ``on``)."""
    from tinyproj import backend
    return ["numpy"] + (["cupy"] if backend.cupy_available() else [])


@pytest.fixture(params=_backends_present())
def on(request):
    """Switch to a backend for one test (once per backend present); yields a function that
    moves numpy arrays there."""
    import numpy as np
    from tinyproj import backend
    previous = backend.name()
    backend.use(request.param)
    try:
        yield lambda a: backend.to_device(np.asarray(a), "gpu" if request.param == "cupy" else "cpu")
    finally:
        backend.use(previous)   # leave the backend as the session had it


def pytest_report_header(config):
    from tinyproj import backend
    return (f"tinyproj backend: {backend.name()} (TINYPROJ_BACKEND=cupy runs the suite on a GPU, "
            "TINYPROJ_BACKEND=standin on the counting CPU stand-in for one)")


def _on_host(function):
    """Wrap a numpy.testing assertion so that it accepts CuPy arrays (copied to the host)."""
    from tinyproj import backend

    def wrapper(*args, **kwargs):
        args = [backend.to_numpy(a) if backend.is_gpu_array(a) else a for a in args]
        return function(*args, **kwargs)
    return wrapper


# the BLAS and OpenMP thread counts of a test process's children (CLI runs, notebook kernels).
# Not NUMBA_NUM_THREADS: set in the worker it would size Numba's pool to one thread, and
# tests/test_kernels_cpu.py's check that results do not depend on the thread count would skip;
# set later, Numba raises at its next compile. Numba is capped in the worker at run time.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def threads_per_worker():
    """Under pytest-xdist: cores // workers (at least 1); None when the suite runs in one process.

    Each of N workers otherwise starts a thread per core in each pool, so N workers run N×
    as many busy threads as there are cores and each goes several times slower: measured on 2
    cores with 2 workers, the notebook tests of lessons 6, 7 and 11 took 83 s, and 58 s with
    one thread per worker (tinyproj/_threads.py, ``limit``)."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not workers:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // int(workers))


def _limit_worker_threads():
    """Cap this worker's pools now (``tinyproj.limit_threads``: BLAS, OpenMP, Numba's use of
    its pool) and its child processes' BLAS and OpenMP by their environment, unless the user
    set a variable."""
    n = threads_per_worker()
    if n is None:
        return
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(n))
    # for the heavy children (lessons as scripts and notebooks): Numba's pool too, there
    # (_helpers.with_worker_threads)
    os.environ["TINYPROJ_TEST_THREADS"] = str(n)
    import tinyproj
    tinyproj.limit_threads(n)


def pytest_configure(config):
    """Markers; threads per xdist worker (:func:`threads_per_worker`); on a device backend
    (CuPy, the stand-in) numpy.testing's assertions compare device arrays on the host (an
    explicit copy down, as a test means it)."""
    _limit_worker_threads()
    config.addinivalue_line("markers", "gpu: needs CuPy and a CUDA GPU (skipped cleanly "
                            "elsewhere); `pytest -m gpu` runs only these")
    config.addinivalue_line("markers", "numpy_only(reason): meaningful on the NumPy backend "
                            "only (Numba kernels, host-array APIs); skipped, with the reason, "
                            "on a device backend")
    from tinyproj import backend
    if backend.on_device():
        import numpy.testing as npt
        for name in ("assert_allclose", "assert_array_equal", "assert_array_almost_equal",
                     "assert_equal", "assert_array_less"):
            setattr(npt, name, _on_host(getattr(npt, name)))


def pytest_collection_modifyitems(config, items):
    """``gpu`` tests skip without CuPy and a GPU; ``numpy_only`` tests skip on a device backend
    (each with its reason in the report)."""
    from tinyproj import backend
    gpu_reason = None
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            if gpu_reason is None:
                gpu_reason = "" if backend.cupy_available() else "needs CuPy and a CUDA GPU"
            if gpu_reason:
                item.add_marker(pytest.mark.skip(reason=gpu_reason))
        marker = item.get_closest_marker("numpy_only")
        if marker is not None and backend.on_device():
            why = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            item.add_marker(pytest.mark.skip(
                reason=f"NumPy backend only ({backend.name()} in use): {why}"))
