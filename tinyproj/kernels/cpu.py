"""Numba kernels for the CPU: im2col / col2im and swap01, the same results as ``reference.py``
as parallel loops. Their siblings: cpu_pool.py (max pooling), cpu_batchnorm.py (batch norm),
cpu_optim.py (Adam, Sign) and cpu_fused.py (several ops in one pass); the notes below hold
for all of them, and ``kernels.get`` (NUMBA_MODULES) knows which file holds which kernel.

Debugging
    ``NUMBA_DISABLE_JIT=1``     every ``@njit`` function below runs as plain Python, so a
                                debugger can step into the loops (slowly: minutes per step).
    ``TINYPROJ_KERNELS=reference``  skip this file and use the readable reference kernels.

How the kernels are written
    * Each public function (no underscore) allocates its output with NumPy (or takes it as
      ``out=``) and hands it to a compiled loop (underscore). Shapes and the (c, i, j)
      column order are those of ``reference.py``; tests/test_kernels_cpu.py checks every
      kernel against it on random shapes, bit for bit where the arithmetic is the same.
    * ``prange`` splits the outer loop over the cores. Every loop is arranged so that two
      threads never write the same element — col2im and the max-pool backward give each thread
      whole (image, channel) planes of the output, so no atomics and no ``np.add.at`` are
      needed, and results do not depend on the number of threads (sums run in a fixed order).
    * ``cache=True``: the machine code is saved beside this file (``__pycache__``) the first
      time a kernel runs for a dtype, and loaded in well under a second afterwards.
    * No ``fastmath``: the kernels round exactly as plain float arithmetic does.

Threads: Numba uses ``NUMBA_NUM_THREADS`` (default: every core). BLAS uses its own pool;
the two take turns within a step, so both may use every core — provided neither keeps
spinning when its turn is over (tinyproj/_threads.py sets that at run time).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .geometry import out_size

_PARALLEL = dict(parallel=True, cache=True, nogil=True)


def _valid_range(k_off, stride, pad, size, out_len):
    """Output positions ``o`` whose input position ``o·stride + k_off − pad`` lies in [0, size).

    Returns ``(lo, hi)``: o in [lo, hi) read real pixels, the others read padding.
    """
    lo = max(0, -((k_off - pad) // stride))               # ceil((pad − k_off) / stride)
    hi = min(out_len, (size - 1 - k_off + pad) // stride + 1)
    return lo, max(lo, hi)


_valid_range_jit = njit(cache=True, inline="always")(_valid_range)


# ---------------------------------------------------------------------------
# im2col / col2im in the batch layout: cols (K, N, L), K = C·kh·kw, L = OH·OW
#
# Inner loops run over views that start at index 0 (``d = dst[a:b]; d[t] = ...``): Numba
# then knows the index is never negative, drops its wrap-around check and vectorizes.
# ---------------------------------------------------------------------------
@njit(**_PARALLEL)
def _im2col_batch(x, kh, kw, sh, sw, ph, pw, pad_value, cols):
    n, c, h, w = x.shape
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w + 2 * pw - kw) // sw + 1
    for job in prange(c * n):                              # one (channel, image) pair per job
        ci, ni = job // n, job % n
        for i in range(kh):
            r_lo, r_hi = _valid_range_jit(i, sh, ph, h, oh)
            for j in range(kw):
                s_lo, s_hi = _valid_range_jit(j, sw, pw, w, ow)
                dst = cols[(ci * kh + i) * kw + j, ni]     # (L,): the row of tap (ci, i, j)
                for r in range(oh):
                    row = dst[r * ow:(r + 1) * ow]
                    if r < r_lo or r >= r_hi:              # this output row reads padding only
                        row[:] = pad_value
                        continue
                    row[:s_lo] = pad_value
                    row[s_hi:] = pad_value
                    src = x[ni, ci, r * sh + i - ph, s_lo * sw + j - pw:]
                    seg = row[s_lo:s_hi]
                    if sw == 1:                            # a contiguous run: vectorized
                        for t in range(s_hi - s_lo):
                            seg[t] = src[t]
                    else:
                        for t in range(s_hi - s_lo):
                            seg[t] = src[t * sw]


def im2col_batch(x, kh, kw, stride=(1, 1), pad=(0, 0), pad_value=0.0, out=None):
    """x (N, C, H, W) → cols (C·kh·kw, N·OH·OW); see ``reference.im2col_batch``.

    out: an array of that shape (C-contiguous) to fill instead of allocating one.
    """
    x = np.ascontiguousarray(x)
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, stride[0], pad[0]), out_size(w, kw, stride[1], pad[1])
    cols = out_or_new(out, (c * kh * kw, n * oh * ow), x.dtype)
    _im2col_batch(x, kh, kw, stride[0], stride[1], pad[0], pad[1], x.dtype.type(pad_value),
                  cols.reshape(c * kh * kw, n, oh * ow))
    return cols


@njit(cache=True, inline="always")
def _zeroed_plane(out, job):
    """``(ni, ci, plane)`` for job ``job`` of the N·C jobs over ``out`` (N, C, H, W): the plane
    ``out[ni, ci]`` that the job owns, set to 0 (so no two threads write the same element)."""
    c = out.shape[1]
    ni, ci = job // c, job % c
    plane = out[ni, ci]
    plane[:, :] = 0
    return ni, ci, plane


@njit(**_PARALLEL)
def _col2im_batch(cols, kh, kw, sh, sw, ph, pw, out):
    n, c, h, w = out.shape
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w + 2 * pw - kw) // sw + 1
    for job in prange(n * c):                              # each job owns one output plane
        ni, ci, plane = _zeroed_plane(out, job)
        for i in range(kh):
            r_lo, r_hi = _valid_range_jit(i, sh, ph, h, oh)
            for j in range(kw):
                s_lo, s_hi = _valid_range_jit(j, sw, pw, w, ow)
                src = cols[(ci * kh + i) * kw + j, ni]
                for r in range(r_lo, r_hi):
                    dst = plane[r * sh + i - ph, s_lo * sw + j - pw:]
                    seg = src[r * ow + s_lo:r * ow + s_hi]
                    if sw == 1:
                        for t in range(s_hi - s_lo):
                            dst[t] += seg[t]
                    else:
                        for t in range(s_hi - s_lo):
                            dst[t * sw] += seg[t]


@njit(**_PARALLEL)
def _col2im_rows(rows, kh, kw, sh, sw, ph, pw, out):
    """``_col2im_batch`` for columns stored transposed: rows (N, L, K), one row per position.

    The same loops and the same order of additions (taps outer, positions inner), so the
    result is bit for bit that of the column layout; only the reads are strided (K apart),
    within the few cache lines of one image's rows for a channel.
    """
    n, c, h, w = out.shape
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w + 2 * pw - kw) // sw + 1
    for job in prange(n * c):                              # each job owns one output plane
        ni, ci, plane = _zeroed_plane(out, job)
        src = rows[ni]                                     # (L, K)
        for i in range(kh):
            r_lo, r_hi = _valid_range_jit(i, sh, ph, h, oh)
            for j in range(kw):
                s_lo, s_hi = _valid_range_jit(j, sw, pw, w, ow)
                k = (ci * kh + i) * kw + j
                for r in range(r_lo, r_hi):
                    dst = plane[r * sh + i - ph, s_lo * sw + j - pw:]
                    for t in range(s_hi - s_lo):
                        dst[t * sw] += src[r * ow + s_lo + t, k]


def col2im_batch(cols, x_shape, kh, kw, stride=(1, 1), pad=(0, 0), out=None):
    """cols (C·kh·kw, N·OH·OW) → (N, C, H, W), the adjoint of ``im2col_batch``.

    cols may also be the transpose of a C-contiguous (N·OH·OW, C·kh·kw) array — the
    convolution's dcols when its products are taken transposed (functional/conv.py,
    ``ROWS_OUT``): then it is read in place, with the same result bit for bit.
    out: a C-contiguous (N, C, H, W) array to write instead of allocating one.
    """
    n, c, h, w = x_shape
    oh, ow = out_size(h, kh, stride[0], pad[0]), out_size(w, kw, stride[1], pad[1])
    out = out_or_new(out, (n, c, h, w), cols.dtype)
    if cols.T.flags.c_contiguous and not cols.flags.c_contiguous:
        rows = cols.T.reshape(n, oh * ow, c * kh * kw)
        _col2im_rows(rows, kh, kw, stride[0], stride[1], pad[0], pad[1], out)
        return out
    cols = np.ascontiguousarray(cols).reshape(c * kh * kw, n, oh * ow)
    _col2im_batch(cols, kh, kw, stride[0], stride[1], pad[0], pad[1], out)
    return out


def out_or_new(out, shape, dtype):
    """``out`` checked against shape and dtype, or a new array."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if tuple(out.shape) != tuple(shape) or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {np.dtype(dtype)} array of shape "
                         f"{tuple(shape)}, got {out.dtype} {tuple(out.shape)}")
    return out


# The per-image layout (N, K, L) of reference.im2col, for callers that want it.
def im2col(x, kh, kw, stride=(1, 1), pad=(0, 0), pad_value=0.0):
    """x (N, C, H, W) → (N, C·kh·kw, OH·OW); see ``reference.im2col``."""
    n = x.shape[0]
    cols = im2col_batch(x, kh, kw, stride, pad, pad_value)
    return swap01(cols.reshape(cols.shape[0], n, -1))


def col2im(cols, x_shape, kh, kw, stride=(1, 1), pad=(0, 0)):
    """cols (N, C·kh·kw, OH·OW) → (N, C, H, W); see ``reference.col2im``."""
    k = cols.shape[1]
    return col2im_batch(swap01(cols).reshape(k, -1), x_shape, kh, kw, stride, pad)


# ---------------------------------------------------------------------------
# Swapping the first two axes (the conv output (O, N, L) ↔ (N, O, L))
# ---------------------------------------------------------------------------
@njit(**_PARALLEL)
def _swap01(a, out):
    p, q = a.shape[0], a.shape[1]
    for job in prange(p * q):
        i, j = job // q, job % q
        out[j, i, :] = a[i, j, :]


def swap01(a, out=None):
    """A contiguous copy of ``a`` (P, Q, R) with the first two axes swapped: (Q, P, R).

    out: a C-contiguous (Q, P, R) array to write instead of allocating one.
    """
    a = np.ascontiguousarray(a)
    out = out_or_new(out, (a.shape[1], a.shape[0], a.shape[2]), a.dtype)
    _swap01(a, out)
    return out
