"""The stand-in's module functions: ``xp.asarray``, ``xp.asnumpy``, ``get_array_module``, the
kernels ``kernels.get`` hands out for device arrays, and ``xp.random``; every other NumPy name
comes from :func:`numpy_function` (the package's ``__getattr__``).
"""
from __future__ import annotations

import functools

import numpy as np

from . import counters
from .array import DeviceArray, call_numpy, mixed_error, unwrap, wrap

# ---------------------------------------------------------------------------
# Module functions: ``xp.zeros``, ``xp.maximum``, ... (NumPy's, on device arrays).
# ---------------------------------------------------------------------------
def asarray(a, dtype=None, order=None):
    """A device array: device arrays stay (a cast is a launch); anything else is copied up."""
    if type(a) is DeviceArray:
        if dtype is None or np.dtype(dtype) == a.dtype:
            return a
        return a.astype(dtype)
    counters.copy(op="xp.asarray(host data)")
    return DeviceArray(np.array(a, dtype=dtype, order=order or "K"))


def array(a, dtype=None, copy=True, order="K", ndmin=0):
    """Like ``cupy.array``: a new device array (from the host: a copy up)."""
    if type(a) is DeviceArray:
        counters.launch("copy")
        raw = unwrap(a)
        result = np.array(raw, dtype=dtype, copy=True, order=order, ndmin=ndmin)
        counters.record(lambda: raw, result)
        return DeviceArray(result)
    counters.copy(op="xp.array(host data)")
    return DeviceArray(np.array(a, dtype=dtype, order=order, ndmin=ndmin))


def ascontiguousarray(a, dtype=None):
    if type(a) is not DeviceArray:
        return asarray(np.ascontiguousarray(a, dtype=dtype))
    if unwrap(a).flags.c_contiguous and (dtype is None or np.dtype(dtype) == a.dtype):
        return a
    counters.launch("ascontiguousarray")
    raw = unwrap(a)
    result = np.ascontiguousarray(raw, dtype=dtype)
    counters.record(lambda: raw, result)
    return DeviceArray(result)


def asnumpy(a, stream=None, out=None):
    """A NumPy array on the host (a device→host sync for device arrays)."""
    if type(a) is DeviceArray:
        return a.get()
    return np.asarray(a)


def scatter_add(target, indices, values) -> None:
    """``target[indices] += values`` with repeats accumulated (``cupyx.scatter_add``): one
    launch; host index arrays are copied up first, as CuPy's indexing does."""
    if type(target) is not DeviceArray:
        raise mixed_error(target)
    raw_values, raw_target, raw_key = unwrap(values), unwrap(target), target.raw_key(indices)
    np.add.at(raw_target, raw_key, raw_values)
    counters.launch("scatter_add")
    counters.record(lambda: np.add.at(raw_target, raw_key, raw_values))


def get_array_module(*args):
    """This module when any argument is a device array, else numpy (like CuPy's)."""
    import sys
    return sys.modules["tinyproj.standin"] if any(type(a) is DeviceArray for a in args) else np


@functools.lru_cache(maxsize=None)
def numpy_function(name: str):
    """NumPy's function ``name`` working on device arrays (constants and dtypes as they are)."""
    target = getattr(np, name)
    if isinstance(target, type) or not callable(target):
        return target                     # dtypes, constants, np.newaxis: as they are

    @functools.wraps(target)
    def function(*args, **kwargs):
        return call_numpy(name, target, args, kwargs)
    return function

# ---------------------------------------------------------------------------
# Kernels: what ``kernels.get(name, device_array)`` hands out.
# ---------------------------------------------------------------------------
def tinyproj_kernel(name: str):
    """The GPU kernel ``name`` for stand-in arrays: its host-compiled twin (``kernels/host.py``,
    the very per-element code of the CUDA kernel, built by the system C++ compiler), run as
    one counted launch — or None (then ``kernels.get`` hands out the reference kernel, whose
    array operations are counted one by one) when no C++ compiler is usable or
    ``TINYPROJ_STANDIN_KERNELS=reference`` asks for the reference path."""
    import os
    if os.environ.get("TINYPROJ_STANDIN_KERNELS", "host").strip().lower() == "reference":
        return None
    try:
        from ..kernels import host
    except ImportError:
        return None
    if name not in host.NAMES or not host.available():
        return None
    kernel = host.get(name)
    from ..kernels import reference

    @functools.wraps(kernel)
    def run(*args, **kwargs):
        _refuse_host_arrays(name, (args, kwargs))
        raw_args = unwrap(args)
        raw_kwargs = {k: unwrap(v) for k, v in kwargs.items()}
        try:
            result = kernel(*raw_args, **raw_kwargs)
        except TypeError:                 # a dtype the kernel does not take (float32/64 only)
            return getattr(reference, name)(*args, **kwargs)
        counters.launch(f"kernel.{name}")
        counters.record(lambda: kernel(*raw_args, **raw_kwargs), result)
        given = {}                        # an output the caller passed in comes back as itself
        for a in _device_arrays((args, kwargs)):
            given[id(unwrap(a))] = a
        return _rewrap(result, given)
    return run


def _refuse_host_arrays(name, obj):
    """A CUDA kernel takes device arrays only: CuPy refuses a NumPy array with a TypeError.
    The stand-in unwraps its arguments, so without this check a host array would pass on the
    CPU and fail only on the GPU."""
    if type(obj) is np.ndarray:
        raise TypeError(f"GPU kernel {name}: got a host (NumPy) array of shape {obj.shape}; "
                        "a CUDA kernel takes device arrays only (backend.asarray first)")
    if type(obj) in (list, tuple):
        for o in obj:
            _refuse_host_arrays(name, o)
    elif type(obj) is dict:
        for o in obj.values():
            _refuse_host_arrays(name, o)


def _device_arrays(obj):
    if type(obj) is DeviceArray:
        yield obj
    elif type(obj) in (list, tuple):
        for o in obj:
            yield from _device_arrays(o)
    elif type(obj) is dict:
        for o in obj.values():
            yield from _device_arrays(o)


def _rewrap(obj, given):
    """``wrap``, except that arrays the caller handed in come back as the caller's objects."""
    if isinstance(obj, np.ndarray) and id(obj) in given:
        return given[id(obj)]
    if type(obj) is tuple:
        return tuple(_rewrap(o, given) for o in obj)
    return wrap(obj)


# ---------------------------------------------------------------------------
# Random numbers: ``xp.random.default_rng(seed)`` like ``cupy.random.default_rng``.
# ---------------------------------------------------------------------------
class Generator:
    """A seeded generator on the stand-in device; every draw is a launch, results are
    device arrays (a single draw is a 0-d device array, as with CuPy)."""

    def __init__(self, seed=None):
        self._g = np.random.default_rng(seed)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._g, name)
        if not callable(attr):
            raise AttributeError(f"the stand-in generator has no public state ({name!r}); "
                                 "like CuPy's, its state lives on the device")

        def draw(*args, **kwargs):
            raw_args, raw_kwargs = unwrap(args), {k: unwrap(v) for k, v in kwargs.items()}
            result = attr(*raw_args, **raw_kwargs)
            counters.launch(f"random.{name}")
            if isinstance(result, (float, int, bool, np.generic)):
                result = np.asarray(result)
            counters.record(lambda: attr(*raw_args, **raw_kwargs), result)   # replays draw anew
            return wrap(result)
        return draw

    def __repr__(self):
        return "standin.random.Generator"


class _Random:
    """``xp.random``: ``default_rng`` and ``Generator``."""

    Generator = Generator

    @staticmethod
    def default_rng(seed=None):
        if isinstance(seed, Generator):
            return seed
        return Generator(seed)


random = _Random()
