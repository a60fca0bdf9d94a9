"""Numba copies between (B, C, H, W) and the padded channels-last rows of kernels/shifted.py.

The same arrays as ``shifted.reference_pad_rows`` / ``reference_unpad_rows`` bit for bit
(copies only); each job owns whole rows or planes of its output, so no two threads write
the same element. ``NUMBA_DISABLE_JIT=1`` makes them plain Python for a debugger.
"""
from __future__ import annotations

from numba import njit, prange

_PARALLEL = dict(parallel=True, cache=True, nogil=True)


@njit(**_PARALLEL)
def _pad_rows(x, ph, pw, grid):
    """x (B, C, H, W) → grid (B, H2, W2, C): x inside, zero on the border."""
    b, c, h, w = x.shape
    h2 = grid.shape[1]
    zero = grid.dtype.type(0)
    for job in prange(b * h2):                             # one row of the padded grid per job
        bi, r = job // h2, job % h2
        dst = grid[bi, r]                                  # (W2, C)
        if r < ph or r >= ph + h:
            dst[:, :] = zero
            continue
        dst[:pw, :] = zero
        dst[pw + w:, :] = zero
        for ci in range(c):
            src = x[bi, ci, r - ph]
            for s in range(w):
                dst[pw + s, ci] = src[s]


@njit(**_PARALLEL)
def _unpad_rows(grid, ph, pw, out):
    """grid (B, H2, W2, C) → out (B, C, H, W), the interior."""
    b, c, h, w = out.shape
    for job in prange(b * c):                              # one output plane per job
        bi, ci = job // c, job % c
        for r in range(h):
            src = grid[bi, r + ph]
            dst = out[bi, ci, r]
            for s in range(w):
                dst[s] = src[pw + s, ci]
