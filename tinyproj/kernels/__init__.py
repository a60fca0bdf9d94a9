"""Array kernels behind the ops, and the single point that chooses them.

* ``reference.py`` — plain array code (slicing, no loops over pixels). It is the readable
  version of every kernel and the oracle the tests compare against; it runs unchanged on
  NumPy and CuPy.
* ``cpu.py`` (Numba) — parallel loops that compute the same thing on NumPy arrays; used by
  default on the CPU. GPU arrays (CuPy) always take the reference kernels, whose array
  operations CuPy runs as GPU kernels.
* ``workspace.py`` — scratch buffers the convolution reuses from step to step.
* ``geometry.py`` — window arithmetic (output sizes, padding checks) shared by the kernels,
  the functional ops and the models; it computes no arrays.

Two switches, both read at every call:

* ``TINYPROJ_KERNELS=reference`` forces the readable path everywhere (for example to step
  through it in a debugger, or to time it); ``auto`` (the default) uses the fast kernels.
* ``NUMBA_DISABLE_JIT=1`` (set before Python starts) turns the Numba kernels into plain
  Python that a debugger can step into, line by line.

Functional code calls ``kernels.get("im2col_batch", x)(x, ...)`` — the kernel for arrays
like ``x`` — and never imports a kernel module directly.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from . import reference

KERNEL_NAMES = ("im2col", "col2im", "im2col_batch", "col2im_batch", "swap01",
                "maxpool_forward", "maxpool_backward", "batchnorm_forward",
                "batchnorm_backward", "adam_update", "sign_projection")

_cpu = None            # the Numba module once imported; False when Numba is unusable


def mode() -> str:
    """The kernel family in force: ``"reference"`` or ``"auto"`` (fast where available)."""
    value = os.environ.get("TINYPROJ_KERNELS", "auto").strip().lower()
    if value not in ("auto", "reference"):
        raise ValueError(f"TINYPROJ_KERNELS={value!r}: use 'auto' (default) or 'reference'")
    return value


def cpu_module():
    """``kernels.cpu`` (imported on first use), or None where Numba cannot be imported."""
    global _cpu
    if _cpu is None:
        try:
            from . import cpu
            _cpu = cpu
        except ImportError as exc:                  # numba is a dependency; warn, don't fail
            warnings.warn(f"tinyproj: the Numba kernels are unavailable ({exc}); using the "
                          "reference kernels (slower). Reinstall numba to get them back.")
            _cpu = False
    return _cpu or None


def get(name: str, like=None):
    """The kernel called ``name`` for arrays like ``like`` in the current mode.

    like: an array the kernel will work on (or None: decide by the backend in use). NumPy
    arrays get the Numba kernel in ``auto`` mode, anything else the reference kernel.
    """
    if name not in KERNEL_NAMES:
        raise KeyError(f"unknown kernel {name!r}; known: {', '.join(KERNEL_NAMES)}")
    if mode() == "reference":
        return getattr(reference, name)
    on_cpu = isinstance(like, np.ndarray) if like is not None else _backend_is_numpy()
    cpu = cpu_module() if on_cpu else None
    return getattr(cpu if cpu is not None else reference, name)


def _backend_is_numpy() -> bool:
    from .. import backend
    return backend.name() == "numpy"
