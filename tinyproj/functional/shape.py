"""Ops that move values around without changing them: reshape, transpose, indexing,
concatenate, flatten. Their gradients move the upstream gradient back."""
from __future__ import annotations

import itertools

from .. import backend
from ..tensor import Function, Tensor, as_tensor


class Reshape(Function):
    """y = x viewed with a new shape;  the gradient is reshaped back."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.x_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {tuple(x.shape)} "
                             f"({x.size} elements) into {self.shape}") from None

    def backward(self, gy):
        return gy.reshape(self.x_shape)


class Transpose(Function):
    """y = x with axes permuted (reversed when ``axes`` is None); the gradient is permuted back."""

    def __init__(self, axes=None):
        self.axes = axes

    def forward(self, x):
        if self.axes is None:
            return x.T
        self.axes = tuple(int(a) % x.ndim for a in self.axes)  # negative axes → 0..ndim-1
        return x.transpose(self.axes)

    def backward(self, gy):
        if self.axes is None:
            return gy.T
        inverse = [list(self.axes).index(i) for i in range(len(self.axes))]
        return gy.transpose(inverse)


class GetItem(Function):
    """y = x[index] (any NumPy index: ints, slices, masks, integer arrays).

    The gradient scatters gy back into zeros of x's shape; repeated integer
    indices accumulate (``backend.scatter_add``), as each copy contributed.
    """

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.x_shape, self.x_dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy):
        xp = backend.xp_of(gy)
        gx = xp.zeros(self.x_shape, dtype=gy.dtype)
        backend.scatter_add(gx, self.index, gy)
        return gx


class Concatenate(Function):
    """y = concatenate(xs, axis);  each input gets its slice of the gradient."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return backend.xp_of(xs[0]).concatenate(xs, axis=self.axis)

    def backward(self, gy):
        cuts = list(itertools.accumulate(self.sizes[:-1]))
        return tuple(backend.xp_of(gy).split(gy, cuts, axis=self.axis))


def reshape(x, shape):
    return Reshape(shape)(x)


def transpose(x, axes=None):
    return Transpose(axes)(x)


def getitem(x, index):
    if isinstance(index, Tensor):
        index = index.data
    return GetItem(index)(x)


def concatenate(xs, axis=0):
    xs = [as_tensor(x) for x in xs]
    return Concatenate(axis)(*xs)


def flatten(x):
    """(N, d1, d2, ...) → (N, d1·d2·...): keep the batch axis, flatten the rest."""
    x = as_tensor(x)
    return reshape(x, (x.shape[0], -1))
