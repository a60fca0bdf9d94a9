"""The one array seam: NumPy by default, CuPy when asked.

Every piece of tinyproj that touches array data asks this module for its array
module instead of importing numpy directly (rule 1 of docs/design.md)::

    xp = backend.xp_of(array)      # numpy or cupy, whichever owns `array`
    xp = backend.xp()              # the module of the backend in use

The few calls whose spelling differs between NumPy and CuPy live here and only
here: ``scatter_add`` (``np.add.at`` vs ``cupyx.scatter_add``), moving arrays
between host and device, and making seeded random generators.

Switching backends::

    import tinyproj as tp
    tp.backend.use("cupy")   # raises BackendError with instructions if CuPy is missing
    tp.backend.use("numpy")

or, for a whole process (the test suite included), ``TINYPROJ_BACKEND=cupy``.
Once CuPy is in use, a Tensor made from a NumPy array is moved to the GPU.

``use("standin")`` (``TINYPROJ_BACKEND=standin``) runs the GPU code path on the CPU: the
array module is :mod:`tinyproj.standin`, which behaves like CuPy where it matters (no
implicit conversion to host arrays, no mixing of device and host arrays) and counts kernel
launches, device→host syncs and host→device copies (rule 9 of docs/design.md). Everything
below treats its arrays as device arrays ("gpu").

Precision: float32 matrix products are strict float32 everywhere by default. On CuPy,
``set_tf32(True)`` (or ``CUPY_TF32=1`` before the first product) lets cuBLAS round their
inputs to TF32 (10-bit mantissa) on tensor cores; ``set_tf32(False)`` goes back. NumPy and the
stand-in have no TF32.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = [
    "BackendError", "use", "name", "xp", "xp_of", "is_gpu_array", "to_device", "to_numpy",
    "asarray", "default_float", "make_rng", "manual_seed", "global_rng", "scatter_add",
    "cupy_available", "on_device", "set_tf32", "tf32_enabled",
]

default_float = np.float32
"""The framework's default floating dtype (rule 4: float32 by default, float64 in gradient checks)."""


class BackendError(RuntimeError):
    """Raised when a backend is asked for that cannot be used here."""


_state = {"name": "numpy", "xp": np}


def _import_cupy():
    """Import CuPy or explain how to get it."""
    try:
        import cupy  # noqa: WPS433 (the only place cupy is imported)
    except ImportError as err:  # pragma: no cover - depends on the machine
        raise BackendError(
            "The 'cupy' backend was requested but CuPy is not importable "
            f"({err}). Install the GPU extra that matches your CUDA version, e.g. "
            "`pip install 'tinyproj[gpu]'` (CuPy for CUDA 13) or `pip install cupy-cuda12x` "
            "(CUDA 12), or stay on the default: tinyproj.backend.use('numpy')."
        ) from err
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # pragma: no cover - depends on the machine
        raise BackendError(f"CuPy is installed but no CUDA device is usable: {err}") from err
    return cupy


def cupy_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    try:
        _import_cupy()
    except BackendError:
        return False
    return True


def use(backend_name: str) -> None:
    """Select the array backend for newly created arrays: ``"numpy"`` or ``"cupy"``."""
    if backend_name == "numpy":
        _state.update(name="numpy", xp=np)
    elif backend_name == "cupy":
        _state.update(name="cupy", xp=_import_cupy())
    elif backend_name == "standin":
        from . import standin
        _state.update(name="standin", xp=standin)
    else:
        raise BackendError(f"unknown backend {backend_name!r}; choose 'numpy', 'cupy' or "
                           "'standin' (the counting CPU stand-in for the GPU)")
    _global["rng"] = None  # the global generator must live on the new backend


def name() -> str:
    """The name of the backend in use: ``"numpy"``, ``"cupy"`` or ``"standin"``."""
    return _state["name"]


def on_device() -> bool:
    """True when the backend in use keeps arrays on a device (CuPy, or the stand-in)."""
    return _state["name"] != "numpy"


def _cupy_compute_types():
    """CuPy's switch for the compute type of its float32 products (cuBLAS), or None."""
    if _state["name"] != "cupy":
        return None
    from cupy._core import _routines_linalg     # CuPy's own switch; read by every product
    return _routines_linalg


def set_tf32(enabled: bool) -> bool:
    """Let float32 matrix products use TF32 (``True``) or keep them strict float32 (``False``,
    the default); returns whether TF32 is now in effect. TF32 keeps float32's range but only
    10 bits of mantissa (about 3 decimal digits) in the products' inputs, and is faster on
    tensor cores (compute capability >= 8.0). Only CuPy has it: elsewhere this returns False."""
    linalg = _cupy_compute_types()
    if linalg is None:
        return False
    linalg.set_compute_type(np.float32, linalg.COMPUTE_TYPE_TF32 if enabled
                            else linalg.COMPUTE_TYPE_DEFAULT)
    return tf32_enabled()


def tf32_enabled() -> bool:
    """Whether float32 matrix products on the backend in use may use TF32 (see set_tf32)."""
    linalg = _cupy_compute_types()
    return linalg is not None and linalg.get_compute_type(np.float32) == linalg.COMPUTE_TYPE_TF32


def xp():
    """The array module (numpy or cupy) of the backend in use."""
    return _state["xp"]


_STANDIN_MODULE = "tinyproj.standin"     # the package; its DeviceArray is in .array


def _is_standin(array) -> bool:
    return type(array).__module__.startswith(_STANDIN_MODULE)


def is_gpu_array(array) -> bool:
    """True for a CuPy array or a stand-in device array (checked without importing CuPy)."""
    module = type(array).__module__
    return module.split(".")[0] == "cupy" or _is_standin(array)


def xp_of(array):
    """The array module that owns ``array``: cupy for a CuPy array, the stand-in module for
    a stand-in array, numpy for anything else."""
    module = type(array).__module__
    if _is_standin(array):
        from . import standin
        return standin
    if module.split(".")[0] == "cupy":
        import cupy
        return cupy
    return np


def to_numpy(array) -> np.ndarray:
    """A NumPy copy (or view) of ``array`` on the host, whatever backend made it."""
    if is_gpu_array(array):
        return array.get()
    return np.asarray(array)


def to_device(array, device: str):
    """Move ``array`` to ``"cpu"`` (a NumPy array) or ``"gpu"`` (a CuPy array; a stand-in
    device array while the stand-in backend is in use)."""
    if device == "cpu":
        return to_numpy(array)
    if device == "gpu":
        if name() == "standin" or _is_standin(array):
            from . import standin
            return standin.asarray(array)
        return _import_cupy().asarray(array)
    raise BackendError(f"unknown device {device!r}; choose 'cpu' or 'gpu'")


def asarray(data, dtype=None):
    """``data`` as an array of the backend in use (floats default to float32)."""
    module = xp()
    if is_gpu_array(data) and module is np:
        data = data.get()
    arr = module.asarray(data, dtype=dtype)
    if dtype is None and arr.dtype.kind == "f" and arr.dtype != default_float:
        if not isinstance(data, (np.ndarray,)) and not is_gpu_array(data):
            arr = arr.astype(default_float)  # python floats become float32, arrays keep theirs
    return arr


# ---------------------------------------------------------------------------
# Randomness (rule 5): one seeded generator per run, passed explicitly.
# ---------------------------------------------------------------------------
_global = {"rng": None, "seed": 0}


def make_rng(seed=None):
    """A seeded random generator on the backend in use.

    NumPy: ``numpy.random.Generator`` (PCG64). CuPy and the stand-in:
    ``kernels.generator.PhiloxGenerator``, whose draws are device arrays and whose state —
    (seed, stream), two numbers — a checkpoint saves, unlike ``cupy.random.Generator``'s.
    Both offer ``random``, ``standard_normal``, ``uniform``, ``integers`` and
    ``permutation``-style use through :func:`permutation` below.
    """
    if name() in ("cupy", "standin"):
        from .kernels.generator import PhiloxGenerator
        return PhiloxGenerator(seed)
    return np.random.default_rng(seed)


def manual_seed(seed: int) -> None:
    """Reset the global generator that layers fall back on when given no ``rng``."""
    _global["seed"] = int(seed)
    _global["rng"] = make_rng(seed)


def global_rng():
    """The fallback generator (seeded with 0 until :func:`manual_seed` is called)."""
    if _global["rng"] is None:
        _global["rng"] = make_rng(_global["seed"])
    return _global["rng"]


def permutation(rng, n: int):
    """A random permutation of ``range(n)`` as a NumPy int array (shuffling happens on the host)."""
    if isinstance(rng, np.random.Generator):
        return rng.permutation(n)
    return to_numpy(rng.random(n).argsort())


# ---------------------------------------------------------------------------
# Calls whose spelling differs between NumPy and CuPy.
# ---------------------------------------------------------------------------
def scatter_add(target, indices, values) -> None:
    """``target[indices] += values`` with repeated indices accumulated (in place).

    NumPy spells it ``np.add.at``; CuPy ``cupyx.scatter_add``. Plain ``+=`` with
    fancy indices would keep only one of the repeated updates.
    """
    if _is_standin(target):
        from . import standin
        standin.scatter_add(target, indices, values)    # one counted launch
    elif is_gpu_array(target):
        import cupyx
        cupyx.scatter_add(target, indices, values)
    else:
        np.add.at(target, indices, values)


_start = os.environ.get("TINYPROJ_BACKEND", "numpy").strip().lower() or "numpy"
if _start != "numpy":
    use(_start)      # TINYPROJ_BACKEND=cupy: start on the GPU (a clear error if unusable);
                     # TINYPROJ_BACKEND=standin: the counting CPU stand-in for the GPU
