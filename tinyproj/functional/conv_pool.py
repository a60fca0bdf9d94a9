"""A convolution fused with the max-pool that follows it: ``max_pool2d(conv2d(x, w), k)``.

Shapes: x (N, C, H, W), w (O, C, kh, kw) → conv output (N, O, OH, OW) → pooled
y (N, O, PH, PW), PH = (OH + 2·pool_pad − k) // pool_stride + 1. The same numbers as the two
ops one after the other (tests/test_functional.py checks them bit for bit); what changes is
the memory traffic on the CPU.

Why. In the CPU layout of ``functional/conv.py`` each chunk's product comes out as rows
(B·L, O), output channels on the fast axis. The plain pair of ops copies them transposed
into y (N, O, OH, OW), then the max-pool reads y and writes the pooled maps; backward writes
∂L/∂y (N, O, OH, OW) from the pooled gradient, then the convolution copies it transposed
into rows again. Fused::

    forward    pooled[a:b], argmax[a:b] = maxpool(Y_rows seen as (B, O, OH, OW))
    backward   gY_rows (seen as (B, O, OH, OW)) = maxpool_backward(g_pooled[a:b], argmax)

— the max-pool kernels read and write the (B·L, O) scratch in place (kernels/cpu_pool.py takes
channels-last views with a loop over whole channel vectors), so the full-size y and ∂L/∂y,
and the two transposed copies, are never made. Measured on the 2-core machine (shared, so
in CPU time of one thread: ``tinyproj.limit_threads(1)``), one Algorithm-1 step of
bc_cifar10, batch 50, fused and unfused taking turns, median of 7: width 0.25 211.3 →
205.5 ms. The first try, the plane-by-plane max-pool kernels on the strided view, gained
nothing (their reads jump by O floats): 229 → 229 ms (``benchmarks/step_profile.py --cpu
--threads 1``; max-pool forward 6.4 → 7.5 ms, backward 2.3 → 5.4 ms).

Elsewhere (GPU arrays, the plain products, and layers of at most ``conv.DIRECT_MAX_K``
column values per pixel, whose product comes out whole) it is the two ops one after the
other.
``nn.Sequential`` uses it for a bias-free Conv2d directly followed by a MaxPool2d
(``fuse_conv_pool``).
"""
from __future__ import annotations

from .. import backend, kernels
from ..kernels.geometry import out_size, pair, pool_padding_ok
from ..tensor import as_tensor
from .conv import Conv2d, rows_layout


class Conv2dMaxPool(Conv2d):
    """y = max_pool2d(conv2d(x, w, stride, padding), pool, pool_stride, pool_padding)."""

    def __init__(self, stride=1, padding=0, pool=2, pool_stride=None, pool_padding=0):
        super().__init__(stride, padding)
        self.pool = pair(pool, "kernel_size", "conv2d_maxpool")
        self.pool_stride = pair(pool if pool_stride is None else pool_stride, "stride",
                                "conv2d_maxpool")
        self.pool_pad = pair(pool_padding, "padding", "conv2d_maxpool")

    def forward(self, x, w):
        self._check(x, w)
        self._check_pool(self._out_shape(x, w))
        if rows_layout(x) and not self._direct(w):
            return super().forward(x, w)                   # the hooks below pool each chunk
        y = super().forward(x, w)                          # elsewhere: the two ops in turn
        self.conv_shape = y.shape
        out, self.argmax = kernels.get("maxpool_forward", y)(y, *self.pool, self.pool_stride,
                                                            self.pool_pad)
        return out

    def backward(self, gy):
        if rows_layout(gy) and not self._direct(self.w):
            return super().backward(gy)                    # _give_rows unpools each chunk
        g_conv = kernels.get("maxpool_backward", gy)(gy, self.argmax, self.conv_shape,
                                                     *self.pool, self.pool_stride,
                                                     self.pool_pad)
        return super().backward(g_conv)

    # -- the rows layout's hooks (see Conv2d) -------------------------------------------
    def _rows_output(self, x, w):
        n, o, oh, ow = self._out_shape(x, w)
        ph, pw = (out_size(size, k, s, p) for size, k, s, p in
                  zip((oh, ow), self.pool, self.pool_stride, self.pool_pad))
        xp = backend.xp_of(x)
        taps = "int8" if self.pool[0] * self.pool[1] <= 127 else "intp"
        self.argmax = xp.empty((n, o, ph, pw), dtype=taps)
        return xp.empty((n, o, ph, pw), dtype=x.dtype)

    def _take_rows(self, Y, y, a, b):
        kernels.get("maxpool_forward", Y)(Y, *self.pool, self.pool_stride, self.pool_pad,
                                          out=(y[a:b], self.argmax[a:b]))

    def _give_rows(self, gy, gY, a, b):
        kernels.get("maxpool_backward", gy)(gy[a:b], self.argmax[a:b], gY.shape, *self.pool,
                                            self.pool_stride, self.pool_pad, out=gY)

    def _check_pool(self, conv_shape):
        for size, k, s, p in zip(conv_shape[2:], self.pool, self.pool_stride, self.pool_pad):
            if out_size(size, k, s, p) < 1:
                raise ValueError(f"conv2d_maxpool: a {self.pool} pooling window with stride "
                                 f"{self.pool_stride} does not fit the convolution's output "
                                 f"of shape {tuple(conv_shape)}")
            if not pool_padding_ok(k, p):
                raise ValueError(f"conv2d_maxpool: pooling padding {self.pool_pad} must be at "
                                 f"most half the window {self.pool} (as in PyTorch)")


def conv2d_maxpool(x, w, stride=1, padding=0, pool=2, pool_stride=None, pool_padding=0):
    """``max_pool2d(conv2d(x, w, stride, padding), pool, pool_stride, pool_padding)`` as one
    op (see the module docstring); no bias (a bias would sit between the two)."""
    return Conv2dMaxPool(stride, padding, pool, pool_stride, pool_padding)(as_tensor(x), w)
