"""2-D convolution through im2col: unfold the patches, then one matrix product.

Shapes
    x : (N, C, H, W)   w : (O, C, kh, kw)   y : (N, O, OH, OW)
    OH = (H + 2·pad − kh) // stride + 1

Forward (K = C·kh·kw, L = OH·OW)::

    cols = im2col(x)                    # (N, K, L)
    y[n] = W.reshape(O, K) @ cols[n]    # (O, L) for every image n

Backward, with gy = dL/dy reshaped to (N, O, L)::

    dW    = Σ_n gy[n] @ cols[n]ᵀ        # (O, K) → (O, C, kh, kw), summed image by image
    dcols = W.reshape(O, K)ᵀ @ gy[n]    # (N, K, L)
    dx    = col2im(dcols)               # the adjoint of im2col

Memory: the columns are kept only when the weight needs a gradient, and
dropped as soon as dW has been computed, before col2im allocates dx.

Why a Python loop over the images: ``numpy.matmul`` of a 2-D matrix with a
stack of matrices (broadcasting) does not call BLAS and runs 20–30× slower
than N separate BLAS products, which cost almost nothing in loop overhead.
"""
from __future__ import annotations

from .. import backend, kernels
from ..kernels.reference import out_size
from ..tensor import Function, as_tensor
from .elementwise import add


def _pair(v, what):
    if isinstance(v, int):
        return (v, v)
    if len(v) != 2:
        raise ValueError(f"conv2d: {what} must be an int or a pair, got {v!r}")
    return tuple(int(a) for a in v)


class Conv2d(Function):
    """y = conv2d(x, w) by im2col and one matrix product per image (no bias; see ``conv2d``)."""

    def __init__(self, stride=1, padding=0):
        self.stride = _pair(stride, "stride")
        self.pad = _pair(padding, "padding")

    def forward(self, x, w):
        self._check(x, w)
        o, c, kh, kw = w.shape
        n, _, h, wid = x.shape
        oh = out_size(h, kh, self.stride[0], self.pad[0])
        ow = out_size(wid, kw, self.stride[1], self.pad[1])
        cols = kernels.get("im2col")(x, kh, kw, self.stride, self.pad)      # (N, K, L)
        w_mat = w.reshape(o, c * kh * kw)                                    # (O, K)
        y = backend.xp_of(x).empty((n, o, oh * ow), dtype=x.dtype)           # (N, O, L)
        for i in range(n):          # one BLAS matrix product per image (see the note above)
            y[i] = w_mat @ cols[i]
        self.x_shape, self.w = x.shape, w
        self.cols = cols if self.recording and self.needs_grad[1] else None
        return y.reshape(n, o, oh, ow)

    def backward(self, gy):
        xp = backend.xp_of(gy)
        o, c, kh, kw = self.w.shape
        n = gy.shape[0]
        gy = gy.reshape(n, o, -1)                                            # (N, O, L)
        gw = gx = None
        if self.needs_grad[1]:
            # one (O, L)·(L, K) product per image, accumulated in place: a single
            # batched matmul would first materialize an (N, O, K) array
            gw = xp.zeros((o, c * kh * kw), dtype=gy.dtype)
            for i in range(n):
                gw += gy[i] @ self.cols[i].T
            gw = gw.reshape(self.w.shape)
            self.cols = None                      # the columns are not needed any more
        if self.needs_grad[0]:
            w_mat_t = self.w.reshape(o, -1).T                                # (K, O)
            gcols = xp.empty((n, w_mat_t.shape[0], gy.shape[2]), dtype=gy.dtype)
            for i in range(n):
                gcols[i] = w_mat_t @ gy[i]                                   # (K, L)
            gx = kernels.get("col2im")(gcols, self.x_shape, kh, kw, self.stride, self.pad)
        return gx, gw

    def _check(self, x, w):
        if w.ndim != 4:
            raise ValueError(f"conv2d: weight must be 4-D (out_channels, in_channels, kh, kw), "
                             f"got shape {tuple(w.shape)}")
        if x.ndim != 4:
            raise ValueError(f"conv2d: input must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] != w.shape[1]:
            raise ValueError(f"conv2d: input of shape {tuple(x.shape)} has {x.shape[1]} channels "
                             f"but the weight of shape {tuple(w.shape)} expects {w.shape[1]}")
        for size, k, s, p in ((x.shape[2], w.shape[2], self.stride[0], self.pad[0]),
                              (x.shape[3], w.shape[3], self.stride[1], self.pad[1])):
            if out_size(size, k, s, p) < 1:
                raise ValueError(f"conv2d: a {w.shape[2]}×{w.shape[3]} kernel with stride "
                                 f"{self.stride} and padding {self.pad} does not fit an input "
                                 f"of shape {tuple(x.shape)}")


def conv2d(x, w, stride=1, padding=0, bias=None):
    """2-D cross-correlation (the deep-learning "convolution").

    x (N, C, H, W), w (O, C, kh, kw), optional bias (O,) → (N, O, OH, OW).
    ``stride`` and ``padding`` are ints or (vertical, horizontal) pairs; kernels
    need not be square (AlexNet's first layer is 11×11, stride 4).
    """
    y = Conv2d(stride, padding)(as_tensor(x), w)
    if bias is not None:
        y = add(y, bias.reshape(1, -1, 1, 1))
    return y
