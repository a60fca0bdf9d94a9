"""CUDA kernels for CuPy arrays: the sources in kernels/cuda/, loaded with ``cupy.RawModule``.

One launch per op, grid and block computed from the sizes, no host syncs (nothing here reads
a device value on the host), results in fixed order (no atomics). The per-element arithmetic
is in the ``__host__ __device__`` functions of kernels/cuda/*.cuh, which kernels/host.py also
builds for the CPU: tests/test_kernels_gpu_host.py checks it against reference.py without a
GPU, and tests/test_kernels_ptx.py compiles every kernel below for sm_90 where nvcc exists.

Launches per call: im2col_batch, col2im_batch, maxpool_forward, maxpool_backward,
batchnorm_forward (with its running statistics, batch counter and the ReLU after it),
batchnorm_backward (γ's and β's gradients written straight into the optimizer's slots),
adam_update and sgd_update (every parameter at once: optim/flat.py keeps them in one flat
buffer), clip_segments (every layer), gaussian_noise, uniform_fill, normal_fill: 1 each;
sign_projection, sign/stoch/stochm_projection_segments (every layer): 2 (α per tensor, then
the map; α stays on the device). Plus a copy where an input is not C-contiguous, or an
argmax/statistic of another dtype.

Reading order for a student: a .cuh file (the arithmetic), its .cu file (which thread does
which element), then the function of the same name here (shapes, grid and block).

CuPy is imported on first use only, so this module imports on any machine.
"""
from __future__ import annotations

import numpy as np

from . import cuda
from .geometry import out_size

OPTIONS = ("--fmad=false",)                # no fused multiply-adds: the host build's bits
THREADS = 256                               # threads per block of the element-wise kernels
MAX_BLOCKS = 65535                          # the kernels loop (grid-stride) over the rest
_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_ARGMAX = {np.dtype(np.int8): "signed char", np.dtype(np.int64): "long long"}

_modules = {}                               # .cu file name → cupy.RawModule


def name_expressions(family: str) -> list:
    """The template instances of ``family`` (a .cu file) that this module launches."""
    names = []
    for name, (file, _) in cuda.KERNELS.items():
        if file != family:
            continue
        for t in _CTYPES.values():
            if name.startswith("maxpool"):
                names += [f"{name}<{t}, {i}>" for i in _ARGMAX.values()]
            else:
                names.append(f"{name}<{t}>")
    return names


def _module(family: str):
    """The compiled RawModule of one .cu file (compiled on first use, then cached by CuPy)."""
    if family not in _modules:
        import cupy
        _modules[family] = cupy.RawModule(code=cuda.expanded(family), options=OPTIONS,
                                          name_expressions=name_expressions(family))
    return _modules[family]


def _launch(name: str, targs: str, grid: int, block: int, *args) -> None:
    """Launch ``name<targs>`` on ``grid`` blocks of ``block`` threads, arguments typed by
    cuda.KERNELS (p: a C-contiguous CuPy array; i: int64; t: the element type of targs)."""
    if grid <= 0:
        return                                  # nothing to compute (an empty array)
    family, kinds = cuda.KERNELS[name]
    scalar = np.float32 if targs.startswith("float") else np.float64
    typed = []
    for kind, arg in zip(kinds, args, strict=True):
        if kind == "i":
            typed.append(np.int64(arg))
        elif kind == "t":
            typed.append(scalar(arg))
        else:
            typed.append(arg)
    _module(family).get_function(f"{name}<{targs}>")((int(grid),), (int(block),), tuple(typed))


def _elementwise(name: str, targs: str, total: int, *args) -> None:
    """One thread per element (grid-stride beyond MAX_BLOCKS·THREADS elements)."""
    _launch(name, targs, min(-(-int(total) // THREADS), MAX_BLOCKS), THREADS, *args)


def _ctype(dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype not in _CTYPES:
        raise TypeError(f"GPU kernels: float32 or float64 arrays only, got {dtype}")
    return _CTYPES[dtype]


def _contiguous(a, dtype=None):
    import cupy
    return cupy.ascontiguousarray(a, dtype=dtype)


_out = cuda.checked_out                     # the kernels' argument rules, shared with host.py
_geometry = cuda.geometry_args


# ---------------------------------------------------------------------------
# im2col / col2im (conv.cu): reference.py's signatures and shapes
# ---------------------------------------------------------------------------
def im2col_batch(x, kh, kw, stride=(1, 1), pad=(0, 0), pad_value=0.0, out=None):
    """x (N, C, H, W) → cols (C·kh·kw, N·OH·OW), one thread per entry of cols."""
    import cupy
    x = _contiguous(x)
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, stride[0], pad[0]), out_size(w, kw, stride[1], pad[1])
    shape = (c * kh * kw, n * oh * ow)
    cols = cupy.empty(shape, dtype=x.dtype) if out is None else _out(out, shape, x.dtype)
    _elementwise("im2col_batch", _ctype(x.dtype), cols.size, x, cols,
                 *_geometry(x.shape, kh, kw, stride, pad), pad_value)
    return cols


def col2im_batch(cols, x_shape, kh, kw, stride=(1, 1), pad=(0, 0), out=None):
    """cols (C·kh·kw, N·OH·OW) → (N, C, H, W), one thread per pixel summing its taps in order."""
    import cupy
    cols = _contiguous(cols)
    result = (cupy.empty(tuple(x_shape), dtype=cols.dtype) if out is None
              else _out(out, x_shape, cols.dtype))
    _elementwise("col2im_batch", _ctype(cols.dtype), result.size, cols, result,
                 *_geometry(x_shape, kh, kw, stride, pad))
    return result


def swap01(a, out=None):
    """(P, Q, R) → a contiguous (Q, P, R): one copy kernel (CuPy's)."""
    if out is None:
        return _contiguous(a.transpose(1, 0, 2))
    out[...] = a.transpose(1, 0, 2)
    return out


def im2col(x, kh, kw, stride=(1, 1), pad=(0, 0), pad_value=0.0):
    """x (N, C, H, W) → (N, C·kh·kw, OH·OW): im2col_batch and swap01 (2 launches)."""
    cols = im2col_batch(x, kh, kw, stride, pad, pad_value)
    return swap01(cols.reshape(cols.shape[0], x.shape[0], -1))


def col2im(cols, x_shape, kh, kw, stride=(1, 1), pad=(0, 0)):
    """(N, C·kh·kw, OH·OW) → (N, C, H, W): swap01 and col2im_batch (2 launches)."""
    return col2im_batch(swap01(cols).reshape(cols.shape[1], -1), x_shape, kh, kw, stride, pad)


# ---------------------------------------------------------------------------
# Max pooling (pool.cu)
# ---------------------------------------------------------------------------
def maxpool_forward(x, kh, kw, stride, pad=(0, 0)):
    """x (N, C, H, W) → y, argmax (N, C, OH, OW); argmax int8 up to 127 taps, else int64."""
    import cupy
    x = _contiguous(x)
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, stride[0], pad[0]), out_size(w, kw, stride[1], pad[1])
    y = cupy.empty((n, c, oh, ow), dtype=x.dtype)
    argmax = cupy.empty((n, c, oh, ow), dtype=np.int8 if kh * kw <= 127 else np.int64)
    _elementwise("maxpool_forward", f"{_ctype(x.dtype)}, {_ARGMAX[argmax.dtype]}", y.size, x, y,
                 argmax, *_geometry(x.shape, kh, kw, stride, pad))
    return y, argmax


def maxpool_backward(gy, argmax, x_shape, kh, kw, stride, pad=(0, 0)):
    """gy, argmax (N, C, OH, OW) → gx (N, C, H, W), one thread per input pixel."""
    import cupy
    gy = _contiguous(gy)
    if np.dtype(argmax.dtype) not in _ARGMAX:
        argmax = argmax.astype(np.int64)
    argmax = _contiguous(argmax)
    gx = cupy.empty(tuple(x_shape), dtype=gy.dtype)
    _elementwise("maxpool_backward", f"{_ctype(gy.dtype)}, {_ARGMAX[np.dtype(argmax.dtype)]}",
                 gx.size, gy, argmax, gx, *_geometry(x_shape, kh, kw, stride, pad))
    return gx


# ---------------------------------------------------------------------------
# Batch norm (batchnorm.cu): one block of cuda.BLOCK threads per channel
# ---------------------------------------------------------------------------
def _ncl(shape):
    l = 1
    for s in shape[2:]:
        l *= int(s)
    return int(shape[0]), int(shape[1]), l


def _per_channel(a, dtype, placeholder):
    """(array, 1) for a given (C,) array in ``dtype``; (placeholder, 0) for None (never read)."""
    return (placeholder, 0) if a is None else (_contiguous(a, dtype), 1)


def batchnorm_forward(x, mean, var, eps, gamma=None, beta=None, training=True, relu=False,
                      running_mean=None, running_var=None, momentum=0.0, tracked=None):
    """(y, mean, var, inv_std); see ``reference.batchnorm_forward``. One launch.

    relu=True: y is also passed through the ReLU that follows (y·[y > 0]) in the same launch.
    running_mean, running_var (C,), training only: updated in place with ``momentum`` (see
    ``reference.batchnorm_forward_fused``); tracked: a 0-d int64 counter raised by one.
    """
    import cupy
    x = _contiguous(x)
    n, c, l = _ncl(x.shape)
    dt = x.dtype
    mean_in, _ = _per_channel(None if training else mean, dt, x)
    var_in, _ = _per_channel(None if training else var, dt, x)
    gamma_a, has_gamma = _per_channel(gamma, dt, x)
    beta_a, has_beta = _per_channel(beta, dt, x)
    y = cupy.empty_like(x)
    mean_out, var_out, inv_std = (cupy.empty(c, dtype=dt) for _ in range(3))
    run = bool(training) and running_mean is not None
    rmean = running_mean if run else mean_out                     # placeholders: never written
    rvar = running_var if run else var_out
    if not (rmean.flags.c_contiguous and rvar.flags.c_contiguous and rmean.dtype == dt
            and rvar.dtype == dt):
        raise ValueError("running statistics must be C-contiguous arrays of x's dtype")
    count = tracked if tracked is not None else mean_out           # never written when 0
    m = n * l
    ty = dt.type
    _launch("batchnorm_forward", _ctype(dt), c if n * l else 0, cuda.BLOCK, x, y, mean_in,
            var_in, gamma_a, beta_a, mean_out, var_out, inv_std, rmean, rvar, count, n, c, l,
            eps, int(bool(training)), has_gamma, has_beta, int(bool(relu)), ty(1.0 - momentum),
            ty(momentum), ty(m / (m - 1) if m > 1 else 1.0), int(run), int(tracked is not None))
    if not training:
        return y, mean, var, inv_std
    return y, mean_out, var_out, inv_std


def batchnorm_backward(gy, x, mean, inv_std, gamma=None, training=True, relu_out=None,
                       out=None):
    """(gx, ggamma, gbeta); see ``reference.batchnorm_backward``. One launch.

    relu_out: the y of ``batchnorm_forward(..., relu=True)`` when the ReLU was fused; gy is
    then the gradient of that output, and gy·[relu_out > 0] goes through the batch norm.
    out: None or (ggamma, gbeta) (C,) arrays (either may be None), written by the kernel
    itself when C-contiguous of gy's dtype (an optimizer's gradient slots: no extra launch).
    """
    import cupy
    gy = _contiguous(gy)
    dt = gy.dtype
    x = _contiguous(x, dt)
    n, c, l = _ncl(gy.shape)
    gamma_a, has_gamma = _per_channel(gamma, dt, gy)
    relu_a = gy if relu_out is None else _contiguous(relu_out, dt)
    gx = cupy.empty_like(gy)
    ggamma, gbeta = (o if o is not None and o.flags.c_contiguous and o.dtype == dt
                     and o.shape == (c,) else cupy.empty(c, dtype=dt)
                     for o in (out if out is not None else (None, None)))
    _launch("batchnorm_backward", _ctype(dt), c if n * l else 0, cuda.BLOCK, gy, x,
            _contiguous(mean, dt), _contiguous(inv_std, dt), gamma_a, relu_a, gx, ggamma, gbeta,
            n, c, l, int(bool(training)), has_gamma, int(relu_out is not None))
    if out is not None:
        for o, a in zip(out, (ggamma, gbeta)):
            if o is not None and o is not a:
                o[...] = a                        # a slot the kernel could not write itself
        ggamma, gbeta = (a if o is None else o for o, a in zip(out, (ggamma, gbeta)))
    return gx, ggamma, gbeta


# ---------------------------------------------------------------------------
# Optimizers (optim.cu): in place over flat buffers
# ---------------------------------------------------------------------------
def adam_update(w, g, m, v, lr, beta1, beta2, eps, t):
    """In place on w, m, v; see ``reference.adam_update``. One launch for all of w — so one
    launch for every parameter when they live side by side in one flat buffer."""
    if not (w.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous):
        from . import reference                  # an in-place update needs flat views
        return reference.adam_update(w, g, m, v, lr, beta1, beta2, eps, t)
    ty = np.dtype(w.dtype).type
    _elementwise("adam_update", _ctype(w.dtype), w.size, w, _contiguous(g, w.dtype), m, v, w.size,
                 ty(lr), ty(beta1), ty(1.0 - beta1), ty(beta2), ty(1.0 - beta2), ty(eps),
                 ty(1.0 - beta1 ** t), ty(1.0 - beta2 ** t))


def sgd_update(w, g, buf, lr, momentum=0.0, weight_decay=0.0, nesterov=False, first=False):
    """In place: SGD of optim/sgd.py (buf: the momentum buffer, None without momentum)."""
    _elementwise("sgd_update", _ctype(w.dtype), w.size, w, _contiguous(g, w.dtype),
                 w if buf is None else buf, w.size, lr, momentum, weight_decay,
                 int(bool(nesterov)), int(bool(first)))


def adam_update_scalars(w, g, m, v, scalars, beta1, beta2, eps):
    """Adam in place, lr and the bias corrections read from ``scalars`` = [lr, 1 − β1^t,
    1 − β2^t] in device memory (optim/device_scalars.py): one launch, and a CUDA graph that
    replays it uses each step's values (a kernel argument would be frozen at capture)."""
    ty = np.dtype(w.dtype).type
    _elementwise("adam_update_scalars", _ctype(w.dtype), w.size, w, _contiguous(g, w.dtype), m,
                 v, w.size, _contiguous(scalars, w.dtype), ty(beta1), ty(1.0 - beta1), ty(beta2),
                 ty(1.0 - beta2), ty(eps))


def sgd_update_scalars(w, g, buf, scalars, momentum=0.0, weight_decay=0.0, nesterov=False,
                       first=False):
    """SGD in place, lr read from ``scalars[0]`` in device memory: one launch."""
    _elementwise("sgd_update_scalars", _ctype(w.dtype), w.size, w, _contiguous(g, w.dtype),
                 w if buf is None else buf, w.size, _contiguous(scalars, w.dtype), momentum,
                 weight_decay, int(bool(nesterov)), int(bool(first)))


# ---------------------------------------------------------------------------
# Table 1's Sign (projection.cu; the clip of every layer at once is clip_segments below)
# ---------------------------------------------------------------------------
def _maxabs(w):
    """α = max|w| as a 1-element device array (one block, fixed order; never read here)."""
    import cupy
    alpha = cupy.empty(1, dtype=w.dtype)
    _launch("maxabs", _ctype(w.dtype), 1, cuda.BLOCK, w, w.size, alpha)
    return alpha


def _projection(kernel, w):
    import cupy
    w = _contiguous(w)
    out = cupy.empty_like(w)
    if w.size:
        _elementwise(kernel, _ctype(w.dtype), w.size, w, _maxabs(w), out, w.size)
    return out


def sign_projection(w):
    """α·sign(w), sign(0) = +1, α = max|w|; see ``reference.sign_projection``. 2 launches."""
    return _projection("sign_apply", w)


# ---------------------------------------------------------------------------
# Every layer at once: tensors side by side in one flat buffer, tensor s = [offsets[s], offsets[s+1])
# offsets (S + 1,) int64 and bounds (S,) are best kept on the device (made once per model), so
# that a step copies nothing up; a NumPy array given here is copied up on each call.
# ---------------------------------------------------------------------------
def _alpha_segments(w, offsets, pieces=None):
    """α_s = max|w| over each tensor s of the flat buffer w: one block per tensor, or with
    ``pieces`` = (fine, firsts) (``kernels.pieces.tables``, device tables) one block per
    piece and then one per tensor over its pieces' maxima — two launches of the same
    kernel, the same α bit for bit (a max is exact in any order; a NaN stays a NaN), many
    blocks at work on a large tensor instead of one."""
    import cupy
    n_seg = offsets.size - 1
    alpha = cupy.empty(max(n_seg, 1), dtype=w.dtype)
    if pieces is None:
        _launch("maxabs_segments", _ctype(w.dtype), n_seg, cuda.BLOCK, w, offsets, n_seg, alpha)
        return alpha
    fine, firsts = (_contiguous(t, np.int64) for t in pieces)
    if firsts.size != offsets.size:
        raise ValueError(f"pieces: {firsts.size - 1} tensors' first pieces for {n_seg} tensors")
    n_fine = fine.size - 1
    partial = cupy.empty(max(n_fine, 1), dtype=w.dtype)
    _launch("maxabs_segments", _ctype(w.dtype), n_fine, cuda.BLOCK, w, fine, n_fine, partial)
    _launch("maxabs_segments", _ctype(w.dtype), n_seg, cuda.BLOCK, partial, firsts, n_seg,
            alpha)
    return alpha


def _segments(kernel, w, offsets, pieces=None):
    import cupy
    w = _contiguous(w).reshape(-1)
    offsets = _contiguous(offsets, np.int64)
    n_seg = offsets.size - 1
    out = cupy.empty_like(w)
    if w.size:
        _elementwise(kernel, _ctype(w.dtype), w.size, w, offsets, n_seg,
                     _alpha_segments(w, offsets, pieces), out, w.size)
    return out


def sign_projection_segments(w, offsets, pieces=None):
    """Sign of every tensor of a flat buffer, each with its own α: 2 launches in all (3 with
    ``pieces``, see ``_alpha_segments``)."""
    return _segments("sign_segments", w, offsets, pieces)


def clip_segments(v, offsets, bounds, out=None):
    """Clip segment s of a flat buffer to [−bounds[s], bounds[s]] (inf: untouched). One launch;
    out may be v itself (in place)."""
    import cupy
    v = _contiguous(v).reshape(-1)
    offsets = _contiguous(offsets, np.int64)
    out = cupy.empty_like(v) if out is None else _out(out, v.shape, v.dtype)
    _elementwise("clip_segments", _ctype(v.dtype), v.size, v, offsets, offsets.size - 1,
                 _contiguous(bounds, v.dtype), out, v.size)
    return out


batchnorm_forward_fused = batchnorm_forward      # kernels.get's names for the fused versions
batchnorm_backward_fused = batchnorm_backward


# ---------------------------------------------------------------------------
# Stochastic kernels (stochastic.cu): Philox random numbers keyed by key = (seed, stream), a
# (2,) int64 device array drawn from the run's generator on the device (no host sync)
# ---------------------------------------------------------------------------
def stoch_projection_segments(w, offsets, key, pieces=None):
    """Stoch of every tensor of a flat buffer, each with its own α: 2 launches in all (3 with
    ``pieces``)."""
    import cupy
    w = _contiguous(w).reshape(-1)
    offsets = _contiguous(offsets, np.int64)
    out = cupy.empty_like(w)
    if w.size:
        _elementwise("stoch_segments", _ctype(w.dtype), w.size, w, offsets, offsets.size - 1,
                     _alpha_segments(w, offsets, pieces), _contiguous(key, np.int64), out,
                     w.size)
    return out


def stochm_projection_segments(w, offsets, key, gamma, pieces=None):
    """StochM(γ) of every tensor of a flat buffer: 2 launches in all (3 with ``pieces``)."""
    import cupy
    w = _contiguous(w).reshape(-1)
    offsets = _contiguous(offsets, np.int64)
    out = cupy.empty_like(w)
    ty = np.dtype(w.dtype).type
    if w.size:
        _elementwise("stochm_segments", _ctype(w.dtype), w.size, w, offsets, offsets.size - 1,
                     _alpha_segments(w, offsets, pieces), _contiguous(key, np.int64), out,
                     w.size, ty(gamma), ty(1.0 / gamma - gamma))
    return out


def gaussian_noise(x, key, sigma_add, sigma_mul, add_first=False):
    """(y, factor) of Walking Noise's noise (factor None when sigma_mul is 0): one launch."""
    import cupy
    x = _contiguous(x)
    y = cupy.empty_like(x)
    keep = sigma_mul != 0
    factor = cupy.empty_like(x) if keep else y
    _elementwise("gaussian_noise", _ctype(x.dtype), x.size, x, _contiguous(key, np.int64), y,
                 factor, x.size, sigma_add, sigma_mul, int(bool(add_first)), int(keep))
    return y, (factor if keep else None)


def _fill(name, key, size, dtype, a, b):
    import cupy
    out = cupy.empty(int(size), dtype=dtype)
    ty = np.dtype(out.dtype).type
    _elementwise(name, _ctype(out.dtype), out.size, _contiguous(key, np.int64), out, out.size,
                 ty(a), ty(b))
    return out


def uniform_fill(key, size, dtype, low, high):
    """(size,) numbers U[low, high) keyed by key (the generator's random, uniform): one launch."""
    return _fill("uniform_fill", key, size, dtype, low, high - low)


def normal_fill(key, size, dtype, mean, scale):
    """(size,) numbers N(mean, scale²) keyed by key (standard_normal, normal): one launch."""
    return _fill("normal_fill", key, size, dtype, mean, scale)
