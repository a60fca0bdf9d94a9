"""The CPU convolution's Winograd path: a 3×3 stride-1 layer by F(2×2, 3×3) (issue 15).

kernels/winograd.py has the algorithm and its formulas; this module runs it over chunks of
images inside ``Conv2d`` (functional/conv.py), in the same rows layout as the im2col path,
so the max-pool fusion (functional/conv_pool.py) takes its output unchanged. Per chunk of
B images, T = B·(OH/2)·(OW/2) tiles, U = G g Gᵀ computed once per call and kept as
Uᵀ (16, O, C) (the transform then reads w and writes U along C; the products take the
transposed view):

    forward    Xp = pad_rows(x)             (B, H2, W2, C)     channels last, zero border
               V  = Bᵀ d B per tile          (T, 16, C)
               M[ξ] = V[ξ] @ U[ξ]            (T, 16, O)        16 products, ξ = 0..15
               Y  = Aᵀ M A per tile          (B, OH, OW, O)    the rows the op takes
    backward   gM = A gY Aᵀ per tile         (T, 16, O)
               gU[ξ]ᵀ += gM[ξ]ᵀ @ V[ξ]       (16, O, C)        V recomputed from x
               gV[ξ] = gM[ξ] @ U[ξ]ᵀ         (T, 16, C)
               dXp = Σ_tiles B gV Bᵀ, dx = the interior of dXp
    and at the end dW = Gᵀ gU G.

The 16 products are one ``numpy.matmul`` over a stack of strided views ((T, 16, C) seen as
(16, T, C)), so each tile's 16 values stay together in memory for the transforms — they
write one contiguous (16, C) block per tile; in (16, T, C) order they wrote 16 streams at
once and ran 6× slower (128→128 @32×32, 8 images: 6.9 → 1.2 ms).

Buffers (kernels/workspace.py, shared by name with the other paths): V and gV in
"conv.cols"; the padded grid, then M or gM once the grid is done, then dXp in "conv.xpad";
the output rows in "conv.out". A fourth buffer for M held 7 MB more at the peak of the
width-0.25 step (91 MB without the Winograd path, 98 with a buffer of its own).
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from ..kernels import shifted, winograd
from ..kernels.workspace import even_chunks, scratch_like

WINOGRAD = True
"""Take 3×3 stride-1 layers with at least ``MIN_CHANNELS`` input channels and an even output
by F(2×2, 3×3) on NumPy arrays (see ``uses``); False keeps im2col / the shifted products."""

MIN_CHANNELS = 128
"""Fewest input channels for the Winograd path: its 16 products have depth C, which thin
layers run badly. Measured with the final kernels (2 cores, load < 1, batch 50, forward /
backward ms, median of 5; the layer's other path in brackets): 32→32 @32×32 15.8 / 29.3
(shifted 10.1 / 23.4), 32→64 @16×16 6.8 / 9.8 (5.0 / 10.5), 64→64 @16×16 8.7 / 14.2
(7.3 / 16.4), 64→128 @8×8 3.6 / 6.7 (im2col 3.7 / 6.7), 128→128 @8×8 5.2 / 9.3 (6.8 /
12.8); the width-0.25 step (median of 15, alternating) 121.8 ms from 128 channels, 124.5
from 64, 126.3 without the path. Every layer of bc_cifar10 at width 1.0 but the first has
C ≥ 128."""

CHUNK_BYTES = 32 * 2**20
"""Bytes of V and M per chunk of images (16·(C + O) floats per tile, at least one image).
Measured (forward / backward ms, median of 5, the first version of the weight transform) at
8, 16, 32, 64, 128 MB: 128→128 @32×32
86 / 173, 77 / 146, 70 / 140, 76 / 152, 86 / 167; 256→256 @16×16 61 / 123, 53 / 106,
48 / 99, 52 / 101, 53 / 107; 512→512 @8×8 60 / 141, 50 / 121, 48 / 109, 46 / 106, 47 / 105."""


def uses(op, x, w) -> bool:
    """Whether ``op`` (a Conv2d) convolves x with w by the Winograd path (never under
    ``TINYPROJ_KERNELS=reference``, where im2col stays the definition, as for the shifted
    products)."""
    return (WINOGRAD and isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64)
            and w.shape[1] >= MIN_CHANNELS and kernels.mode() != "reference"
            and winograd.applies(x.shape, w.shape, op.stride, op.pad))


def chunks(x, w):
    """``(a, b)`` ranges of images whose V and M fit ``CHUNK_BYTES`` (near-equal chunks)."""
    n, _, h, wd = x.shape
    o, c = w.shape[:2]
    per_image = 4 * h * wd * (c + o) * x.dtype.itemsize     # 16 values per 2×2 block
    return even_chunks(n, CHUNK_BYTES // per_image)


def _tiles(x, op):
    """Tiles of the images x: (T, OH, OW)."""
    oh, ow = x.shape[2] + 2 * op.pad[0] - 2, x.shape[3] + 2 * op.pad[1] - 2
    return x.shape[0] * (oh // 2) * (ow // 2), oh, ow


def forward(op, x, w, y):
    """Fill y (through ``op._take_rows``) with conv2d(x, w), chunk by chunk."""
    ut = winograd.weight_transform(w)                                    # (16, O, C): U[ξ]ᵀ
    o, c = w.shape[:2]
    for a, b in chunks(x, w):
        t, oh, ow = _tiles(x[a:b], op)
        _, grid = _grid(op, x[a:b])
        v = winograd.input_transform(grid, scratch_like("conv.cols", (t, 16, c), x))
        m = scratch_like("conv.xpad", (t, 16, o), x)                         # the grid is done
        products(v.transpose(1, 0, 2), ut.transpose(0, 2, 1),               # M[ξ] = V[ξ] U[ξ]
                 out=m.transpose(1, 0, 2))
        rows = scratch_like("conv.out", ((b - a) * oh * ow, o), x)
        rows4 = winograd.output_transform(m, rows.reshape(b - a, oh, ow, o))
        op._take_rows(rows4.transpose(0, 3, 1, 2), y, a, b)


def backward(op, gy, x, w, need_x, need_w):
    """(dx or None, dW or None) of conv2d(x, w) given ∂L/∂y (through ``op._give_rows``)."""
    ut = winograd.weight_transform(w)                                    # (16, O, C): U[ξ]ᵀ
    o, c = w.shape[:2]
    gx = np.empty(x.shape, dtype=gy.dtype) if need_x else None
    gut = np.zeros((16, o, c), dtype=gy.dtype) if need_w else None      # gU[ξ]ᵀ
    for a, b in chunks(x, w):
        t, oh, ow = _tiles(x[a:b], op)
        buf = scratch_like("conv.cols", (t, 16, c), gy)                      # V, then gV
        if need_w:
            _, grid = _grid(op, x[a:b])
            v = winograd.input_transform(grid, buf)
        rows = scratch_like("conv.out", ((b - a) * oh * ow, o), gy)
        rows4 = rows.reshape(b - a, oh, ow, o)
        op._give_rows(gy, rows4.transpose(0, 3, 1, 2), a, b)
        gm = winograd.output_transform_adjoint(rows4, scratch_like("conv.xpad", (t, 16, o), gy))
        gms = gm.transpose(1, 0, 2)                                      # (16, T, O)
        if need_w:
            gut += products(gms.transpose(0, 2, 1), v.transpose(1, 0, 2))  # Σ_t gM[ξ]ᵀ V[ξ]
        if need_x:
            products(gms, ut, out=buf.transpose(1, 0, 2))               # gV[ξ] = gM[ξ] U[ξ]ᵀ
            padded, grid = _grid(op, x[a:b], fill=False)                # gM is done
            winograd.input_transform_adjoint(buf, grid)
            shifted.unpad_rows(padded, x[a:b].shape, op.pad, out=gx[a:b])
    gw = winograd.weight_transform_adjoint(gut) if need_w else None
    return gx, gw


def products(a, b, out=None):
    """The 16 products a[ξ] @ b[ξ] over a stack (one BLAS call each, through NumPy; a
    function of its own so that benchmarks/step_profile.py can time them)."""
    return np.matmul(a, b, out=out)


def _grid(op, x, fill=True):
    """The padded channels-last grid (B, H2, W2, C) of the images x in a scratch buffer, with
    the (B·H2·W2 + tail, C) rows it is a view of: x copied in (``fill``) or uninitialised
    (for dXp, which the adjoint overwrites)."""
    b, c = x.shape[:2]
    h2, w2, _, _, m, tail = shifted.grid(x.shape, 3, 3, op.pad)
    rows = scratch_like("conv.xpad", (m + tail, c), x)
    if fill:
        shifted.pad_rows(x, op.pad, out=rows)
    return rows, rows[:m].reshape(b, h2, w2, c)
