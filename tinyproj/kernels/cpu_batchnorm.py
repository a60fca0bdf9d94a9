"""Numba batch norm for the CPU, unfused: training or inference forward, and backward, over
a (N, C, L) view of x (L = H·W, or 1 for BatchNorm1d). ``reference.batchnorm_forward`` /
``batchnorm_backward`` are the oracle (tests/test_kernels_cpu.py); the version fused with
ReLU and the running statistics is in cpu_fused.py, and how the Numba kernels are written is
in cpu.py's docstring.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

_PARALLEL = dict(parallel=True, cache=True, nogil=True)


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
