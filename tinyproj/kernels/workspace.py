"""Scratch buffers that are reused from call to call instead of allocated afresh.

Why: a fresh NumPy array of more than a few MB is new memory from the operating system,
which zeroes every page on first touch — about 16 ms for the 236 MB of columns of the
128→128 layer, as long as the im2col that fills them. The convolution needs such a
buffer twice per layer and step; keeping one per name and handing out views of it costs
that zeroing once per run.

Rules: a scratch view is valid only until the next ``scratch`` call with the same name
(so only the function that asked for it may use it, and must not return it); buffers are
per thread. On the GPU, CuPy's memory pool already reuses memory, so there a plain
``empty`` is returned.
"""
from __future__ import annotations

import threading

import numpy as np

from .. import backend

_local = threading.local()


def scratch(name: str, shape, dtype, like):
    """An uninitialized array of ``shape`` and ``dtype`` on the device of ``like``.

    On the CPU it is a view of the buffer kept under ``name``, grown when too small.
    """
    if not isinstance(like, np.ndarray):
        return backend.xp_of(like).empty(shape, dtype=dtype)
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    buf = buffers.get(name)
    if buf is None or buf.nbytes < nbytes:
        buffers[name] = buf = None                  # free the old one before growing
        buffers[name] = buf = np.empty(nbytes, dtype=np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


def scratch_like(name: str, shape, like):
    """``scratch(name, shape, like.dtype, like)``: a scratch array of ``like``'s dtype."""
    return scratch(name, shape, like.dtype, like)


def even_chunks(n: int, most: int) -> list:
    """``(a, b)`` ranges splitting n images into chunks of at most ``most`` (≥ 1 taken) and of
    near-equal size: 50 images at most 16 a chunk give 13, 13, 12, 12 rather than 16, 16,
    16, 2 (the convolution's chunks, whatever budget sets ``most``)."""
    count = -(-n // max(1, most))                                        # ceil(n / most)
    bounds = [n * i // count for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def clear() -> None:
    """Drop every scratch buffer of this thread (the memory goes back to the system)."""
    _local.buffers = {}


def nbytes() -> int:
    """Bytes held in scratch buffers by this thread."""
    return sum(b.nbytes for b in getattr(_local, "buffers", {}).values())
