"""Host twins of conv.cu and pool.cu: im2col / col2im and max-pooling, with reference.py's
signatures (window arithmetic: ``kernels/geometry.py``).
"""
from __future__ import annotations

import numpy as np

from .geometry import out_size
from .host_build import call, checked_out, contiguous, geometry_args

__all__ = ["im2col_batch", "col2im_batch", "swap01", "im2col", "col2im", "maxpool_forward",
           "maxpool_backward"]


def im2col_batch(x, kh, kw, stride=(1, 1), pad=(0, 0), pad_value=0.0, out=None):
    """x (N, C, H, W) → cols (C·kh·kw, N·OH·OW); see ``reference.im2col_batch``."""
    x = contiguous(x)
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, stride[0], pad[0]), out_size(w, kw, stride[1], pad[1])
    shape = (c * kh * kw, n * oh * ow)
    cols = np.empty(shape, dtype=x.dtype) if out is None else checked_out(out, shape, x.dtype)
    call("im2col_batch", x.dtype, x, cols, *geometry_args(x.shape, kh, kw, stride, pad), pad_value)
    return cols


def col2im_batch(cols, x_shape, kh, kw, stride=(1, 1), pad=(0, 0), out=None):
    """cols (C·kh·kw, N·OH·OW) → (N, C, H, W); see ``reference.col2im_batch``."""
    cols = contiguous(cols)
    result = (np.empty(tuple(x_shape), dtype=cols.dtype) if out is None
              else checked_out(out, x_shape, cols.dtype))
    call("col2im_batch", cols.dtype, cols, result, *geometry_args(x_shape, kh, kw, stride, pad))
    return result


def swap01(a, out=None):
    """(P, Q, R) → a contiguous (Q, P, R); see ``reference.swap01`` (NumPy does the copy)."""
    if out is None:
        return np.ascontiguousarray(a.transpose(1, 0, 2))
    out[...] = a.transpose(1, 0, 2)
    return out


def im2col(x, kh, kw, stride=(1, 1), pad=(0, 0), pad_value=0.0):
    """x (N, C, H, W) → (N, C·kh·kw, OH·OW): im2col_batch, then the first two axes swapped."""
    cols = im2col_batch(x, kh, kw, stride, pad, pad_value)
    return swap01(cols.reshape(cols.shape[0], x.shape[0], -1))


def col2im(cols, x_shape, kh, kw, stride=(1, 1), pad=(0, 0)):
    """(N, C·kh·kw, OH·OW) → (N, C, H, W): the axes swapped back, then col2im_batch."""
    return col2im_batch(swap01(cols).reshape(cols.shape[1], -1), x_shape, kh, kw, stride, pad)


def maxpool_forward(x, kh, kw, stride, pad=(0, 0)):
    """x (N, C, H, W) → y, argmax (N, C, OH, OW), argmax int64; see
    ``reference.maxpool_forward``."""
    x = contiguous(x)
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, stride[0], pad[0]), out_size(w, kw, stride[1], pad[1])
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    argmax = np.empty((n, c, oh, ow), dtype=np.int64)
    call("maxpool_forward", x.dtype, x, y, argmax, *geometry_args(x.shape, kh, kw, stride, pad))
    return y, argmax


def maxpool_backward(gy, argmax, x_shape, kh, kw, stride, pad=(0, 0)):
    """gy, argmax (N, C, OH, OW) → gx (N, C, H, W); see ``reference.maxpool_backward``."""
    gy = contiguous(gy)
    argmax = np.ascontiguousarray(argmax, dtype=np.int64)
    gx = np.empty(tuple(x_shape), dtype=gy.dtype)
    call("maxpool_backward", gy.dtype, gy, argmax, gx, *geometry_args(x_shape, kh, kw, stride, pad))
    return gx
