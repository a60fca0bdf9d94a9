"""2-D convolution through im2col: unfold the patches, then one matrix product.

Shapes
    x : (N, C, H, W)   w : (O, C, kh, kw)   y : (N, O, OH, OW)
    OH = (H + 2·pad − kh) // stride + 1

Forward (K = C·kh·kw, L = OH·OW, W_mat = w.reshape(O, K))::

    cols = im2col_batch(x)              # (K, N·L): the patches of all N images side by side
    Y    = W_mat @ cols                 # (O, N·L): one matrix product for the whole batch
    y    = swap01(Y as (O, N, L))       # (N, O, L) → (N, O, OH, OW)

Backward, with gy = dL/dy::

    gY    = swap01(gy as (N, O, L))     # (O, N·L)
    dW    = gY @ colsᵀ                  # (O, K) → (O, C, kh, kw)
    dcols = W_matᵀ @ gY                 # (K, N·L)
    dx    = col2im_batch(dcols)         # (N, C, H, W), the adjoint of im2col

Why one product for the batch: a matrix product runs fastest when it is large. Per image,
the 8×8 layers of the CIFAR-10 network multiply (512, 4608) by (4608, 64) — thin matrices
that keep a BLAS well below its peak; side by side they become (4608, 3200). The batch
layout is chosen so the product reads the columns straight from memory; the price is the
two ``swap01`` copies of y and gy (L contiguous floats at a time, cheap next to the product).

Transposed products on the CPU (``ROWS_OUT``). The same products, each taken as its
transpose, so that the output channels run along the fast axis of the result::

    Yᵀ  = colsᵀ @ W_matᵀ                # (N·L, O) → y = Yᵀ as (N, L, O), axes 1, 2 swapped
    gYᵀ = gy as (N, L, O)               # (N·L, O): the transposed copy replaces swap01
    dWᵀ = cols @ gYᵀ                    # (K, O) when K ≥ O, else dW = gY @ colsᵀ as above
    dcols = W_matᵀ @ (gYᵀ)ᵀ             # (K, N·L), as before; with O ≤ DX_ROWS_MAX_O
    drows = gYᵀ @ W_mat                 # (N·L, K) instead, and col2im reads drowsᵀ in place

The arithmetic is the same (the tests find the two layouts equal to float32 rounding); only
the shapes OpenBLAS sees change. With 32–128 output channels the plain products are thin in
their rows and OpenBLAS runs them far below its rate; worst is dW = gY @ colsᵀ, a (O, K)
result reduced over N·L ≥ 3200 columns (10–15× the CPU time of cols @ gYᵀ at width 0.25).
Measured on the 2-core machine (shared: load average 9–11 at the time, so the CPU time,
which counts work rather than waiting, is the figure to trust), forward + backward of each
3×3 layer of bc_cifar10, batch 50, ``python benchmarks/conv_layouts.py --width W``, sums
over the six layers (fastest wall ms / median CPU ms):

    width 0.25   plain 1527 / 1104   transposed  608 / 300   (every layer but 3→32 faster)
    width 1.0    plain 6073 / 2877   transposed 4777 / 1876  (every layer faster in CPU time)

and again later on a quieter machine (load 3–6, after MAX_COLUMNS became 8,192):

    width 0.25   plain  275 /  336   transposed  196 / 233   (3→32: 11.5 → 13.8 ms wall)
    width 1.0    plain 3085 / 2976   transposed 1658 / 1562  (256→512: 217 → 277 ms wall,
                                                              but 215 → 180 ms CPU)

Alternatives measured on the same layers and dropped: one product for the whole batch
instead of chunks (no gain beyond 8,192 columns, see MAX_COLUMNS); one product per image on an (N, K, L)
layout (np.matmul over the stack: 10–40× slower for the 32-channel layers); unfolding
into rows (N·L, K) instead of columns (the same speed as colsᵀ, which is a free view);
a blocked Numba transpose in place of NumPy's transposed copy (no faster at these shapes).
GPU arrays keep the plain products (cuBLAS has no such weakness, and each copy is a launch).

Shifted products (functional/conv_shifted.py, issue 15). Thin stride-1 layers (16 ≤ C,
O ≤ 64: conv2–4 of bc_cifar10 at width 0.25) skip the columns altogether in forward and for
dx: x is copied once into padded channels-last rows, and each tap (i, j) of the kernel is
one product of a shifted block of those rows with W_ij (kernels/shifted.py has the
formulas). dW still unfolds x (its shifted form measured no faster). A max-pool right after
the convolution is taken from the product rows in place (functional/conv_pool.py).

One product per image (``DIRECT_MAX_K``): layers with few column values per pixel (the first
layer) write their product straight into y.

Winograd (``conv_winograd.WINOGRAD``, issue 15). 3×3 stride-1 layers with an even output
and at least 128 input channels (every conv layer of bc_cifar10 at width 1.0 but the first)
go through F(2×2, 3×3) instead: 16 products of depth C over 2×2 output blocks, 2.25× fewer
flops than im2col's one product of depth 9·C, and 4× the input in transformed tiles instead
of 9× in columns (functional/conv_winograd.py, kernels/winograd.py). The width-1.0 step went
from 982 to 802 ms (2 cores, median of 7, alternating in one process).

Memory: the columns are C·kh·kw times the input (236 MB for the 128→128 layer at 32×32,
batch 50). Three choices keep that bill small:

* **Chunks of images.** The batch is convolved a few images at a time, so that the columns
  of one chunk fit in ``COLS_BUDGET`` bytes and about ``MAX_COLUMNS`` columns. A chunk is
  still a large product — 8 images × 1024 pixels = 8,192 columns for the 128→128 layer
  at 32×32.
* **Not kept between the passes.** Backward unfolds x again (one more im2col, a few per
  cent of the layer's time); keeping the columns would hold every layer's at once, about
  0.5 GB for the CIFAR-10 network, from the forward to the backward pass. Keeping only the
  small ones was measured and dropped (issue 15): forward kept the columns of every layer
  with at most 16 MB of them (conv1, 3, 5, 6 at width 0.25: 42 MB more held), and the step
  took no less time — 232.8 ms unfolding again against 238.3 ms kept, and 237.1 against
  239.4 ms, CPU time of one thread, 7 and 11 alternating turns (the kept columns have left
  the cache by the time backward reads them, and its dW product slows by what the second
  im2col cost).
* **One reused buffer.** The columns, and in backward dcols after them, live in a scratch
  buffer (kernels/workspace.py) instead of fresh arrays, whose pages the operating system
  would zero again at every step.

``TINYPROJ_KERNELS=reference`` runs the same algorithm with the readable kernels.
"""
from __future__ import annotations

import numpy as np

from .. import backend, kernels
from ..kernels import gemm, workspace
from . import conv_shifted, conv_winograd
from ..kernels.geometry import fits, out_size, pair
from ..tensor import Function, as_tensor
from .elementwise import add

COLS_BUDGET = 128 * 2**20
"""Most bytes of columns unfolded at once (at least one image per chunk). Larger chunks make
wider, faster matrix products; smaller ones hold less memory. (On the CPU MAX_COLUMNS below
cuts first: the 128→128 layer at 32×32, batch 50, runs in 7 chunks of 7–8 images, 38 MB of
columns.) Measured, before MAX_COLUMNS, on 2 cores, runs alternating in one
process (median ratio of paired runs), forward+backward against a 64 MB budget: 0.92× for
the 128→128 layer, 0.96× for the 256→256 layer; the full step is the same within noise."""

ROWS_OUT = True
"""Take the products transposed on NumPy arrays (see "Transposed products on the CPU" in the
module docstring for the measurement); False gives the plain ones, as on the GPU."""

DX_ROWS_MAX_O = 64
"""With at most this many output channels (and ``ROWS_OUT``), dcols is taken transposed too:
drows = gYᵀ @ W_mat, (B·L, K), and col2im reads it in place (kernels/cpu.py). The product
has only O terms per sum, a shape OpenBLAS runs badly the other way round. Measured (load
~12, 9 alternating turns, forward + backward, median CPU ms): width 0.25 layers 32→32 100.7
→ 85.9, 32→64 31.5 → 29.4, 64→64 58.2 → 56.4, 64→128 24.8 → 18.3, 128→128 37.9 → 33.9; at
width 1.0 (O ≥ 128) no gain, 1592 → 1641 over the five layers (3 turns), hence the bound."""

MAX_COLUMNS = 8192
"""Columns per chunk on the CPU beyond which a wider product gains little, so layers are cut
here even when their columns would fit COLS_BUDGET: the scratch buffer (the largest chunk's
columns, held from step to step) shrinks from 31 to 16 MB at width 0.25 and from 125 to
63 MB at width 1.0. Measured (transposed products, load ~9, forward + backward of the six
conv layers, fastest wall / median CPU ms, ``workspace.nbytes()``): width 0.25 466 / 259
with 16,384 columns, 452 / 277 with 8,192, 436 / 287 with 4,096; width 1.0 2923 / 1674 with
16,384, 2915 / 1716 with 8,192 — a few per cent of CPU time at most, for the memory target
of issue 15 (peak ≤ 1.2× PyTorch's). (Not applied to GPU arrays, where every chunk costs
kernel launches.)"""

SMALL_COLS = 8 * 2**20
"""Bytes of a chunk's columns and product (K + O floats per column) small enough to take in one
chunk whatever MAX_COLUMNS says: the first layer of bc_cifar10 at width 0.25 (K = 27, O = 32)
runs in 2 chunks of 25 images instead of 4 (8 MB: the bound keeps the scratch buffers no
larger than the other layers'). Measured (transposed products, load ~10): forward + backward
of the 3→32 layer 22.5 ms CPU in one chunk, 44.2 ms in four."""


DIRECT_MAX_K = 32
"""Layers with at most this many values per pixel in their columns (K = C·kh·kw: the first
layer of bc_cifar10, K = 27) take one product per image straight into y (N, O, OH, OW) —
W (O, K) @ cols_n (K, L) is already image n's (O, L) block — and dW and dx read ∂L/∂y in
place the same way, so the transposed copies of the rows layout (y ← rows, rows ← ∂L/∂y) are
never made; those copies cost more than the thin products themselves. Measured (2 cores,
3→128 @32×32, batch 50, median of 9): forward + backward with dx 32.8 → 17.1 ms, without dx
(as in the network) 26.9 → 11.9 ms; the whole step (alternating, median) 755 → 741 ms at
width 1.0, 136 → 132 ms at width 0.25. Fused with a max-pool (functional/conv_pool.py), such a
layer is the two ops in turn: the product comes out whole, not as rows to pool."""


def rows_layout(like) -> bool:
    """Whether the products are taken transposed, with the output channels along the rows'
    fast axis (the ``ROWS_OUT`` layout, see the module docstring): on NumPy arrays yes."""
    return ROWS_OUT and isinstance(like, np.ndarray)


def matmul(a, b, out):
    """``out[...] = a @ b`` (written into ``out``, no new array; 2-D, or stacks of them). CuPy's
    2-D products go through kernels/gemm.py (cuBLAS on a handle a CUDA graph can capture)."""
    gemm.matmul(a, b, out=out)


def matmul_new(a, b):
    """``a @ b`` as a new array (a function of its own, like ``matmul``, so that
    benchmarks/step_profile.py can time it)."""
    return gemm.matmul(a, b)


class Conv2d(Function):
    """y = conv2d(x, w) by im2col and one matrix product per chunk of images (no bias; see
    ``conv2d`` and the module docstring)."""

    def __init__(self, stride=1, padding=0):
        self.stride = pair(stride, "stride", "conv2d")
        self.pad = pair(padding, "padding", "conv2d")

    def forward(self, x, w):
        self._check(x, w)
        xp = backend.xp_of(x)
        n, o, oh, ow = self._out_shape(x, w)
        w_mat = w.reshape(o, -1)                                             # (O, K)
        rows = rows_layout(x)
        self.x, self.w = x, w                                                # for backward
        if rows and self._direct(w):                     # few columns: per image into y
            y = xp.empty((n, o, oh, ow), dtype=x.dtype)
            for a, b in self._chunks(x, w):
                cols = self._im2col(x[a:b], w).reshape(-1, b - a, oh * ow)   # (K, B, L)
                matmul(w_mat, cols.transpose(1, 0, 2), out=y[a:b].reshape(b - a, o, -1))
            return y
        y = self._rows_output(x, w) if rows else xp.empty((n, o, oh * ow), dtype=x.dtype)
        if rows and conv_winograd.uses(self, x, w):      # 3×3 stride 1: F(2×2, 3×3)
            conv_winograd.forward(self, x, w, y)
            return y
        taps = conv_shifted.taps(self, x, w) if rows else None
        if taps is not None:                         # no columns: kh·kw shifted products
            for a, b in conv_shifted.chunks(self, x, taps):
                self._take_rows(conv_shifted.forward(self, x[a:b], taps, oh, ow), y, a, b)
            return y
        for a, b in self._chunks(x, w):                                      # images a..b-1
            cols = self._im2col(x[a:b], w)                                   # (K, B·L)
            if rows:
                Yt = self._scratch("conv.out", ((b - a) * oh * ow, o), x)
                matmul(cols.T, w_mat.T, out=Yt)                              # (B·L, O)
                self._take_rows(Yt.reshape(b - a, oh, ow, o).transpose(0, 3, 1, 2), y, a, b)
            else:
                Y = self._scratch("conv.out", (o, (b - a) * oh * ow), x)
                matmul(w_mat, cols, out=Y)                                   # (O, B·L)
                kernels.get("swap01", Y)(Y.reshape(o, b - a, -1), out=y[a:b])  # → (B, O, L)
        return y if rows else y.reshape(n, o, oh, ow)

    # What the rows layout does with each chunk's product, and where backward gets it from:
    # here a transposed copy into y (N, O, OH, OW); the convolution fused with its max-pool
    # (functional/conv_pool.py) pools the product instead.
    def _rows_output(self, x, w):
        """The forward's result array, (N, O, OH, OW)."""
        return backend.xp_of(x).empty(self._out_shape(x, w), dtype=x.dtype)

    def _take_rows(self, Y, y, a, b):
        """Store chunk a..b's product Y (B, O, OH, OW), a view of the (B·L, O) scratch, in y."""
        backend.xp_of(y).copyto(y[a:b], Y)

    def _give_rows(self, gy, gY, a, b):
        """Write ∂L/∂(conv output) of images a..b into gY (B, O, OH, OW), a view of the
        (B·L, O) scratch, from the gradient gy that backward received."""
        backend.xp_of(gy).copyto(gY, gy[a:b])

    def backward(self, gy):
        x, w = self.x, self.w
        if rows_layout(gy) and self._direct(w):
            return self._direct_backward(gy)
        if rows_layout(gy) and conv_winograd.uses(self, x, w):
            return conv_winograd.backward(self, gy, x, w, *self.needs_grad[:2])
        xp = backend.xp_of(gy)
        o, c, kh, kw = w.shape
        _, _, oh, ow = self._out_shape(x, w)
        w_mat = w.reshape(o, -1)                                             # (O, K)
        rows = rows_layout(gy)
        if not rows:
            gy = xp.ascontiguousarray(gy).reshape(gy.shape[0], o, -1)        # (N, O, L)
        gw_rows = rows and w_mat.shape[1] >= o       # dW as (K, O): the longer side first
        gw = None
        if self.needs_grad[1]:
            gw = xp.zeros(w_mat.T.shape if gw_rows else w_mat.shape, dtype=gy.dtype)
        gx = xp.empty(x.shape, dtype=gy.dtype) if self.needs_grad[0] else None
        taps = conv_shifted.taps(self, x, w) if gx is not None and rows else None
        for a, b in self._chunks(x, w):
            if rows:
                gYt = self._scratch("conv.out", ((b - a) * oh * ow, o), gy)  # (B·L, O)
                self._give_rows(gy, gYt.reshape(b - a, oh, ow, o).transpose(0, 3, 1, 2), a, b)
                gY = gYt.T                                                   # (O, B·L) view
            else:
                gY = self._scratch("conv.out", (o, (b - a) * oh * ow), gy)
                kernels.get("swap01", gy)(gy[a:b], out=gY.reshape(o, b - a, -1))  # (O, B·L)
            if gw is not None:
                cols = self._im2col(x[a:b], w)                               # (K, B·L) again
                gw += matmul_new(cols, gYt) if gw_rows else matmul_new(gY, cols.T)  # (K,O)/(O,K)
            if taps is not None:                         # dx by kh·kw shifted products
                conv_shifted.dx(self, gYt, taps, x[a:b].shape, out=gx[a:b])
            elif gx is not None and rows and o <= DX_ROWS_MAX_O:
                drows = self._scratch("conv.cols", (gYt.shape[0], w_mat.shape[1]), gy)
                matmul(gYt, w_mat, out=drows)                                # (B·L, K)
                kernels.get("col2im_batch", drows)(drows.T, gx[a:b].shape, kh, kw,
                                                   self.stride, self.pad, out=gx[a:b])
            elif gx is not None:
                dcols = self._scratch("conv.cols", (w_mat.shape[1], gY.shape[1]), gy)
                matmul(w_mat.T, gY, out=dcols)                               # (K, B·L)
                kernels.get("col2im_batch", dcols)(dcols, gx[a:b].shape, kh, kw, self.stride,
                                                   self.pad, out=gx[a:b])
        if gw is not None:
            gw = (xp.ascontiguousarray(gw.T) if gw_rows else gw).reshape(w.shape)
        return gx, gw

    def _direct(self, w):
        """Whether this layer takes one product per image (``DIRECT_MAX_K``)."""
        return w[0].size <= DIRECT_MAX_K

    def _direct_backward(self, gy):
        """dx and dW image by image from ∂L/∂y (N, O, OH, OW), read in place:
        dW = Σ_n gy_n (O, L) @ cols_nᵀ (L, K), dcols_n = Wᵀ (K, O) @ gy_n (O, L) → col2im."""
        x, w = self.x, self.w
        o, c, kh, kw = w.shape
        w_mat = w.reshape(o, -1)                                             # (O, K)
        gy = np.ascontiguousarray(gy).reshape(gy.shape[0], o, -1)            # (N, O, L)
        gw = np.zeros(w_mat.shape, dtype=gy.dtype) if self.needs_grad[1] else None
        gx = np.empty(x.shape, dtype=gy.dtype) if self.needs_grad[0] else None
        for a, b in self._chunks(x, w):
            cols = self._im2col(x[a:b], w).reshape(w_mat.shape[1], b - a, -1)   # (K, B, L)
            if gw is not None:
                gw += matmul_new(gy[a:b], cols.transpose(1, 2, 0)).sum(axis=0)
            if gx is not None:
                dcols = self._scratch("conv.ext", cols.shape, gy)               # (K, B, L)
                matmul(w_mat.T, gy[a:b], out=dcols.transpose(1, 0, 2))
                kernels.get("col2im_batch", dcols)(dcols.reshape(len(dcols), -1), gx[a:b].shape,
                                                   kh, kw, self.stride, self.pad, out=gx[a:b])
        return gx, (gw.reshape(w.shape) if gw is not None else None)

    # -- helpers --------------------------------------------------------------------
    def _out_shape(self, x, w):
        return (x.shape[0], w.shape[0],
                out_size(x.shape[2], w.shape[2], self.stride[0], self.pad[0]),
                out_size(x.shape[3], w.shape[3], self.stride[1], self.pad[1]))

    def _chunks(self, x, w):
        """``(a, b)`` ranges of images: columns within COLS_BUDGET bytes and about MAX_COLUMNS
        columns, at least one image each, the batch split into chunks of near-equal size
        (50 images at most 16 a chunk: 13, 13, 12, 12 rather than 16, 16, 16, 2)."""
        n, _, oh, ow = self._out_shape(x, w)
        per_image = w[0].size * oh * ow * x.dtype.itemsize                  # K·L·itemsize
        most = min(n, COLS_BUDGET // per_image)
        if not backend.is_gpu_array(x):          # on a GPU, fewer and larger launches win
            per_column = (w[0].size + w.shape[0]) * x.dtype.itemsize         # (K + O) floats
            columns = max(MAX_COLUMNS, SMALL_COLS // per_column)
            most = min(most, -(-columns // (oh * ow)))
        return workspace.even_chunks(n, most)

    def _im2col(self, x, w):
        """The columns (K, B·L) of the images x, in a scratch buffer reused between calls."""
        n, _, oh, ow = self._out_shape(x, w)
        cols = self._scratch("conv.cols", (w[0].size, n * oh * ow), x)
        return kernels.get("im2col_batch", x)(x, w.shape[2], w.shape[3], self.stride, self.pad,
                                              out=cols)

    _scratch = staticmethod(workspace.scratch_like)

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
            if not fits(size, k, s, p):
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
