"""Max pooling, overlapping windows allowed (AlexNet's 3×3 stride 2).

x (N, C, H, W) → y (N, C, OH, OW), OH = (H + 2·pad − k) // stride + 1.
The backward pass sends each output's gradient to the element that won its
window; an element that wins several overlapping windows collects them all.
"""
from __future__ import annotations

from .. import kernels
from ..kernels.geometry import out_size
from ..tensor import Function, as_tensor


def _pair(v):
    return (int(v), int(v)) if isinstance(v, int) else tuple(int(a) for a in v)


class MaxPool2d(Function):
    def __init__(self, kernel_size, stride=None, padding=0):
        self.k = _pair(kernel_size)
        self.stride = _pair(stride if stride is not None else kernel_size)
        self.pad = _pair(padding)

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"max_pool2d: input must be 4-D (N, C, H, W), got {tuple(x.shape)}")
        if any(out_size(x.shape[2 + a], self.k[a], self.stride[a], self.pad[a]) < 1
               for a in (0, 1)):
            raise ValueError(f"max_pool2d: a {self.k} window with stride {self.stride} does not "
                             f"fit an input of shape {tuple(x.shape)}")
        if any(2 * p > k for p, k in zip(self.pad, self.k)):
            # larger padding makes windows that hold only padding (−∞): their max is −∞
            raise ValueError(f"max_pool2d: padding {self.pad} must be at most half the window "
                             f"{self.k} (as in PyTorch)")
        y, self.argmax = kernels.get("maxpool_forward", x)(x, *self.k, self.stride, self.pad)
        self.x_shape = x.shape
        return y

    def backward(self, gy):
        return kernels.get("maxpool_backward", gy)(gy, self.argmax, self.x_shape, *self.k,
                                               self.stride, self.pad)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over kernel_size windows moved by ``stride`` (default: kernel_size, no overlap)."""
    return MaxPool2d(kernel_size, stride, padding)(as_tensor(x))
