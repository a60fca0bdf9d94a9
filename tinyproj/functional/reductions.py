"""Reductions over axes: sum, mean, max."""
from __future__ import annotations

from .. import backend
from ..tensor import Function, as_tensor
from .elementwise import mul


def _norm_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim for a in axes)


def _expand(g, x_shape, axes, keepdims):
    """Give ``g`` back the reduced axes (as size 1) so it broadcasts against x."""
    if not keepdims:
        shape = [1 if i in axes else n for i, n in enumerate(x_shape)]
        g = g.reshape(shape)
    return g


class Sum(Function):
    """y = Σ over ``axis`` of x;  dy/dx = 1 broadcast back to x's shape."""

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.x_shape = x.shape
        self.axes = _norm_axes(self.axis, x.ndim)
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        g = _expand(gy, self.x_shape, self.axes, self.keepdims)
        return backend.xp_of(gy).broadcast_to(g, self.x_shape).copy()


class Max(Function):
    """y = max over ``axis``; the gradient goes to the maximal element (shared on ties)."""

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = _norm_axes(self.axis, x.ndim)
        y = x.max(axis=self.axes, keepdims=True)
        self.mask = x == y
        return y if self.keepdims else y.reshape([n for i, n in enumerate(x.shape)
                                                  if i not in self.axes])

    def backward(self, gy):
        g = _expand(gy, self.mask.shape, self.axes, self.keepdims)
        count = self.mask.sum(axis=self.axes, keepdims=True)  # ties share the gradient
        return g * self.mask / count.astype(g.dtype)           # int count would promote to float64


def sum(x, axis=None, keepdims=False):  # noqa: A001
    """Sum of x over ``axis`` (int, tuple or None for all)."""
    return Sum(axis, keepdims)(x)


def mean(x, axis=None, keepdims=False):
    """Mean of x over ``axis``: the sum divided by the number of elements reduced."""
    x = as_tensor(x)
    s = sum(x, axis, keepdims)
    return mul(s, 1.0 / (x.size // s.size))


def max(x, axis=None, keepdims=False):  # noqa: A001
    """Maximum of x over ``axis``."""
    return Max(axis, keepdims)(x)
