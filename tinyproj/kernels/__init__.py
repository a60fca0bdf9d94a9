"""Array kernels behind the convnet ops, and the single point that chooses them.

* ``reference.py`` — plain array code (slicing, no loops over pixels). It is
  the readable version of every kernel and the oracle the tests compare
  against; it runs unchanged on NumPy and CuPy.
* ``cpu.py`` (Numba) and ``gpu.py`` (CuPy raw kernels) — fast versions that
  compute exactly the same thing, added where a profile shows they pay.

Set ``TINYPROJ_KERNELS=reference`` to force the readable path everywhere (for
example to step through it in a debugger). For the Numba kernels,
``NUMBA_DISABLE_JIT=1`` turns them back into plain Python that a debugger can
step into.

Functional code calls ``kernels.get("im2col")`` etc., never a module directly.
"""
from __future__ import annotations

import os

from . import reference

KERNEL_NAMES = ("im2col", "col2im", "maxpool_forward", "maxpool_backward")


def mode() -> str:
    """The kernel family in force: ``"reference"`` or ``"auto"`` (fast where available)."""
    value = os.environ.get("TINYPROJ_KERNELS", "auto").strip().lower()
    if value not in ("auto", "reference"):
        raise ValueError(f"TINYPROJ_KERNELS={value!r}: use 'auto' (default) or 'reference'")
    return value


def get(name: str):
    """The kernel function called ``name`` for the current mode.

    Only the reference kernels exist so far; a fast family registers itself by
    providing functions of the same names and signatures.
    """
    if name not in KERNEL_NAMES:
        raise KeyError(f"unknown kernel {name!r}; known: {', '.join(KERNEL_NAMES)}")
    return getattr(reference, name)
