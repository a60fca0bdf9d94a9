"""Numba weight passes for the CPU: Adam's update in place and Table 1's Sign projection,
each one parallel pass over the weights. ``reference.adam_update`` / ``sign_projection`` are
the oracle (tests/test_kernels_cpu.py, bit for bit); SGD and Sign or the clip over every
layer of a flat buffer are in cpu_fused.py, and how the Numba kernels are written is in
cpu.py's docstring.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

_PARALLEL = dict(parallel=True, cache=True, nogil=True)


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
