"""Numba max pooling for the CPU: forward (the output and each window's winning tap) and
backward, on (N, C, H, W) arrays or on the channels-last views of the convolution's product
rows (functional/conv_pool.py). ``reference.maxpool_forward`` / ``maxpool_backward`` are the
oracle (tests/test_kernels_cpu.py); how the Numba kernels are written, and how to debug them,
is in cpu.py's docstring.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .cpu import out_or_new
from .geometry import out_size

_PARALLEL = dict(parallel=True, cache=True, nogil=True)


# ---------------------------------------------------------------------------
# Max pooling: each output's window scanned in one go, its winner kept in registers
# ---------------------------------------------------------------------------
@njit(**_PARALLEL)
def _maxpool_forward(x, kh, kw, sh, sw, ph, pw, y, argmax):
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for job in prange(n * c):
        ni, ci = job // c, job % c
        plane = x[ni, ci]
        for r in range(oh):
            for s in range(ow):
                # numpy.argmax over the taps k = i·kw + j in order: the first maximum wins and
                # a NaN beats everything. Padding (−inf) never beats anything, so its taps are
                # skipped; a window whose tap 0 is padding starts from (−inf, 0), as in the
                # reference.
                best, best_k = -np.inf, 0
                for i in range(kh):
                    row = r * sh + i - ph
                    if row < 0 or row >= h:
                        continue
                    for j in range(kw):
                        col = s * sw + j - pw
                        if col < 0 or col >= w:
                            continue
                        v = plane[row, col]
                        k = i * kw + j
                        if k == 0 or (best == best and (v > best or v != v)):
                            best, best_k = v, k
                y[ni, ci, r, s] = best
                argmax[ni, ci, r, s] = best_k


def maxpool_forward(x, kh, kw, stride, pad=(0, 0), out=None):
    """x (N, C, H, W) → y, argmax (N, C, OH, OW); see ``reference.maxpool_forward``.

    argmax holds the same tap numbers as the reference's, stored as int8 when the window has
    at most 127 taps (an eighth of the memory of int64).
    x may be any strided view — the convolution fused with its max-pool
    (functional/conv_pool.py) passes its product (B·L, O) seen as (B, O, H, W) — and is read
    in place. out: ``(y, argmax)``, C-contiguous arrays to write instead of new ones.
    """
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, stride[0], pad[0]), out_size(w, kw, stride[1], pad[1])
    taps = np.int8 if kh * kw <= 127 else np.intp
    if out is None:
        out = (np.empty((n, c, oh, ow), dtype=x.dtype), np.empty((n, c, oh, ow), dtype=taps))
    y, argmax = out_or_new(out[0], (n, c, oh, ow), x.dtype), out_or_new(out[1], (n, c, oh, ow), taps)
    if _channels_last(x):
        flat, sn, sh_, sw_ = _flat_channels_last(x)
        _maxpool_forward_rows(flat, sn, sh_, sw_, h, w, kh, kw, stride[0], stride[1], pad[0],
                              pad[1], y, argmax)
    else:
        _maxpool_forward(x, kh, kw, stride[0], stride[1], pad[0], pad[1], y, argmax)
    return y, argmax


def _channels_last(a) -> bool:
    """Whether the (N, C, H, W) view ``a`` has C on its fast axis (an (N, H, W, C) array, or
    a view of one, seen through ``transpose(0, 3, 1, 2)``): the layout of the convolution's
    product rows."""
    return (a.shape[1] > 1 and a.strides[1] == a.itemsize and not a.flags.c_contiguous
            and min(a.strides) > 0)


def _flat_channels_last(a):
    """``(flat, sn, sh, sw)`` for a channels-last (N, C, H, W) view: its memory from its first
    element as a 1-D array, and the steps of N, H and W in elements — pixel (n, h, w) holds
    its C channels at ``flat[n·sn + h·sh + w·sw:][:C]``, contiguous whatever the view's gaps
    (the shifted convolution's rows have spare ones), which the compiler can vectorize."""
    item = a.itemsize
    n, c, h, w = a.shape
    sn, sh, sw = (a.strides[k] // item for k in (0, 2, 3))
    extent = (n - 1) * sn + (h - 1) * sh + (w - 1) * sw + c
    return np.lib.stride_tricks.as_strided(a, shape=(extent,), strides=(item,)), sn, sh, sw


@njit(**_PARALLEL)
def _maxpool_forward_rows(x, sn, sh_, sw_, h, w, kh, kw, sh, sw, ph, pw, y, argmax):
    """``_maxpool_forward`` for x channels-last (``_flat_channels_last``): each window tap
    is a contiguous vector of C values, compared lane by lane (the same rule per lane: the
    first maximum wins, a NaN beats everything, padding is skipped)."""
    n, c, oh, ow = y.shape
    for job in prange(n * oh):                             # one row of windows per job
        ni, r = job // oh, job % oh
        best = np.empty(c, dtype=x.dtype)
        best_k = np.empty(c, dtype=argmax.dtype)
        for s in range(ow):
            best[:] = -np.inf
            best_k[:] = 0
            for i in range(kh):
                row = r * sh + i - ph
                if row < 0 or row >= h:
                    continue
                for j in range(kw):
                    col = s * sw + j - pw
                    if col < 0 or col >= w:
                        continue
                    start = ni * sn + row * sh_ + col * sw_
                    v_row = x[start:start + c]
                    k = i * kw + j
                    for ci in range(c):
                        v, b = v_row[ci], best[ci]
                        if k == 0 or (b == b and (v > b or v != v)):
                            best[ci] = v
                            best_k[ci] = k
            for ci in range(c):
                y[ni, ci, r, s] = best[ci]
                argmax[ni, ci, r, s] = best_k[ci]


@njit(**_PARALLEL)
def _maxpool_backward(gy, argmax, tap_row, tap_col, sh, sw, ph, pw, gx):
    n, c, h, w = gx.shape
    oh, ow = gy.shape[2], gy.shape[3]
    for job in prange(n * c):                              # each job owns one input plane
        ni, ci = job // c, job % c
        plane = gx[ni, ci]
        plane[:, :] = 0
        for r in range(oh):
            for s in range(ow):
                k = argmax[ni, ci, r, s]
                row = r * sh + tap_row[k] - ph
                col = s * sw + tap_col[k] - pw
                if 0 <= row < h and 0 <= col < w:          # a padding winner has no pixel
                    plane[row, col] += gy[ni, ci, r, s]


def maxpool_backward(gy, argmax, x_shape, kh, kw, stride, pad=(0, 0), out=None):
    """gy, argmax (N, C, OH, OW) → gx (N, C, H, W); see ``reference.maxpool_backward``.

    out: an (N, C, H, W) array, or any strided view of that shape, to write gx into (every
    element is written) — the fused convolution passes its (B·L, O) scratch seen as
    (B, O, H, W)."""
    taps = np.arange(kh * kw)
    if out is not None and (tuple(out.shape) != tuple(x_shape) or out.dtype != gy.dtype):
        raise ValueError(f"out must be a {gy.dtype} array of shape {tuple(x_shape)}, got "
                         f"{out.dtype} {tuple(out.shape)}")
    gx = np.empty(tuple(x_shape), dtype=gy.dtype) if out is None else out
    gy, argmax = np.ascontiguousarray(gy), np.ascontiguousarray(argmax)
    if _channels_last(gx) and stride[0] >= kh and stride[1] >= kw:
        flat, sn, sh_, sw_ = _flat_channels_last(gx)
        _maxpool_backward_rows(gy, argmax, kh, kw, stride[0], stride[1], pad[0], pad[1], flat,
                               sn, sh_, sw_, gx.shape[2], gx.shape[3])
    else:
        _maxpool_backward(gy, argmax, taps // kw, taps % kw, stride[0], stride[1], pad[0],
                          pad[1], gx)
    return gx


@njit(**_PARALLEL)
def _maxpool_backward_rows(gy, argmax, kh, kw, sh, sw, ph, pw, gx, sn, sh_, sw_, h, w):
    """``_maxpool_backward`` into gx channels-last (``_flat_channels_last``), for windows
    that do not overlap (stride ≥ window): each pixel lies in at most one window, so it gets
    that window's gradient where it won, else 0 — one write per element, in order."""
    n, c, oh, ow = gy.shape
    zero = gx.dtype.type(0)
    for job in prange(n * h):                              # one row of pixels per job
        ni, row = job // h, job % h
        r, i = (row + ph) // sh, (row + ph) % sh           # the window row, the tap row
        for col in range(w):
            start = ni * sn + row * sh_ + col * sw_
            dst = gx[start:start + c]
            s, j = (col + pw) // sw, (col + pw) % sw
            if r >= oh or s >= ow or i >= kh or j >= kw:   # in no window
                dst[:] = zero
                continue
            k = i * kw + j
            for ci in range(c):
                dst[ci] = gy[ni, ci, r, s] if argmax[ni, ci, r, s] == k else zero
