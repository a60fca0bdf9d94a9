"""Reference kernels: im2col / col2im and max pooling, written with array slicing.

They are the readable definition of what the fast kernels compute and the
oracle for their tests. The same code runs on NumPy and CuPy: it uses only
slicing, ``zeros``, ``pad``, ``argmax`` and ``take_along_axis``.

Shapes (cs231n style)
    x     : (N, C, H, W)                      images, channels first
    cols  : (N, C·kh·kw, OH·OW)               one column per output pixel
    OH    = (H + 2·pad_h − kh) // stride + 1  (same for OW)

Convolution as one matrix product (see functional/conv.py)::

    y[n] = W.reshape(O, C·kh·kw) @ cols[n]          # (O, OH·OW) per image

Memory bill of the columns. Every input pixel is copied once for each kernel
position that covers it, so ``cols`` holds N·C·kh·kw·OH·OW numbers — kh·kw
times the input. For the 128→128 3×3 convolution of the BinaryConnect
network at 32×32 with padding 1 and a batch of 50, that is
50 · 128·9 · 32·32 = 58,982,400 float32 values = 235.9 MB (the input itself
is 26.2 MB). The columns live from the forward pass until the weight gradient
has been computed in the backward pass, and no longer (functional/conv.py).
"""
from __future__ import annotations

from .. import backend


def out_size(size: int, k: int, stride: int, pad: int) -> int:
    """Output length along one axis: floor((size + 2·pad − k) / stride) + 1."""
    return (size + 2 * pad - k) // stride + 1


def cols_nbytes(x_shape, kh: int, kw: int, stride=(1, 1), pad=(0, 0), itemsize: int = 4) -> int:
    """Bytes that ``im2col`` allocates for an input of ``x_shape`` = (N, C, H, W).

    N · C·kh·kw · OH·OW · itemsize. For the 128→128 3×3 layer of BinaryConnect at
    32×32, padding 1, batch 50, float32: 50 · 1152 · 1024 · 4 = 235,929,600 bytes.
    ``stride`` and ``pad`` are ints or (vertical, horizontal) pairs.
    """
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (pad, pad) if isinstance(pad, int) else pad
    n, c, h, w = x_shape
    return n * c * kh * kw * out_size(h, kh, sh, ph) * out_size(w, kw, sw, pw) * itemsize


def _pad(x, ph, pw, value=0.0):
    if ph == 0 and pw == 0:
        return x
    xp = backend.xp_of(x)
    return xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode="constant", constant_values=value)


def im2col(x, kh, kw, stride=(1, 1), pad=(0, 0), pad_value=0.0):
    """Unfold every kh×kw patch of x into a column.

    x : (N, C, H, W)  →  cols : (N, C·kh·kw, OH·OW), ordered (c, i, j) down a column,
    matching ``W.reshape(O, C·kh·kw)``.

    The loop runs over the kh·kw kernel offsets, not over pixels: for offset
    (i, j) the strided slice ``x[:, :, i::sh, j::sw]`` (cut to OH×OW) holds the
    pixel under that kernel tap for every output position at once.
    """
    sh, sw = stride
    ph, pw = pad
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    xpad = _pad(x, ph, pw, pad_value)
    xp = backend.xp_of(x)
    cols = xp.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xpad[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw]
    return cols.reshape(n, c * kh * kw, oh * ow)


def col2im(cols, x_shape, kh, kw, stride=(1, 1), pad=(0, 0)):
    """The adjoint of im2col: add every column entry back onto the pixel it came from.

    cols : (N, C·kh·kw, OH·OW)  →  (N, C, H, W).  For all x, y:
    ⟨col2im(y), x⟩ = ⟨y, im2col(x)⟩, which is exactly what the backward pass of
    a convolution needs (overlapping patches add up). Each kernel offset writes
    a strided slice, so within one ``+=`` no pixel is written twice.
    """
    sh, sw = stride
    ph, pw = pad
    n, c, h, w = x_shape
    oh, ow = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    xp = backend.xp_of(cols)
    cols = cols.reshape(n, c, kh, kw, oh, ow)
    xpad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xpad[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += cols[:, :, i, j]
    return xpad[:, :, ph:ph + h, pw:pw + w]


def maxpool_forward(x, kh, kw, stride, pad=(0, 0)):
    """Max over each kh×kw window (windows may overlap, e.g. 3×3 stride 2).

    x : (N, C, H, W) → y : (N, C, OH, OW) and ``argmax`` : (N, C, OH, OW), the
    index i·kw + j of the winning tap in each window (the first one on ties),
    which is all the backward pass needs. Padding counts as −∞.
    """
    n, c, h, w = x.shape
    sh, sw = stride
    oh, ow = out_size(h, kh, sh, pad[0]), out_size(w, kw, sw, pad[1])
    xp = backend.xp_of(x)
    windows = im2col(x, kh, kw, stride, pad, pad_value=-xp.inf)
    windows = windows.reshape(n, c, kh * kw, oh, ow)
    argmax = windows.argmax(axis=2)
    y = xp.take_along_axis(windows, argmax[:, :, None], axis=2)[:, :, 0]
    return y, argmax


def maxpool_backward(gy, argmax, x_shape, kh, kw, stride, pad=(0, 0)):
    """Send each output's gradient to the input pixel that won its window.

    gy, argmax : (N, C, OH, OW) → gx : (N, C, H, W). Where windows overlap, a
    pixel that wins several windows collects the sum of their gradients.
    """
    sh, sw = stride
    ph, pw = pad
    n, c, h, w = x_shape
    oh, ow = gy.shape[2], gy.shape[3]
    xp = backend.xp_of(gy)
    gpad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=gy.dtype)
    for i in range(kh):
        for j in range(kw):
            won = argmax == i * kw + j
            gpad[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += gy * won
    return gpad[:, :, ph:ph + h, pw:pw + w]
