"""The CPU convolution's shifted products: thin stride-1 layers with no column matrix.

Thin stride-1 layers (16 ≤ C, O ≤ 64: conv2–4 of bc_cifar10 at width 0.25) skip the
columns altogether in forward and for dx: x is copied once into padded channels-last rows,
and each tap (i, j) of the kernel is one product of a shifted block of those rows with W_ij
(kernels/shifted.py has the formulas and the BLAS call). dW still unfolds x (its shifted
form measured no faster). ``Conv2d`` (functional/conv.py) calls these functions with itself
as ``op``; the products come out as rows (B·H2·W2, O), the layout its ``_take_rows`` and the
max-pool fusion (functional/conv_pool.py) read.
"""
from __future__ import annotations

import numpy as np

from ..kernels import shifted
from ..kernels.workspace import even_chunks, scratch_like

SHIFTED = True
"""Convolve thin stride-1 layers (``SHIFT_MIN_C`` ≤ C, O ≤ ``SHIFT_MAX_O``) by shifted
products over a padded channels-last copy of x, with no column matrix and no col2im
(kernels/shifted.py): forward and dx; dW keeps im2col (the shifted form of its product,
depth B·H2·W2 for a (C, O) result, measured no faster). Measured on one thread (shared
machine, fastest of 7), bc_cifar10 width 0.25, batch 50, ms:

    layer            forward: im2col+product  shifted     dx: product+col2im  shifted
    32→32 @32×32                      16.4       12.3                  29.4      12.3
    32→64 @16×16                       6.6        5.7                   8.5       5.9
    64→64 @16×16                      14.6       10.6                  19.6      10.9
    64→128 @8×8                        5.6        5.5                   5.3       6.0
    128→128 @8×8                      12.0       10.3                  11.2      10.5
    3→32 @32×32                        3.2        5.1        (no dx: the first layer)

and at width 1.0 no clear gain (128→128 @32×32 165 → 137–154 ms CPU, 256→512 @8×8
58 → 78 ms): hence the bounds (with SHIFT_MAX_O = 128, conv5 and conv6 too, the width-0.25
step took 209.0 ms against 207.9, one thread, median of 9; and forward in longer chunks,
up to 2, 8 or 32 MB of rows and products instead of the im2col chunks: 197.8, 196.2,
197.0 ms — no gain, so the chunks stay those of im2col). dW by shifted products,
(C × B·H2·W2) @ (B·H2·W2 × O) per tap: 32→32 15.8 → 16.8–17.8 ms, 64→64 12.9 → 12.1–18.6,
128→128 10.9 → 11.7–12.0."""

SHIFT_MIN_C = 16
SHIFT_MAX_O = 64
SHIFT_CHUNK_BYTES = 8 * 2**20
"""Bytes of padded rows and products per chunk of the shifted forward (``chunks``):
fewer, longer products than the im2col chunks — the whole batch of conv3, two chunks of
conv2 and conv4 at width 0.25 — which two threads share better. Measured on a quiet
machine (load ~1.2, 2 threads, width-0.25 step, 11 alternating turns, median wall ms):
150.2 with the im2col chunks (about 2 MB), 141.6 with 8 MB, 143.0 with 32 MB, and again
149.2 (2 MB), 145.2 (4 MB), 140.5 (8 MB); on one thread no difference (197.8 / 196.2 /
197.0 ms CPU). The rows and products live in the columns' scratch buffer, idle in this
forward: in buffers of their own the peak of the step rose 88 → 96 MB, shared it is 90 MB.
dx (backward) keeps the im2col chunks: in 8 MB chunks too, over gY laid out for the whole
batch, it gained ~1.6 ms more but held 14 MB more (peak 88 → 102 MB)."""


def taps(op, x, w):
    """w as (kh, kw, C, O), one (C, O) matrix per tap, when ``op`` (a Conv2d taking its
    products in the rows layout) convolves x by shifted products (see ``SHIFTED``); else
    None."""
    c, o = w.shape[1], w.shape[0]
    if not (SHIFTED and isinstance(x, np.ndarray) and op.stride == (1, 1) and c >= SHIFT_MIN_C
            and o <= SHIFT_MAX_O and x.dtype in (np.float32, np.float64)
            and shifted.available()):
        return None
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def chunks(op, x, taps):
    """``(a, b)`` ranges of images whose padded rows and products (C + O floats per pixel
    of the padded grid) fit ``SHIFT_CHUNK_BYTES`` (at least one image; near-equal
    chunks, as ``Conv2d._chunks``)."""
    kh, kw, c, o = taps.shape
    h2, w2 = x.shape[2] + 2 * op.pad[0], x.shape[3] + 2 * op.pad[1]
    per_image = h2 * w2 * (c + o) * x.dtype.itemsize
    return even_chunks(x.shape[0], SHIFT_CHUNK_BYTES // per_image)


def forward(op, x, taps, oh, ow):
    """Y = Σ_ij Xp[m + i·W2 + j] @ W_ij for images x (B, C, H, W); returns Y seen as
    (B, O, OH, OW) (a view of a scratch buffer)."""
    kh, kw, c, o = taps.shape
    h2, w2, _, _, m, tail = shifted.grid(x.shape, kh, kw, op.pad)
    # both in the columns' buffer, idle here (no columns in this forward): a larger
    # chunk without a larger peak (measured: 96 MB with buffers of their own, 88 shared)
    both = scratch_like("conv.cols", ((m + tail) * c + m * o,), x)
    rows = shifted.pad_rows(x, op.pad, out=both[:(m + tail) * c].reshape(m + tail, c))
    Y = both[(m + tail) * c:].reshape(m, o)                              # (B·H2·W2, O)
    for t in range(kh * kw):
        i, j = divmod(t, kw)
        shifted.gemm(rows[i * w2 + j:i * w2 + j + m], taps[i, j], Y, accumulate=t > 0)
    return Y.reshape(x.shape[0], h2, w2, o)[:, :oh, :ow].transpose(0, 3, 1, 2)


def dx(op, gYt, taps, x_shape, out):
    """dx of images (x_shape) from their gYt (B·L, O): gY on the padded grid (zero on
    the spare rows), dXp[m + i·W2 + j] += gY[m] @ W_ijᵀ, dx = the interior of dXp."""
    kh, kw, c, o = taps.shape
    h2, w2, oh, ow, m, tail = shifted.grid(x_shape, kh, kw, op.pad)
    g = scratch_like("conv.ext", (m, o), gYt)
    g4 = g.reshape(x_shape[0], h2, w2, o)
    g4[:, :oh, :ow] = gYt.reshape(x_shape[0], oh, ow, o)
    g4[:, oh:] = 0
    g4[:, :oh, ow:] = 0
    dxp = scratch_like("conv.xpad", (m + tail, c), gYt)
    dxp[m:] = 0                                   # tap (0, 0) writes rows 0..m-1 whole
    for t in range(kh * kw):
        i, j = divmod(t, kw)
        shifted.gemm(g, taps[i, j].T, dxp[i * w2 + j:i * w2 + j + m], accumulate=t > 0)
    shifted.unpad_rows(dxp, x_shape, op.pad, out=out)
