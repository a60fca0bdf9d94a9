"""Host twin of batchnorm.cu: batch norm forward (statistics, running averages, an optional
fused ReLU) and backward, one block per channel on the GPU; reference.py's signatures.
"""
from __future__ import annotations

import numpy as np

from .host_build import call, contiguous

__all__ = ["batchnorm_forward", "batchnorm_backward", "batchnorm_forward_fused",
           "batchnorm_backward_fused"]


def _ncl(a):
    a = contiguous(a)
    return a.shape[0], a.shape[1], int(np.prod(a.shape[2:], dtype=np.int64))


def _per_channel(a, c, dtype):
    """(array, present): a (C,) array of dtype, or a placeholder when a is None."""
    if a is None:
        return np.zeros(c, dtype=dtype), 0
    return np.ascontiguousarray(a, dtype=dtype), 1


def batchnorm_forward(x, mean, var, eps, gamma=None, beta=None, training=True, relu=False,
                      running_mean=None, running_var=None, momentum=0.0, tracked=None):
    """(y, mean, var, inv_std); see ``reference.batchnorm_forward``. One block per channel.

    relu=True: y is also passed through the ReLU that follows (y·[y > 0]), fused.
    running_mean, running_var (C,), training only: updated in place with ``momentum`` (see
    ``reference.batchnorm_forward_fused``); tracked: a 0-d int64 counter raised by one.
    """
    x = contiguous(x)
    n, c, l = _ncl(x)
    dt = x.dtype
    mean_in, _ = _per_channel(None if training else mean, c, dt)
    var_in, _ = _per_channel(None if training else var, c, dt)
    gamma_a, has_gamma = _per_channel(gamma, c, dt)
    beta_a, has_beta = _per_channel(beta, c, dt)
    y = np.empty_like(x)
    mean_out, var_out, inv_std = (np.empty(c, dtype=dt) for _ in range(3))
    run = bool(training) and running_mean is not None
    rmean = running_mean if run else mean_out                     # placeholders: never written
    rvar = running_var if run else var_out
    for a in (rmean, rvar):
        if not (a.flags.c_contiguous and a.dtype == dt):
            raise ValueError("running statistics must be C-contiguous arrays of x's dtype")
    count = tracked if tracked is not None else np.zeros((), dtype=np.int64)
    if count.dtype != np.int64:
        raise ValueError("tracked must be an int64 array")
    m = n * l
    ty = dt.type
    call("batchnorm_forward", dt, x, y, mean_in, var_in, gamma_a, beta_a, mean_out, var_out,
          inv_std, rmean, rvar, count, n, c, l, eps, int(bool(training)), has_gamma, has_beta,
          int(bool(relu)), ty(1.0 - momentum), ty(momentum), ty(m / (m - 1) if m > 1 else 1.0),
          int(run), int(tracked is not None))
    if not training:                       # the reference hands the given statistics back
        return y, mean, var, inv_std
    return y, mean_out, var_out, inv_std


def batchnorm_backward(gy, x, mean, inv_std, gamma=None, training=True, relu_out=None,
                       out=None):
    """(gx, ggamma, gbeta); see ``reference.batchnorm_backward``. One block per channel.

    relu_out: the y of ``batchnorm_forward(..., relu=True)`` when the ReLU was fused; gy is
    then the gradient of that output, and gy·[relu_out > 0] goes through the batch norm.
    out: None or (ggamma, gbeta) (C,) arrays (either may be None), written by the kernel
    itself when C-contiguous of gy's dtype (an optimizer's gradient slots: no extra launch).
    """
    gy, x = contiguous(gy), contiguous(x)
    n, c, l = _ncl(gy)
    dt = gy.dtype
    mean_a, _ = _per_channel(mean, c, dt)
    inv_a, _ = _per_channel(inv_std, c, dt)
    gamma_a, has_gamma = _per_channel(gamma, c, dt)
    relu_a = gy if relu_out is None else np.ascontiguousarray(relu_out, dtype=dt)
    gx = np.empty_like(gy)
    ggamma, gbeta = (o if o is not None and o.flags.c_contiguous and o.dtype == dt
                     and o.shape == (c,) else np.empty(c, dtype=dt)
                     for o in (out if out is not None else (None, None)))
    call("batchnorm_backward", dt, gy, np.ascontiguousarray(x, dtype=dt), mean_a, inv_a,
          gamma_a, relu_a, gx, ggamma, gbeta, n, c, l, int(bool(training)), has_gamma,
          int(relu_out is not None))
    if out is not None:
        for o, a in zip(out, (ggamma, gbeta)):
            if o is not None and o is not a:
                o[...] = a                        # a slot the kernel could not write itself
        ggamma, gbeta = (a if o is None else o for o, a in zip(out, (ggamma, gbeta)))
    return gx, ggamma, gbeta


batchnorm_forward_fused = batchnorm_forward      # kernels.get's names for the fused versions
batchnorm_backward_fused = batchnorm_backward
