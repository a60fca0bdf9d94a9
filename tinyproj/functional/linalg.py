"""Matrix products: matmul and the fully connected layer ``linear``."""
from __future__ import annotations

import numpy as np

from ..kernels import gemm
from ..tensor import Function, as_tensor
from .elementwise import add


class MatMul(Function):
    """Y = A @ B for 2-D A (n, k) and B (k, m);  dA = dY Bᵀ, dB = Aᵀ dY."""

    def forward(self, a, b):
        if a.ndim != 2 or b.ndim != 2:
            raise ValueError(f"matmul: expected two 2-D tensors, got shapes {tuple(a.shape)} "
                             f"and {tuple(b.shape)}")
        if a.shape[1] != b.shape[0]:
            raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not "
                             f"align: {a.shape[1]} (columns of the first) != {b.shape[0]} "
                             "(rows of the second)")
        self.a, self.b = a, b
        return gemm.matmul(a, b)

    def backward(self, gy):
        ga = gemm.matmul(gy, self.b.T) if self.needs_grad[0] else None
        gb = gemm.matmul(self.a.T, gy) if self.needs_grad[1] else None
        return ga, gb


def matmul(a, b):
    return MatMul()(a, b)


TRANSPOSED = True
"""On NumPy arrays, compute y of ``Linear`` as the transpose of W xᵀ (then one small copy to C
order): OpenBLAS runs the product whose result has the batch (50 rows) along its slow axis
below its rate. Measured on the 2-core machine, batch 50, float32, 11–15 alternating turns,
``x @ w.T`` against the transposed form:

    quiet machine (load ~3), fastest wall ms    8192 → 1024: 4.86 → 3.67   2048 → 256: 0.33 → 0.26
    busy machine (load ~13), median CPU ms      8192 → 1024: 145.7 → 10.0  1024 → 1024: 21.9 → 1.3

dx = dy W stays as it is: transposed it won on the busy machine (26.0 → 15.3 ms CPU) but lost
on the quiet one (3.97 → 4.48 ms, 0.25 → 0.36 ms); dW = dyᵀ x too (its transposed form with
the copy back to C order was slower everywhere: 3.7 → 55 ms quiet). GPU arrays keep the
plain products."""


def _transposed(like) -> bool:
    return TRANSPOSED and isinstance(like, np.ndarray)


class Linear(Function):
    """y = x Wᵀ for x (N, in) and W (out, in) — the fully connected layer without bias.

    dx = dy W (N, in);  dW = dyᵀ x (out, in). On the CPU y = (W xᵀ)ᵀ, the same sums (see
    ``TRANSPOSED``).
    """

    def forward(self, x, w):
        if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
            raise ValueError(f"linear: input of shape {tuple(x.shape)} does not fit a weight of "
                             f"shape {tuple(w.shape)} (out, in): expected input (N, {w.shape[1]})"
                             if w.ndim == 2 else
                             f"linear: weight must be 2-D (out, in), got {tuple(w.shape)}")
        self.x, self.w = x, w
        if _transposed(x):
            return np.ascontiguousarray((w @ x.T).T)
        return gemm.matmul(x, w.T)

    def backward(self, gy):
        gx = gemm.matmul(gy, self.w) if self.needs_grad[0] else None
        gw = gemm.matmul(gy.T, self.x) if self.needs_grad[1] else None
        return gx, gw


def linear(x, w, b=None):
    """Fully connected layer: y = x Wᵀ (+ b).  x (N, in), W (out, in), b (out,) → y (N, out)."""
    y = Linear()(as_tensor(x), w)
    return add(y, b) if b is not None else y
