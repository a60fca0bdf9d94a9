"""Host twins of stochastic.cu: the Stoch and StochM projections of a flat buffer, Walking
Noise's Gaussian noise and the plain draws of the device generator (uniform_fill, normal_fill), with random numbers from Philox keyed by key = (seed, stream) (the
very generator of the GPU: ``cuda/random.cuh``).
"""
from __future__ import annotations

import numpy as np

from .host_build import call, contiguous
from .host_optim import segment_scales

__all__ = ["stoch_projection_segments", "stochm_projection_segments", "gaussian_noise",
           "uniform_fill", "normal_fill"]


def _key(key):
    key = np.ascontiguousarray(key, dtype=np.int64)
    if key.shape != (2,):
        raise ValueError(f"key must be 2 int64 numbers (seed, stream), got shape {key.shape}")
    return key


def stoch_projection_segments(w, offsets, key, pieces=None):
    """Stoch of every tensor of a flat buffer, each with its own α (see
    ``reference.stoch_projection_segments``); 2 launches on the GPU (3 with ``pieces``)."""
    w, offsets, alpha = segment_scales(w, offsets, pieces)
    n_seg = offsets.size - 1
    out = np.empty_like(w)
    call("stoch_segments", w.dtype, w, offsets, n_seg, alpha, _key(key), out, w.size)
    return out


def stochm_projection_segments(w, offsets, key, gamma, pieces=None):
    """StochM(γ) of every tensor of a flat buffer (``reference.stochm_projection_segments``)."""
    w, offsets, alpha = segment_scales(w, offsets, pieces)
    n_seg = offsets.size - 1
    out = np.empty_like(w)
    ty = w.dtype.type
    call("stochm_segments", w.dtype, w, offsets, n_seg, alpha, _key(key), out, w.size,
          ty(gamma), ty(1.0 / gamma - gamma))
    return out


def gaussian_noise(x, key, sigma_add, sigma_mul, add_first=False):
    """(y, factor): Walking Noise's noise on x (``reference.gaussian_noise``); factor None
    when sigma_mul is 0."""
    x = contiguous(x)
    y = np.empty_like(x)
    keep = sigma_mul != 0
    factor = np.empty_like(x) if keep else y
    ty = x.dtype.type
    call("gaussian_noise", x.dtype, x, _key(key), y, factor, x.size, ty(sigma_add),
          ty(sigma_mul), int(bool(add_first)), int(keep))
    return y, (factor if keep else None)


def uniform_fill(key, size, dtype, low, high):
    """(size,) numbers U[low, high) keyed by key (``reference.uniform_fill``)."""
    out = np.empty(int(size), dtype=dtype)
    ty = out.dtype.type
    call("uniform_fill", out.dtype, _key(key), out, out.size, ty(low), ty(high - low))
    return out


def normal_fill(key, size, dtype, mean, scale):
    """(size,) numbers N(mean, scale²) keyed by key (``reference.normal_fill``)."""
    out = np.empty(int(size), dtype=dtype)
    ty = out.dtype.type
    call("normal_fill", out.dtype, _key(key), out, out.size, ty(mean), ty(scale))
    return out
