"""Reference kernels: im2col / col2im, max pooling, batch norm, Adam, Sign — plain array code.

They are the readable definition of what the fast kernels compute and the
oracle for their tests. The same code runs on NumPy and CuPy: it uses only
slicing, ``zeros``, ``pad``, ``argmax`` and ``take_along_axis``. The random
kernels (Philox, Stoch, StochM, the noise) are in reference_random.py and
imported here, so that every kernel name is found in this module.

Shapes (cs231n style)
    x     : (N, C, H, W)                      images, channels first
    cols  : (N, C·kh·kw, OH·OW)               one column per output pixel
    OH    = (H + 2·pad_h − kh) // stride + 1  (same for OW)

Convolution as one matrix product (see functional/conv.py). Two layouts of the same columns:

    im2col        cols (N, K, L)     one (K, L) block per image:  y[n] = W_mat @ cols[n]
    im2col_batch  cols (K, N·L)      the images side by side:     Y = W_mat @ cols  (O, N·L)

with K = C·kh·kw, L = OH·OW and W_mat = W.reshape(O, K). The batch layout feeds one large
matrix product for the whole minibatch, straight from memory (no transposed copy), which a
BLAS runs near its peak; the per-image layout is the one to draw on paper (lesson 02).

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
from .geometry import out_hw, out_size  # window arithmetic: geometry.py (no arrays there)
# Philox and the stochastic kernels live in reference_random.py; named here with the others
from .reference_random import (gaussian_noise, normal_fill, philox_normal_pair, philox_uniform,
                               philox_words, stoch_projection_segments,
                               stochm_projection_segments, uniform_fill)


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


def _pad(x, pad, value=0.0):
    """x (N, C, H, W) with ``pad`` = (ph, pw) rows and columns of ``value`` added on each side."""
    ph, pw = pad
    if ph == 0 and pw == 0:
        return x
    xp = backend.xp_of(x)
    return xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode="constant", constant_values=value)


def _taps(xpad, kh, kw, stride, oh, ow):
    """Yield ``(i, j, tap)`` for every kernel offset (i, j) of a kh×kw window.

    ``tap`` is the strided slice ``xpad[:, :, i::sh, j::sw]`` cut to OH×OW, (N, C, OH, OW): the
    pixel under kernel tap (i, j) for every output position at once. It is a view, so
    ``tap += v`` adds v into ``xpad``.
    """
    sh, sw = stride
    for i in range(kh):
        for j in range(kw):
            yield i, j, xpad[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw]


def _add_taps(tap_value, like, x_shape, kh, kw, stride, pad, oh, ow):
    """The adjoint of reading taps: add ``tap_value(i, j)`` (N, C, OH, OW) onto the pixels
    under kernel tap (i, j), on a zero-padded grid, and return it with the padding cut off.

    Each offset writes a strided slice, so within one ``+=`` no pixel is written twice;
    where windows overlap, the offsets add up. The grid has the backend and dtype of
    ``like``; x_shape = (N, C, H, W).
    """
    ph, pw = pad
    n, c, h, w = x_shape
    xpad = backend.xp_of(like).zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=like.dtype)
    for i, j, tap in _taps(xpad, kh, kw, stride, oh, ow):
        tap += tap_value(i, j)
    return xpad[:, :, ph:ph + h, pw:pw + w]


def _into(out, a):
    """``a`` written into ``out`` (then returned), or ``a`` itself when out is None."""
    if out is None:
        return a
    out[...] = a
    return out


def im2col(x, kh, kw, stride=(1, 1), pad=(0, 0), pad_value=0.0):
    """Unfold every kh×kw patch of x into a column.

    x : (N, C, H, W)  →  cols : (N, C·kh·kw, OH·OW), ordered (c, i, j) down a column,
    matching ``W.reshape(O, C·kh·kw)``.

    The loop runs over the kh·kw kernel offsets, not over pixels: for offset
    (i, j) the strided slice ``x[:, :, i::sh, j::sw]`` (cut to OH×OW) holds the
    pixel under that kernel tap for every output position at once.
    """
    n, c, h, w = x.shape
    oh, ow = out_hw(h, w, kh, kw, stride, pad)
    cols = backend.xp_of(x).empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i, j, tap in _taps(_pad(x, pad, pad_value), kh, kw, stride, oh, ow):
        cols[:, :, i, j] = tap
    return cols.reshape(n, c * kh * kw, oh * ow)


def col2im(cols, x_shape, kh, kw, stride=(1, 1), pad=(0, 0)):
    """The adjoint of im2col: add every column entry back onto the pixel it came from.

    cols : (N, C·kh·kw, OH·OW)  →  (N, C, H, W).  For all x, y:
    ⟨col2im(y), x⟩ = ⟨y, im2col(x)⟩, which is exactly what the backward pass of
    a convolution needs (overlapping patches add up). Each kernel offset writes
    a strided slice, so within one ``+=`` no pixel is written twice.
    """
    n, c, h, w = x_shape
    oh, ow = out_hw(h, w, kh, kw, stride, pad)
    cols = cols.reshape(n, c, kh, kw, oh, ow)
    return _add_taps(lambda i, j: cols[:, :, i, j], cols, x_shape, kh, kw, stride, pad, oh, ow)


def im2col_batch(x, kh, kw, stride=(1, 1), pad=(0, 0), pad_value=0.0, out=None):
    """im2col with the images side by side: x (N, C, H, W) → cols (C·kh·kw, N·OH·OW).

    Column n·L + l is the patch under output pixel l of image n, ordered (c, i, j) down the
    column like ``W.reshape(O, C·kh·kw)``; so ``W_mat @ cols`` is the convolution of the whole
    batch as (O, N·L). Same entries as ``im2col(x)`` with its first two axes swapped.
    out: an array of the result's shape to fill instead of allocating one.
    """
    n, c, h, w = x.shape
    oh, ow = out_hw(h, w, kh, kw, stride, pad)
    xp = backend.xp_of(x)
    cols = xp.empty((c * kh * kw, n * oh * ow), dtype=x.dtype) if out is None else out
    cols6 = cols.reshape(c, kh, kw, n, oh, ow)                          # a view of cols
    for i, j, tap in _taps(_pad(x, pad, pad_value), kh, kw, stride, oh, ow):
        cols6[:, i, j] = tap.transpose(1, 0, 2, 3)                      # (C, N, OH, OW)
    return cols


def col2im_batch(cols, x_shape, kh, kw, stride=(1, 1), pad=(0, 0), out=None):
    """The adjoint of ``im2col_batch``: cols (C·kh·kw, N·OH·OW) → (N, C, H, W).

    out: an (N, C, H, W) array to write the result into instead of allocating one.
    """
    n, c, h, w = x_shape
    oh, ow = out_hw(h, w, kh, kw, stride, pad)
    cols = cols.reshape(c, kh, kw, n, oh, ow)
    gx = _add_taps(lambda i, j: cols[:, i, j].transpose(1, 0, 2, 3), cols, x_shape, kh, kw,
                   stride, pad, oh, ow)
    return _into(out, gx)


def swap01(a, out=None):
    """A contiguous copy of ``a`` (P, Q, R) with its first two axes swapped: (Q, P, R).

    The convolution's product comes out as (O, N, L) and the network wants (N, O, L); the
    backward pass needs the opposite. R is contiguous in both, so this is a copy of rows.
    out: a (Q, P, R) array to write into instead of allocating one.
    """
    if out is None:
        return backend.xp_of(a).ascontiguousarray(a.transpose(1, 0, 2))
    out[...] = a.transpose(1, 0, 2)
    return out


def maxpool_forward(x, kh, kw, stride, pad=(0, 0), out=None):
    """Max over each kh×kw window (windows may overlap, e.g. 3×3 stride 2).

    x : (N, C, H, W) → y : (N, C, OH, OW) and ``argmax`` : (N, C, OH, OW), the
    index i·kw + j of the winning tap in each window (the first one on ties),
    which is all the backward pass needs. Padding counts as −∞.
    out: ``(y, argmax)`` arrays to write into (then returned), or None.
    """
    n, c, h, w = x.shape
    sh, sw = stride
    oh, ow = out_size(h, kh, sh, pad[0]), out_size(w, kw, sw, pad[1])
    xp = backend.xp_of(x)
    windows = im2col(x, kh, kw, stride, pad, pad_value=-xp.inf)
    windows = windows.reshape(n, c, kh * kw, oh, ow)
    argmax = windows.argmax(axis=2)
    y = xp.take_along_axis(windows, argmax[:, :, None], axis=2)[:, :, 0]
    if out is not None:
        out[0][...], out[1][...] = y, argmax
        return out
    return y, argmax


def maxpool_backward(gy, argmax, x_shape, kh, kw, stride, pad=(0, 0), out=None):
    """Send each output's gradient to the input pixel that won its window.

    gy, argmax : (N, C, OH, OW) → gx : (N, C, H, W). Where windows overlap, a
    pixel that wins several windows collects the sum of their gradients.
    out: an array (or view) of shape x_shape to write gx into (then returned), or None.
    """
    oh, ow = gy.shape[2], gy.shape[3]
    gx = _add_taps(lambda i, j: gy * (argmax == i * kw + j), gy, x_shape, kh, kw, stride, pad,
                   oh, ow)
    return _into(out, gx)


# ---------------------------------------------------------------------------
# Batch norm (the formulas are in functional/normalization.py)
# ---------------------------------------------------------------------------
def batchnorm_forward(x, mean, var, eps, gamma=None, beta=None, training=True):
    """Normalize x (N, C) or (N, C, H, W) per channel: y = γ·x̂ + β, x̂ = (x − μ)/√(σ² + eps).

    training=True: μ and σ² (biased) are the batch statistics over N (and H, W), and the
    ``mean``, ``var`` arguments are ignored; training=False: μ, σ² = ``mean``, ``var``.
    gamma, beta: arrays (C,) or None (scale 1, shift 0).
    Returns ``(y, mean, var, inv_std)``: mean, var and inv_std = 1/√(σ² + eps) are (C,).
    x̂ itself is not returned: backward recomputes it from x, mean and inv_std, so a
    network keeps one activation-sized array less per batch-norm layer.
    """
    xp = backend.xp_of(x)
    axes, shape = _bn_axes(x)
    if training:
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)
    inv_std = (1.0 / xp.sqrt(var + eps)).astype(x.dtype)
    xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
    y = xhat if gamma is None else xhat * gamma.reshape(shape)
    y = y if beta is None else y + beta.reshape(shape)
    return y, mean, var, inv_std


def batchnorm_backward(gy, x, mean, inv_std, gamma=None, training=True):
    """Gradients of batch norm: ``(gx, ggamma, gbeta)`` with ggamma = Σ gy·x̂, gbeta = Σ gy.

    x̂ = (x − μ)·inv_std is recomputed from the input x and the (C,) arrays mean, inv_std
    that the forward pass returned. training=True (m values per channel, ĝ = gy·γ)::

        gx = (1/m) · inv_std · (m·ĝ − Σĝ − x̂·Σ(ĝ·x̂))

    training=False (fixed statistics): gx = ĝ · inv_std.
    """
    axes, shape = _bn_axes(gy)
    xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
    ggamma = (gy * xhat).sum(axis=axes)
    gbeta = gy.sum(axis=axes)
    gxhat = gy if gamma is None else gy * gamma.reshape(shape)
    inv_std = inv_std.reshape(shape)
    if training:
        m = gy.size // gy.shape[1]
        gx = (inv_std / m) * (m * gxhat - gxhat.sum(axis=axes, keepdims=True)
                              - xhat * (gxhat * xhat).sum(axis=axes, keepdims=True))
    else:
        gx = gxhat * inv_std
    return gx, ggamma, gbeta


def _bn_axes(x):
    """The axes batch norm sums over, and the shape that broadcasts a (C,) array against x."""
    c = x.shape[1]
    return ((0,), (1, c)) if x.ndim == 2 else ((0, 2, 3), (1, c, 1, 1))


# ---------------------------------------------------------------------------
# Adam's update and the Sign projection (the formulas are in optim/adam.py and Table 1)
# ---------------------------------------------------------------------------
def adam_update(w, g, m, v, lr, beta1, beta2, eps, t):
    """One Adam step in place on the arrays w, m, v (same shape) with gradient g, at step t::

        m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²
        w ← w − lr · (m / (1 − β1^t)) / (√(v / (1 − β2^t)) + eps)
    """
    xp = backend.xp_of(w)
    m *= beta1
    m += (1.0 - beta1) * g
    v *= beta2
    v += (1.0 - beta2) * (g * g)
    m_hat = m / (1.0 - beta1 ** t)
    v_hat = v / (1.0 - beta2 ** t)
    w -= lr * m_hat / (xp.sqrt(v_hat) + eps)


def sign_projection(w):
    """α·sign(w) with sign(0) = +1 and α = max|w| over the whole tensor (Table 1's Sign).

    A new array of w's shape and dtype; an all-zero (or empty) tensor maps to zeros.
    """
    xp = backend.xp_of(w)
    alpha = xp.max(xp.abs(w)) if w.size else xp.zeros((), dtype=w.dtype)
    return xp.where(w >= 0, alpha, -alpha).astype(w.dtype, copy=False)


# ---------------------------------------------------------------------------
# Fused versions (issue 11: fewer launches on a GPU; issue 15: fewer passes on the CPU).
# Each is the plain composition of the ops it fuses: the fast kernels must match it.
# ---------------------------------------------------------------------------
def batchnorm_forward_fused(x, mean, var, eps, gamma=None, beta=None, training=True, relu=False,
                            running_mean=None, running_var=None, momentum=0.0, tracked=None):
    """``batchnorm_forward``, then the bookkeeping a training batch-norm layer does, then ReLU.

    training and running_mean/running_var given (C,): updated in place (PyTorch's convention,
    m values per channel, the running variance unbiased)::

        running_mean ← running_mean·(1 − momentum) + momentum·μ
        running_var  ← running_var·(1 − momentum) + momentum·σ²·m/(m − 1)

    tracked: a 0-d int64 array (the layer's batch counter), raised by one. relu=True: the
    output is y·[y > 0] (functional ReLU's formula). Returns ``(y, mean, var, inv_std)``.
    """
    y, mean, var, inv_std = batchnorm_forward(x, mean, var, eps, gamma, beta, training)
    if training and running_mean is not None:
        m = x.size // x.shape[1]
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += momentum * var * (m / (m - 1))
    if tracked is not None:
        tracked += 1
    if relu:
        y = y * (y > 0)
    return y, mean, var, inv_std


def batchnorm_backward_fused(gy, x, mean, inv_std, gamma=None, training=True, relu_out=None,
                             out=None):
    """``batchnorm_backward`` behind an optional fused ReLU whose output was ``relu_out``:
    the gradient reaching the batch norm is gy·[relu_out > 0] (ReLU's backward).

    out: None, or (ggamma_out, gbeta_out), (C,) arrays (either may be None) to write ggamma
    and gbeta into (an optimizer's gradient slots); they are then returned.
    """
    if relu_out is not None:
        gy = gy * (relu_out > 0)
    gx, ggamma, gbeta = batchnorm_backward(gy, x, mean, inv_std, gamma, training)
    if out is not None:
        if out[0] is not None:
            out[0][...] = ggamma
            ggamma = out[0]
        if out[1] is not None:
            out[1][...] = gbeta
            gbeta = out[1]
    return gx, ggamma, gbeta


def sgd_update(w, g, buf, lr, momentum=0.0, weight_decay=0.0, nesterov=False, first=False):
    """One SGD step in place on w (and the momentum buffer ``buf``), PyTorch's convention::

        g ← g + wd·w;  buf ← g (first step) or momentum·buf + g;
        g ← g + momentum·buf (nesterov) or buf;  w ← w − lr·g

    momentum 0: plain ``w ← w − lr·g`` (buf untouched, may be None).
    """
    if weight_decay:
        g = g + weight_decay * w
    if momentum:
        if first:
            buf[...] = g
        else:
            buf *= momentum
            buf += g
        g = g + momentum * buf if nesterov else buf
    w -= lr * g


def segment_slices(offsets):
    """(start, stop) of each tensor of a flat buffer (offsets on the host or, read back with
    an explicit sync, on a device: this is the readable path, not the counted one)."""
    bounds = [int(o) for o in backend.to_numpy(offsets)]
    return list(zip(bounds[:-1], bounds[1:]))


def sign_projection_segments(w, offsets, pieces=None):
    """Sign of every tensor of a flat buffer, each with its own α = max|w_s|.

    w: (P,) the tensors side by side; offsets: (S + 1,) int64 on the host, rising from 0 to
    P (tensor s = w[offsets[s]:offsets[s + 1]]). A new (P,) array.
    pieces: (fine, firsts) of ``kernels.pieces.tables`` — how a GPU splits the reduction for
    α; the result does not depend on it (a max is exact in any order), so it is not used here.
    """
    xp = backend.xp_of(w)
    out = xp.empty_like(w)
    for a, b in segment_slices(offsets):
        if b > a:
            out[a:b] = sign_projection(w[a:b])
    return out


def clip_segments(v, offsets, bounds, out=None):
    """Clip tensor s of a flat buffer to [−bounds[s], bounds[s]] (inf: untouched); out may be v.

    offsets and bounds are host arrays or lists (this is the readable version: one slice per
    tensor); the result is max(min(v, c), −c) as ``clipping.prox_linf``.
    """
    xp = backend.xp_of(v)
    out = v.copy() if out is None else out
    for (a, b), c in zip(segment_slices(offsets), backend.to_numpy(bounds)):
        c = float(c)
        if b > a and c != float("inf"):
            xp.clip(v[a:b], -c, c, out=out[a:b])
        elif out is not v:
            out[a:b] = v[a:b]
    return out
