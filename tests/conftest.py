"""Shared pytest fixtures."""
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


def pytest_report_header(config):
    from tinyproj import backend
    return f"tinyproj backend: {backend.name()} (set TINYPROJ_BACKEND=cupy to run the suite on a GPU)"


def _on_host(function):
    """Wrap a numpy.testing assertion so that it accepts CuPy arrays (copied to the host)."""
    from tinyproj import backend

    def wrapper(*args, **kwargs):
        args = [backend.to_numpy(a) if backend.is_gpu_array(a) else a for a in args]
        return function(*args, **kwargs)
    return wrapper


def pytest_configure(config):
    """On the CuPy backend, numpy.testing's assertions compare GPU arrays on the host."""
    from tinyproj import backend
    if backend.name() == "cupy":
        import numpy.testing as npt
        for name in ("assert_allclose", "assert_array_equal", "assert_array_almost_equal",
                     "assert_equal", "assert_array_less"):
            setattr(npt, name, _on_host(getattr(npt, name)))
