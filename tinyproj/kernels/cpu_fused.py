"""Fused Numba kernels for the CPU (issue 15, item 1): several array ops in one pass.

Each function here has the signature and the result of its namesake in ``reference.py``
(the plain composition of the ops it fuses) and is tested against it in
tests/test_kernels_fused.py:

* ``batchnorm_forward_fused`` — batch statistics (float64 sums, two passes), normalization,
  γ·x̂ + β, the running-statistics update of a training layer and the ReLU that follows,
  in two passes over x instead of about fifteen array operations;
* ``batchnorm_backward_fused`` — the ReLU's mask and the batch-norm backward in two passes;
* ``sgd_update`` — SGD with momentum over a flat buffer, one pass (Adam's one pass is
  ``cpu_optim.adam_update``);
* ``sign_projection_segments``, ``clip_segments`` — Table 1's Sign and the clip over every
  layer of a flat buffer at once (optim/flat.py keeps the weights side by side), in parallel
  over pieces of at most 2**15 elements that never cross a tensor's edge (one tensor can
  hold most of the buffer); α = max|w_s| as an integer max over the bit patterns, which
  vectorises and lets a NaN win, as numpy.max.

Accuracy: the element-wise parts round exactly as the reference's array code (the same
float32 operations in the same order, no fastmath), so the running statistics, SGD, Sign
and the clip are bit-identical; the batch-norm sums run in float64 in a fixed order, so the
statistics and gradients agree with the reference's float32 NumPy sums to ~1e-6 relative.
No thread writes an element another thread writes: each channel (batch norm) or each piece
(Sign's per-piece maxima) belongs to one thread, and the pieces' maxima are reduced to one α
per tensor serially, so α does not depend on the schedule.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import pieces

_PARALLEL = dict(parallel=True, cache=True, nogil=True)


def _as_ncl(a):
    a = np.ascontiguousarray(a)
    return a.reshape(a.shape[0], a.shape[1], -1)


def _per_channel(a, c, dtype, fill):
    return np.full(c, fill, dtype=dtype) if a is None else np.ascontiguousarray(a, dtype=dtype)


# ---------------------------------------------------------------------------
# Batch norm + ReLU
# ---------------------------------------------------------------------------
# The statistics run in float64 over 8 interleaved partial sums (element k of a row goes to
# sum k mod 8, the 8 added pairwise at the end): independent additions that the compiler
# can overlap, where one running sum waits for each addition to finish before the next.
# Measured on one thread, (50, 32, 32, 32) float32 (bc_cifar10 width 0.25, layer 1), the
# fastest of 9: batch-norm + ReLU forward 2.58 → 1.86 ms; (50, 64, 16, 16) 1.04 → 0.96 ms.
# The backward sums (Σg, Σg·x̂ behind the ReLU's mask) gained only once the mask became a
# factor 1 or 0 (as the reference multiplies; a branch before): 2.28 → 1.83 ms, and the
# mask in the dx pass likewise.
@njit(cache=True, inline="always")
def _sum8(row, mu):
    """Σ (row[k] − mu) over a 1-D row, and Σ (row[k] − mu)², in float64, 8 partial sums."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    q0 = q1 = q2 = q3 = q4 = q5 = q6 = q7 = 0.0
    m = row.size
    k = 0
    while k + 8 <= m:
        d0, d1, d2, d3 = row[k] - mu, row[k + 1] - mu, row[k + 2] - mu, row[k + 3] - mu
        d4, d5, d6, d7 = row[k + 4] - mu, row[k + 5] - mu, row[k + 6] - mu, row[k + 7] - mu
        s0 += d0
        s1 += d1
        s2 += d2
        s3 += d3
        s4 += d4
        s5 += d5
        s6 += d6
        s7 += d7
        q0 += d0 * d0
        q1 += d1 * d1
        q2 += d2 * d2
        q3 += d3 * d3
        q4 += d4 * d4
        q5 += d5 * d5
        q6 += d6 * d6
        q7 += d7 * d7
        k += 8
    while k < m:
        d0 = row[k] - mu
        s0 += d0
        q0 += d0 * d0
        k += 1
    return (((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)),
            ((q0 + q1) + (q2 + q3)) + ((q4 + q5) + (q6 + q7)))


@njit(**_PARALLEL)
def _bn_stats(x, mean, var):
    """Per channel: mean = Σx/m, var = Σ(x − mean)²/m in float64 (two passes)."""
    n, c, l = x.shape
    m = n * l
    for ci in prange(c):
        s = 0.0
        for ni in range(n):
            s += _sum8(x[ni, ci], 0.0)[0]
        mu = s / m
        q = 0.0
        for ni in range(n):
            q += _sum8(x[ni, ci], mu)[1]
        mean[ci], var[ci] = mu, q / m


@njit(**_PARALLEL)
def _bn_apply(x, mean, inv_std, gamma, beta, relu, y):
    """y = (x − μ)·inv_std·γ + β, then y·[y > 0] when relu (the reference's rounding order)."""
    n, c, l = x.shape
    zero = y.dtype.type(0)
    one = y.dtype.type(1)
    for job in prange(n * c):
        ni, ci = job // c, job % c
        for k in range(l):
            v = (x[ni, ci, k] - mean[ci]) * inv_std[ci] * gamma[ci] + beta[ci]
            if relu:
                v = v * (one if v > zero else zero)
            y[ni, ci, k] = v


@njit(cache=True)
def _bn_running(running_mean, running_var, mean, var, keep, momentum, unbias):
    """running ← running·keep + momentum·batch (the variance times unbias = m/(m − 1))."""
    for ci in range(mean.size):
        running_mean[ci] = running_mean[ci] * keep + momentum * mean[ci]
        running_var[ci] = running_var[ci] * keep + (momentum * var[ci]) * unbias


def batchnorm_forward_fused(x, mean, var, eps, gamma=None, beta=None, training=True, relu=False,
                            running_mean=None, running_var=None, momentum=0.0, tracked=None):
    """See ``reference.batchnorm_forward_fused``: (y, mean, var, inv_std), running statistics
    and the batch counter updated in place, the ReLU applied when relu=True."""
    x3 = _as_ncl(x)
    n, c, l = x3.shape
    dt = x.dtype
    if training:
        mean64, var64 = np.empty(c), np.empty(c)
        _bn_stats(x3, mean64, var64)
        mean, var = mean64.astype(dt), var64.astype(dt)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(dt)
    y = np.empty_like(x3)
    _bn_apply(x3, np.asarray(mean).astype(dt, copy=False), inv_std,
              _per_channel(gamma, c, dt, 1), _per_channel(beta, c, dt, 0), bool(relu), y)
    if training and running_mean is not None:
        m = n * l
        ty = running_mean.dtype.type
        _bn_running(running_mean, running_var, mean, var, ty(1 - momentum), ty(momentum),
                    ty(m / (m - 1)))
    if tracked is not None:
        tracked += 1
    return y.reshape(x.shape), mean, var, inv_std


@njit(cache=True, inline="always")
def _grad_sums8(gy, x, relu_out, has_relu, mu, inv_std):
    """Σg and Σg·x̂ over 1-D rows in float64, 8 partial sums each (as ``_sum8``);
    g = gy·[relu_out > 0] behind a fused ReLU — the mask a factor 1 or 0, as the reference
    multiplies, which the compiler selects without a branch."""
    zero, one = gy.dtype.type(0), gy.dtype.type(1)
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
    b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = 0.0
    m = gy.size
    k = 0
    while k + 8 <= m:
        if has_relu:
            g0 = gy[k] * (one if relu_out[k] > zero else zero)
            g1 = gy[k + 1] * (one if relu_out[k + 1] > zero else zero)
            g2 = gy[k + 2] * (one if relu_out[k + 2] > zero else zero)
            g3 = gy[k + 3] * (one if relu_out[k + 3] > zero else zero)
            g4 = gy[k + 4] * (one if relu_out[k + 4] > zero else zero)
            g5 = gy[k + 5] * (one if relu_out[k + 5] > zero else zero)
            g6 = gy[k + 6] * (one if relu_out[k + 6] > zero else zero)
            g7 = gy[k + 7] * (one if relu_out[k + 7] > zero else zero)
        else:
            g0, g1, g2, g3 = gy[k], gy[k + 1], gy[k + 2], gy[k + 3]
            g4, g5, g6, g7 = gy[k + 4], gy[k + 5], gy[k + 6], gy[k + 7]
        a0 += g0
        a1 += g1
        a2 += g2
        a3 += g3
        a4 += g4
        a5 += g5
        a6 += g6
        a7 += g7
        b0 += g0 * ((x[k] - mu) * inv_std)
        b1 += g1 * ((x[k + 1] - mu) * inv_std)
        b2 += g2 * ((x[k + 2] - mu) * inv_std)
        b3 += g3 * ((x[k + 3] - mu) * inv_std)
        b4 += g4 * ((x[k + 4] - mu) * inv_std)
        b5 += g5 * ((x[k + 5] - mu) * inv_std)
        b6 += g6 * ((x[k + 6] - mu) * inv_std)
        b7 += g7 * ((x[k + 7] - mu) * inv_std)
        k += 8
    while k < m:
        g0 = gy[k] * (one if relu_out[k] > zero else zero) if has_relu else gy[k]
        a0 += g0
        b0 += g0 * ((x[k] - mu) * inv_std)
        k += 1
    return (((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)),
            ((b0 + b1) + (b2 + b3)) + ((b4 + b5) + (b6 + b7)))


@njit(**_PARALLEL)
def _bn_backward_sums(gy, x, relu_out, has_relu, mean, inv_std, sum_g, sum_gx):
    """Per channel: Σg and Σg·x̂ in float64, g = gy·[relu_out > 0] behind a fused ReLU."""
    n, c, l = gy.shape
    for ci in prange(c):
        a, b = 0.0, 0.0
        for ni in range(n):
            da, db = _grad_sums8(gy[ni, ci], x[ni, ci], relu_out[ni, ci], has_relu, mean[ci],
                                 inv_std[ci])
            a += da
            b += db
        sum_g[ci], sum_gx[ci] = a, b


@njit(**_PARALLEL)
def _bn_backward_dx(gy, x, relu_out, has_relu, mean, gamma, inv_std, mean_g, mean_gx, training,
                    gx):
    n, c, l = gy.shape
    zero, one = gy.dtype.type(0), gy.dtype.type(1)
    for job in prange(n * c):
        ni, ci = job // c, job % c
        f = gamma[ci] * inv_std[ci]
        for k in range(l):
            g = gy[ni, ci, k]
            if has_relu:                                   # × 1 or × 0: a select, no branch
                g = g * (one if relu_out[ni, ci, k] > zero else zero)
            if training:
                xhat = (x[ni, ci, k] - mean[ci]) * inv_std[ci]
                gx[ni, ci, k] = f * (g - mean_g[ci] - xhat * mean_gx[ci])
            else:
                gx[ni, ci, k] = (g * gamma[ci]) * inv_std[ci]


def batchnorm_backward_fused(gy, x, mean, inv_std, gamma=None, training=True, relu_out=None,
                             out=None):
    """See ``reference.batchnorm_backward_fused``: (gx, ggamma, gbeta); relu_out: the output
    of the forward pass with the fused ReLU (None: no ReLU); out: (ggamma, gbeta) to write."""
    gy3, x3 = _as_ncl(gy), _as_ncl(x)
    n, c, l = gy3.shape
    m = n * l
    dt = gy.dtype
    has_relu = relu_out is not None
    r3 = _as_ncl(relu_out).astype(dt, copy=False) if has_relu else gy3
    mean, inv_std = np.asarray(mean).astype(dt, copy=False), np.asarray(inv_std).astype(dt,
                                                                                       copy=False)
    sum_g, sum_gx = np.empty(c), np.empty(c)
    _bn_backward_sums(gy3, x3, r3, has_relu, mean, inv_std, sum_g, sum_gx)
    if training:
        mean_g, mean_gx = (sum_g / m).astype(dt), (sum_gx / m).astype(dt)
    else:
        mean_g = mean_gx = np.zeros(c, dtype=dt)
    gx = np.empty_like(gy3)
    _bn_backward_dx(gy3, x3, r3, has_relu, mean, _per_channel(gamma, c, dt, 1), inv_std, mean_g,
                    mean_gx, bool(training), gx)
    ggamma, gbeta = sum_gx.astype(dt), sum_g.astype(dt)
    if out is not None:
        ggamma, gbeta = (_into(o, a) for o, a in zip(out, (ggamma, gbeta)))
    return gx.reshape(gy.shape), ggamma, gbeta


def _into(target, values):
    """``values`` written into ``target`` (returned), or ``values`` when target is None."""
    if target is None:
        return values
    target[...] = values
    return target


# ---------------------------------------------------------------------------
# SGD over a flat buffer
# ---------------------------------------------------------------------------
@njit(**_PARALLEL)
def _sgd(w, g, buf, lr, momentum, weight_decay, nesterov, first, use_momentum, use_decay):
    for i in prange(w.size):
        gi = g[i]
        if use_decay:
            gi = gi + weight_decay * w[i]
        if use_momentum:
            b = gi if first else buf[i] * momentum + gi
            buf[i] = b
            gi = gi + momentum * b if nesterov else b
        w[i] = w[i] - lr * gi


def sgd_update(w, g, buf, lr, momentum=0.0, weight_decay=0.0, nesterov=False, first=False):
    """In place; see ``reference.sgd_update`` (C-contiguous w and buf, or the reference runs)."""
    if not (w.flags.c_contiguous and (buf is None or buf.flags.c_contiguous)):
        from . import reference
        return reference.sgd_update(w, g, buf, lr, momentum, weight_decay, nesterov, first)
    ty = w.dtype.type
    g = np.ascontiguousarray(g, dtype=w.dtype).reshape(-1)
    buf_flat = w.reshape(-1) if buf is None else buf.reshape(-1)
    _sgd(w.reshape(-1), g, buf_flat, ty(lr), ty(momentum), ty(weight_decay), bool(nesterov),
         bool(first), bool(momentum), bool(weight_decay))


# ---------------------------------------------------------------------------
# Sign and the clip over every layer of a flat buffer
# ---------------------------------------------------------------------------
# Tensors are cut into pieces of at most _PIECE elements that never cross a tensor's edge,
# and the threads share out the pieces: one tensor (bc_cifar10 width 1.0: the 8192×1024 FC
# weight, 8.4 M of 14.0 M floats) would otherwise keep one thread busy while the others idle.
# Measured on the width-1.0 buffer (27 tensors, 14.0 M float32, random normal) on a shared
# 2-core machine, median of 15 wall-clock runs in ms, Sign / clip (out= given), two sweeps:
#     piece   2**14        2**15        2**16        2**17        2**18
#     Sign    8.18, 8.18   8.08, 8.05   8.27, 8.16   8.84, 8.97   9.52, 9.49
#     clip    6.73, 6.83   6.78, 6.72   6.97, 6.92   7.24, 7.08   7.76, 7.78
# against 35.0, 33.4 (Sign) and 11.9, 11.8 (clip) for the kernels that ran one tensor per
# thread, and 6.6-7.3 for np.copyto of the buffer. 2**15 (128 KiB of float32, 428 pieces
# here) is the fastest by a hair; smaller pieces only add bookkeeping, larger ones leave a
# thread idle at the end of the pass.
_PIECE = 2 ** 15


def _pieces(offsets):
    """(start, stop, segment) of the tensors cut into pieces of _PIECE (kernels/pieces.py)."""
    return pieces.runs(offsets, _PIECE)


# α = max|w_s| on the bit patterns: for IEEE floats with the sign bit cleared, the unsigned
# integer order is the order of |x| (±0 → 0, +inf = 0x7f800000 for float32) and every NaN
# lies above +inf, so an integer max gives max|w| and lets a NaN win, as numpy.max does, in
# a loop the compiler vectorises. The float loop (a NaN test, or a NaN count beside a plain
# max) does not vectorise without fastmath: on the buffer above the max pass took 14.8 ms
# as floats, 2.5 ms as integers (np.max(np.abs(w)): 9.9). One max per piece in parallel,
# then per tensor serially. Of several NaNs this picks the largest payload where numpy.max
# may pick another; arithmetic makes one (quiet) NaN, and α is then bit for bit the same.
@njit(**_PARALLEL)
def _maxabs_bits(bits, start, stop, segment, alpha_bits):
    """alpha_bits[s] = max over tensor s of (bits & ~sign bit); left as it is (0) when empty."""
    ty = bits.dtype.type
    mask = ty(~(ty(1) << ty(8 * bits.itemsize - 1)))   # every bit but the sign bit
    n = start.size
    piece_max = np.zeros(n, dtype=bits.dtype)
    for p in prange(n):
        best = ty(0)
        for i in range(start[p], stop[p]):
            b = ty(bits[i] & mask)
            best = b if b > best else best
        piece_max[p] = best
    for p in range(n):                                   # a few hundred pieces: serial
        s = segment[p]
        if piece_max[p] > alpha_bits[s]:
            alpha_bits[s] = piece_max[p]


@njit(**_PARALLEL)
def _sign_pieces(w, start, stop, segment, alpha, neg_alpha, out):
    """out = α_s where w ≥ 0, else −α_s (−α from NumPy: its sign bit flipped, NaN included)."""
    for p in prange(start.size):
        a, na = alpha[segment[p]], neg_alpha[segment[p]]
        for i in range(start[p], stop[p]):
            out[i] = a if w[i] >= 0 else na


_UINT = {4: np.uint32, 8: np.uint64}


def _offsets(offsets, size):
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != size \
            or (np.diff(offsets) < 0).any():
        raise ValueError(f"offsets must rise from 0 to the buffer's size {size}; got {offsets}")
    return offsets


def sign_projection_segments(w, offsets, pieces=None):
    """See ``reference.sign_projection_segments``: one parallel pass for α (over pieces of the
    tensors, cut here: ``pieces`` is not used), one for the signs. A new (P,) array (the
    caller keeps it as the weights P)."""
    w = np.ascontiguousarray(w).reshape(-1)
    offsets = _offsets(offsets, w.size)
    start, stop, segment = _pieces(offsets)
    alpha_bits = np.zeros(offsets.size - 1, dtype=_UINT[w.itemsize])
    _maxabs_bits(w.view(alpha_bits.dtype), start, stop, segment, alpha_bits)
    alpha = alpha_bits.view(w.dtype)
    out = np.empty_like(w)
    _sign_pieces(w, start, stop, segment, alpha, -alpha, out)
    return out


@njit(**_PARALLEL)
def _clip_pieces(v, start, stop, segment, bounds, out):
    """out = max(min(v, c_s), −c_s) piece by piece (numpy's NaN-keeping min and max).

    The reference's np.clip bit for bit for bounds c > 0 and inf; for c = ±0 (or NaN) the
    sign of a zero (or NaN) result can differ from np.clip's, as in projection.cuh's
    ``clip_element``."""
    for p in prange(start.size):
        c = bounds[segment[p]]
        for i in range(start[p], stop[p]):
            x = v[i]
            a = x if (x != x or x < c) else c               # numpy.minimum(x, c)
            out[i] = a if (a != a or a > -c) else -c        # numpy.maximum(a, −c)


def clip_segments(v, offsets, bounds, out=None):
    """See ``reference.clip_segments`` (bounds (S,); inf leaves a tensor as it is); one
    parallel pass over pieces of the tensors; out may be v."""
    v = np.ascontiguousarray(v).reshape(-1)
    offsets = _offsets(offsets, v.size)
    bounds = np.ascontiguousarray(bounds, dtype=v.dtype)
    out = np.empty_like(v) if out is None else out
    _clip_pieces(v, *_pieces(offsets), bounds, out.reshape(-1))
    return out
