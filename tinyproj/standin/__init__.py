"""A strict CPU stand-in for the GPU: an array module that behaves like CuPy where it matters.

Rule 9 of docs/design.md: GPU code is checkable without a GPU. This module plays CuPy's part on
the CPU. Its arrays (:class:`DeviceArray`) hold a NumPy array but act as if it lived on a
device::

    from tinyproj import backend, standin
    backend.use("standin")                  # or TINYPROJ_BACKEND=standin for a whole process
    xp = backend.xp()                       # this module, used like cupy
    x = xp.asarray(host_images)             # a host→device copy (counted)
    y = xp.maximum(x, 0) * 2                # two kernel launches (counted)
    y.sum().item()                          # one launch and one device→host sync (counted)
    float(y.sum())                          # TypeError: implicit conversion to the host
    standin.counts()                        # {"launches": 3, "syncs": 1, "copies": 1}

What it refuses, like CuPy, or stricter where a hidden sync would go unnoticed:

* implicit conversion to the host: ``np.asarray(x)`` always (as CuPy); ``float(x)``,
  ``int(x)``, ``bool(x)`` (``if x.any():``), ``x.tolist()``, ``for v in x`` and formatting
  when tinyproj's own code does it (CuPy would sync silently; tests and lessons may, as
  counted syncs — see :func:`set_strict`) — TypeError; use the explicit ``x.get()``,
  ``xp.asnumpy(x)`` or ``x.item()`` (each counted as a sync);
* mixing device and host arrays in one operation (``x + numpy_array``,
  ``xp.where(mask, numpy_array, 0)``) — TypeError; Python and NumPy scalars are fine.

What it counts (:func:`counts`, :func:`reset`, :func:`counting`):

* ``launches`` — every array operation that runs a kernel: ufuncs and operators,
  reductions, matmul, indexing that gathers or scatters (not views), creation of filled
  arrays, copies, casts, random draws. One call counts one launch, whatever its size — the
  count is what a GPU pays per step in host overhead (tens of µs each);
* ``syncs`` — device→host transfers: ``.get()``, ``xp.asnumpy``, ``.item()``, boolean-mask
  indexing and ``nonzero``/``unique`` (their output size must be read back);
* ``copies`` — host→device transfers: ``xp.asarray(numpy_array)``, a host index array or
  host values in indexing.

``by_op()`` tells which operations made the launches. ``capture_check(region)`` refuses,
with :class:`CaptureError` naming the operation, any sync or copy inside a block: what a CUDA
graph capture would refuse; ``capture(fn)`` records a step's kernels with their arguments and
returns a :class:`StandinGraph` whose ``launch()`` replays them on the same memory, as a CUDA
graph does (``graph.py``; tinyproj/graphs.py uses both here). ``kernels.get(name, device_array)``
hands out the GPU kernels' host-compiled twins (``kernels/host.py``), one launch per call,
as CuPy arrays get the CUDA kernels themselves. Compared with real CuPy the counts
are a lower bound where CuPy runs one call as several kernels (``pad``, ``sort``).

The package: ``counters.py`` (the counters and the strictness setting), ``array.py``
(:class:`DeviceArray`), ``module.py`` (the module functions, kernels and ``random``).
"""
from __future__ import annotations

import numpy as np

from .array import DeviceArray, ndarray
from .counters import (CaptureError, by_op, capture_check, capturing, counting, counts, reset,
                       set_strict)
from .graph import StandinGraph, capture
from .module import (Generator, array, ascontiguousarray, asarray, asnumpy, get_array_module,
                     numpy_function, random, scatter_add, tinyproj_kernel)

__all__ = ["DeviceArray", "counts", "reset", "counting", "by_op", "set_strict", "asarray", "array",
           "asnumpy", "get_array_module", "ndarray", "random", "ascontiguousarray",
           "scatter_add", "tinyproj_kernel", "Generator", "capture_check", "capturing",
           "CaptureError", "capture", "StandinGraph"]


def __getattr__(name: str):
    """Every other NumPy name, working on device arrays (``xp.exp``, ``xp.zeros``...)."""
    if name.startswith("__"):
        raise AttributeError(name)
    if not hasattr(np, name):
        raise AttributeError(f"the stand-in device module has no {name!r} (numpy has none)")
    return numpy_function(name)
