"""Numba kernels for the CPU: the same results as ``reference.py``, as parallel loops.

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
    cols = _output(out, (c * kh * kw, n * oh * ow), x.dtype)
    _im2col_batch(x, kh, kw, stride[0], stride[1], pad[0], pad[1], x.dtype.type(pad_value),
                  cols.reshape(c * kh * kw, n, oh * ow))
    return cols


@njit(**_PARALLEL)
def _col2im_batch(cols, kh, kw, sh, sw, ph, pw, out):
    n, c, h, w = out.shape
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w + 2 * pw - kw) // sw + 1
    for job in prange(n * c):                              # each job owns one output plane
        ni, ci = job // c, job % c
        plane = out[ni, ci]
        plane[:, :] = 0
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
        ni, ci = job // c, job % c
        plane = out[ni, ci]
        plane[:, :] = 0
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
    out = _output(out, (n, c, h, w), cols.dtype)
    if cols.T.flags.c_contiguous and not cols.flags.c_contiguous:
        rows = cols.T.reshape(n, oh * ow, c * kh * kw)
        _col2im_rows(rows, kh, kw, stride[0], stride[1], pad[0], pad[1], out)
        return out
    cols = np.ascontiguousarray(cols).reshape(c * kh * kw, n, oh * ow)
    _col2im_batch(cols, kh, kw, stride[0], stride[1], pad[0], pad[1], out)
    return out


def _output(out, shape, dtype):
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
    out = _output(out, (a.shape[1], a.shape[0], a.shape[2]), a.dtype)
    _swap01(a, out)
    return out


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
    y, argmax = _output(out[0], (n, c, oh, ow), x.dtype), _output(out[1], (n, c, oh, ow), taps)
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


# ---------------------------------------------------------------------------
# Batch norm, training mode, over a (N, C, L) view (L = H·W, or 1 for BatchNorm1d).
# Each job owns whole channels (the sums) or (image, channel) rows (the element-wise parts).
# ---------------------------------------------------------------------------
@njit(**_PARALLEL)
def _bn_stats(x, mean, var):
    n, c, l = x.shape
    for ci in prange(c):
        total = 0.0                                        # float64 accumulators
        for ni in range(n):
            for k in range(l):
                total += x[ni, ci, k]
        mu = total / (n * l)
        sq = 0.0                                           # two passes: no cancellation
        for ni in range(n):
            for k in range(l):
                d = x[ni, ci, k] - mu
                sq += d * d
        mean[ci] = mu
        var[ci] = sq / (n * l)


@njit(**_PARALLEL)
def _bn_apply(x, mean, inv_std, gamma, beta, y):
    n, c, l = x.shape
    for job in prange(n * c):
        ni, ci = job // c, job % c
        for k in range(l):
            y[ni, ci, k] = (x[ni, ci, k] - mean[ci]) * inv_std[ci] * gamma[ci] + beta[ci]


def _as_ncl(a):
    a = np.ascontiguousarray(a)
    return a.reshape(a.shape[0], a.shape[1], -1)


def _per_channel(a, c, dtype, fill):
    return np.full(c, fill, dtype=dtype) if a is None else np.asarray(a).astype(dtype, copy=False)


def batchnorm_forward(x, mean, var, eps, gamma=None, beta=None, training=True):
    """See ``reference.batchnorm_forward``: (y, mean, var, inv_std)."""
    x3 = _as_ncl(x)
    c = x3.shape[1]
    if training:
        mean64, var64 = np.empty(c), np.empty(c)
        _bn_stats(x3, mean64, var64)
        mean, var = mean64.astype(x.dtype), var64.astype(x.dtype)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    y = np.empty_like(x3)
    _bn_apply(x3, mean.astype(x.dtype, copy=False), inv_std, _per_channel(gamma, c, x.dtype, 1),
              _per_channel(beta, c, x.dtype, 0), y)
    return y.reshape(x.shape), mean, var, inv_std


@njit(**_PARALLEL)
def _bn_backward_sums(gy, x, mean, inv_std, sum_gy, sum_gy_xhat):
    n, c, l = gy.shape
    for ci in prange(c):
        a, b = 0.0, 0.0
        for ni in range(n):
            for k in range(l):
                g = gy[ni, ci, k]
                a += g
                b += g * ((x[ni, ci, k] - mean[ci]) * inv_std[ci])    # g · x̂
        sum_gy[ci], sum_gy_xhat[ci] = a, b


@njit(**_PARALLEL)
def _bn_backward_dx(gy, x, mean, gamma, inv_std, mean_g, mean_gx, gx):
    n, c, l = gy.shape
    for job in prange(n * c):
        ni, ci = job // c, job % c
        f = gamma[ci] * inv_std[ci]
        for k in range(l):
            xhat = (x[ni, ci, k] - mean[ci]) * inv_std[ci]
            gx[ni, ci, k] = f * (gy[ni, ci, k] - mean_g[ci] - xhat * mean_gx[ci])


def batchnorm_backward(gy, x, mean, inv_std, gamma=None, training=True):
    """See ``reference.batchnorm_backward``: (gx, ggamma, gbeta), ggamma = Σ gy·x̂, gbeta = Σ gy.

    gx = γ·inv_std·(gy − mean(gy) − x̂·mean(gy·x̂)) in training, γ·inv_std·gy otherwise:
    the reference's formula with the 1/m moved inside.
    """
    gy3, x3 = _as_ncl(gy), _as_ncl(x)
    n, c, l = gy3.shape
    m = n * l
    dt = gy.dtype
    mean, inv_std = mean.astype(dt, copy=False), inv_std.astype(dt, copy=False)
    sum_gy, sum_gy_xhat = np.empty(c), np.empty(c)
    _bn_backward_sums(gy3, x3, mean, inv_std, sum_gy, sum_gy_xhat)
    if training:
        mean_g, mean_gx = (sum_gy / m).astype(dt), (sum_gy_xhat / m).astype(dt)
    else:
        mean_g = mean_gx = np.zeros(c, dtype=dt)
    gx = np.empty_like(gy3)
    _bn_backward_dx(gy3, x3, mean, _per_channel(gamma, c, dt, 1), inv_std, mean_g, mean_gx, gx)
    return gx.reshape(gy.shape), sum_gy_xhat.astype(dt), sum_gy.astype(dt)


# ---------------------------------------------------------------------------
# Adam, Sign and the clip: one pass over the weights instead of a dozen
# ---------------------------------------------------------------------------
@njit(**_PARALLEL)
def _adam_update(w, g, m, v, lr, beta1, one_m_beta1, beta2, one_m_beta2, eps, bc1, bc2):
    for i in prange(w.size):
        gi = g[i]
        mi = beta1 * m[i] + one_m_beta1 * gi
        vi = beta2 * v[i] + one_m_beta2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        w[i] -= lr * (mi / bc1) / (np.sqrt(vi / bc2) + eps)   # np.sqrt keeps float32


def adam_update(w, g, m, v, lr, beta1, beta2, eps, t):
    """In place: m, v ← moments, w ← w − lr·m̂/(√v̂ + eps); see ``reference.adam_update``.

    The scalars are rounded to w's dtype exactly as NumPy rounds a Python float next to a
    float32 array, so the result is the reference's, bit for bit (no fused multiply-adds).
    """
    if not (w.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous):
        from . import reference                      # an in-place update needs flat views
        return reference.adam_update(w, g, m, v, lr, beta1, beta2, eps, t)
    ty = w.dtype.type
    g = np.ascontiguousarray(g, dtype=w.dtype)
    _adam_update(w.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), ty(lr), ty(beta1),
                 ty(1.0 - beta1), ty(beta2), ty(1.0 - beta2), ty(eps), ty(1.0 - beta1 ** t),
                 ty(1.0 - beta2 ** t))


@njit(**_PARALLEL)
def _max_abs(w):
    best, nans = 0.0, 0
    for i in prange(w.size):
        best = max(best, abs(w[i]))
        nans += w[i] != w[i]
    return best if nans == 0 else np.nan             # NaN propagates, as in numpy.max


@njit(**_PARALLEL)
def _sign(w, alpha, out):
    for i in prange(w.size):
        out[i] = alpha if w[i] >= 0 else -alpha


def sign_projection(w):
    """α·sign(w) with sign(0) = +1 and α = max|w|; see ``reference.sign_projection``."""
    w = np.ascontiguousarray(w)
    alpha = w.dtype.type(_max_abs(w.reshape(-1))) if w.size else w.dtype.type(0)
    out = np.empty_like(w)
    _sign(w.reshape(-1), alpha, out.reshape(-1))
    return out
