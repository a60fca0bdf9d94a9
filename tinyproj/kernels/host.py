"""The GPU kernels' own per-element code, compiled for the CPU: how CI checks them without a GPU.

``kernels/cuda/host_loops.cpp`` calls the ``__host__ __device__`` functions of the kernel
headers in plain loops; this module compiles it with the system C++ compiler into a shared
library (once: it is cached in ``<cache_dir>/kernels/`` under a hash of the sources, so later
runs load it in milliseconds) and wraps each kernel with the signature of ``reference.py``::

    from tinyproj.kernels import host
    if host.available():                        # else host.unavailable_reason() says why
        cols = host.get("im2col_batch")(x, 3, 3, (1, 1), (1, 1))    # == reference.im2col_batch

NumPy arrays only; single-threaded and unoptimised on purpose — it exists to be compared with
``reference.py`` (tests/test_kernels_gpu_host.py), not to be fast: a difference found here is a
difference of the GPU kernel, because the GPU thread runs the very same function.

Compiler: ``$CXX`` if set, else the first of c++, g++, clang++ on the PATH. Flags: -O2
-ffp-contract=off (no fused multiply-adds, as the GPU build's --fmad=false), C++17.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from . import cuda
from .geometry import out_size

FLAGS = ["-O2", "-std=c++17", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math",
         "-Wall", "-Wextra"]

NAMES = ("im2col_batch", "col2im_batch", "im2col", "col2im", "swap01", "maxpool_forward",
         "maxpool_backward", "batchnorm_forward", "batchnorm_backward", "adam_update",
         "sgd_update", "sign_projection", "round_projection", "clip",
         "sign_projection_segments", "round_projection_segments", "clip_segments",
         "batchnorm_forward_fused", "batchnorm_backward_fused", "stoch_projection_segments",
         "stochm_projection_segments", "gaussian_noise", "adam_update_scalars",
         "sgd_update_scalars")


class HostBuildError(RuntimeError):
    """The kernels could not be compiled for the CPU (no compiler, or it failed)."""


_lib = None                      # the loaded library, once built
_error = None                    # the reason it cannot be, once known


def compiler():
    """The C++ compiler to use (a path), or None when there is none."""
    cxx = os.environ.get("CXX", "").strip()
    if cxx:
        return shutil.which(cxx)
    for name in ("c++", "g++", "clang++"):
        path = shutil.which(name)
        if path:
            return path
    return None


def library_path() -> Path:
    """Where the compiled library is cached: ``<cache_dir>/kernels/host-<hash>.so``."""
    from ..data import location
    return location.cache_dir() / "kernels" / f"host-{cuda.digest()}.so"


def build(force: bool = False) -> Path:
    """Compile host_loops.cpp unless the cached library for these sources exists; its path.

    The compiler writes to a temporary name in the cache folder that is renamed into place
    (docs/design.md rule 7), so two processes building at once never load half a file.
    """
    cxx = compiler()
    if cxx is None:
        raise HostBuildError("no C++ compiler found (set $CXX, or install g++ or clang++)")
    target = library_path()
    if target.exists() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.stem + ".", suffix=".tmp", dir=target.parent)
    os.close(fd)
    cmd = [cxx, *FLAGS, "-I", str(cuda.FOLDER), str(cuda.FOLDER / "host_loops.cpp"), "-o", tmp]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise HostBuildError(f"{' '.join(cmd)} failed:\n{done.stderr.strip()}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def library():
    """The loaded library (built on first use); HostBuildError says why when it cannot be."""
    global _lib, _error
    if _lib is None:
        if _error is not None:
            raise HostBuildError(_error)
        try:
            _lib = ctypes.CDLL(str(build()))
        except (HostBuildError, OSError) as exc:
            _error = str(exc)
            raise HostBuildError(_error) from None
    return _lib


def available() -> bool:
    """True when the host build can be used (compiling it on the first call)."""
    try:
        library()
        return True
    except HostBuildError:
        return False


def unavailable_reason():
    """Why the host build cannot be used, or None when it can."""
    return None if available() else _error


def get(name: str):
    """The host-compiled kernel ``name`` as a Python function with reference.py's signature.

    Names: ``NAMES`` — those of reference.py, plus ``sgd_update``, ``round_projection`` and
    ``clip`` (see their docstrings here). Raises HostBuildError when no build is possible.
    """
    if name not in NAMES:
        raise KeyError(f"unknown host kernel {name!r}; known: {', '.join(NAMES)}")
    library()
    return globals()[name]


# ---------------------------------------------------------------------------
# Calling a kernel: the argument kinds come from cuda.KERNELS (p pointer, i int64, t scalar T)
# ---------------------------------------------------------------------------
_SUFFIX = {np.dtype(np.float32): ("f32", ctypes.c_float), np.dtype(np.float64): ("f64", ctypes.c_double)}


def _call(name: str, dtype, *args):
    dtype = np.dtype(dtype)
    if dtype not in _SUFFIX:
        raise TypeError(f"host kernel {name}: float32 or float64 arrays only, got {dtype}")
    suffix, scalar = _SUFFIX[dtype]
    kinds = cuda.KERNELS[name][1]
    if len(args) != len(kinds):
        raise TypeError(f"host kernel {name}: {len(kinds)} arguments expected, got {len(args)}")
    converted = []
    for kind, arg in zip(kinds, args):
        if kind == "p":
            if not (arg.flags.c_contiguous and arg.flags.aligned):
                raise ValueError(f"host kernel {name}: arrays must be C-contiguous")
            converted.append(ctypes.c_void_p(arg.ctypes.data))
        elif kind == "i":
            converted.append(ctypes.c_longlong(int(arg)))
        else:
            converted.append(scalar(float(arg)))
    getattr(library(), f"tp_{name}_{suffix}")(*converted)


def _out(out, shape, dtype):
    """``out`` checked (the kernels write it as a flat C-contiguous array), or None."""
    if out is not None and (tuple(out.shape) != tuple(shape) or out.dtype != dtype
                            or not out.flags.c_contiguous):
        raise ValueError(f"out must be a C-contiguous {np.dtype(dtype)} array of shape "
                         f"{tuple(shape)}, got {out.dtype} {tuple(out.shape)}")
    return out


def _geometry(x_shape, kh, kw, stride, pad):
    n, c, h, w = (int(s) for s in x_shape)
    return (n, c, h, w, kh, kw, stride[0], stride[1], pad[0], pad[1])


def _contiguous(a):
    return np.ascontiguousarray(a)


# ---------------------------------------------------------------------------
# The kernels, with reference.py's signatures
# ---------------------------------------------------------------------------
def im2col_batch(x, kh, kw, stride=(1, 1), pad=(0, 0), pad_value=0.0, out=None):
    """x (N, C, H, W) → cols (C·kh·kw, N·OH·OW); see ``reference.im2col_batch``."""
    x = _contiguous(x)
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, stride[0], pad[0]), out_size(w, kw, stride[1], pad[1])
    shape = (c * kh * kw, n * oh * ow)
    cols = np.empty(shape, dtype=x.dtype) if out is None else _out(out, shape, x.dtype)
    _call("im2col_batch", x.dtype, x, cols, *_geometry(x.shape, kh, kw, stride, pad), pad_value)
    return cols


def col2im_batch(cols, x_shape, kh, kw, stride=(1, 1), pad=(0, 0), out=None):
    """cols (C·kh·kw, N·OH·OW) → (N, C, H, W); see ``reference.col2im_batch``."""
    cols = _contiguous(cols)
    result = (np.empty(tuple(x_shape), dtype=cols.dtype) if out is None
              else _out(out, x_shape, cols.dtype))
    _call("col2im_batch", cols.dtype, cols, result, *_geometry(x_shape, kh, kw, stride, pad))
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
    """x (N, C, H, W) → y, argmax (N, C, OH, OW), argmax int64; see ``reference.maxpool_forward``."""
    x = _contiguous(x)
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, stride[0], pad[0]), out_size(w, kw, stride[1], pad[1])
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    argmax = np.empty((n, c, oh, ow), dtype=np.int64)
    _call("maxpool_forward", x.dtype, x, y, argmax, *_geometry(x.shape, kh, kw, stride, pad))
    return y, argmax


def maxpool_backward(gy, argmax, x_shape, kh, kw, stride, pad=(0, 0)):
    """gy, argmax (N, C, OH, OW) → gx (N, C, H, W); see ``reference.maxpool_backward``."""
    gy = _contiguous(gy)
    argmax = np.ascontiguousarray(argmax, dtype=np.int64)
    gx = np.empty(tuple(x_shape), dtype=gy.dtype)
    _call("maxpool_backward", gy.dtype, gy, argmax, gx, *_geometry(x_shape, kh, kw, stride, pad))
    return gx


def _ncl(a):
    a = _contiguous(a)
    return a.shape[0], a.shape[1], int(np.prod(a.shape[2:], dtype=np.int64))


def _per_channel(a, c, dtype):
    """(array, present): a (C,) array of dtype, or a placeholder when a is None."""
    if a is None:
        return np.zeros(c, dtype=dtype), 0
    return np.ascontiguousarray(a, dtype=dtype), 1


def batchnorm_forward(x, mean, var, eps, gamma=None, beta=None, training=True, relu=False,
                      running_mean=None, running_var=None, momentum=0.0, tracked=None):
    """(y, mean, var, inv_std); see ``reference.batchnorm_forward``. One block per channel.

    relu=True: y is also passed through the ReLU that follows (y·[y > 0]), fused.
    running_mean, running_var (C,), training only: updated in place with ``momentum`` (see
    ``reference.batchnorm_forward_fused``); tracked: a 0-d int64 counter raised by one.
    """
    x = _contiguous(x)
    n, c, l = _ncl(x)
    dt = x.dtype
    mean_in, _ = _per_channel(None if training else mean, c, dt)
    var_in, _ = _per_channel(None if training else var, c, dt)
    gamma_a, has_gamma = _per_channel(gamma, c, dt)
    beta_a, has_beta = _per_channel(beta, c, dt)
    y = np.empty_like(x)
    mean_out, var_out, inv_std = (np.empty(c, dtype=dt) for _ in range(3))
    run = bool(training) and running_mean is not None
    rmean = running_mean if run else mean_out                     # placeholders: never written
    rvar = running_var if run else var_out
    for a in (rmean, rvar):
        if not (a.flags.c_contiguous and a.dtype == dt):
            raise ValueError("running statistics must be C-contiguous arrays of x's dtype")
    count = tracked if tracked is not None else np.zeros((), dtype=np.int64)
    if count.dtype != np.int64:
        raise ValueError("tracked must be an int64 array")
    m = n * l
    ty = dt.type
    _call("batchnorm_forward", dt, x, y, mean_in, var_in, gamma_a, beta_a, mean_out, var_out,
          inv_std, rmean, rvar, count, n, c, l, eps, int(bool(training)), has_gamma, has_beta,
          int(bool(relu)), ty(1.0 - momentum), ty(momentum), ty(m / (m - 1) if m > 1 else 1.0),
          int(run), int(tracked is not None))
    if not training:                       # the reference hands the given statistics back
        return y, mean, var, inv_std
    return y, mean_out, var_out, inv_std


def batchnorm_backward(gy, x, mean, inv_std, gamma=None, training=True, relu_out=None,
                       out=None):
    """(gx, ggamma, gbeta); see ``reference.batchnorm_backward``. One block per channel.

    relu_out: the y of ``batchnorm_forward(..., relu=True)`` when the ReLU was fused; gy is
    then the gradient of that output, and gy·[relu_out > 0] goes through the batch norm.
    out: None or (ggamma, gbeta) (C,) arrays (either may be None), written by the kernel
    itself when C-contiguous of gy's dtype (an optimizer's gradient slots: no extra launch).
    """
    gy, x = _contiguous(gy), _contiguous(x)
    n, c, l = _ncl(gy)
    dt = gy.dtype
    mean_a, _ = _per_channel(mean, c, dt)
    inv_a, _ = _per_channel(inv_std, c, dt)
    gamma_a, has_gamma = _per_channel(gamma, c, dt)
    relu_a = gy if relu_out is None else np.ascontiguousarray(relu_out, dtype=dt)
    gx = np.empty_like(gy)
    ggamma, gbeta = (o if o is not None and o.flags.c_contiguous and o.dtype == dt
                     and o.shape == (c,) else np.empty(c, dtype=dt)
                     for o in (out if out is not None else (None, None)))
    _call("batchnorm_backward", dt, gy, np.ascontiguousarray(x, dtype=dt), mean_a, inv_a,
          gamma_a, relu_a, gx, ggamma, gbeta, n, c, l, int(bool(training)), has_gamma,
          int(relu_out is not None))
    if out is not None:
        for o, a in zip(out, (ggamma, gbeta)):
            if o is not None and o is not a:
                o[...] = a                        # a slot the kernel could not write itself
        ggamma, gbeta = (a if o is None else o for o, a in zip(out, (ggamma, gbeta)))
    return gx, ggamma, gbeta


def adam_update(w, g, m, v, lr, beta1, beta2, eps, t):
    """In place on w, m, v (C-contiguous, one dtype); see ``reference.adam_update``.

    The scalars are rounded to w's dtype as NumPy rounds a Python float beside a float32
    array. Flat buffers holding every parameter make it one call (one launch on the GPU).
    """
    ty = w.dtype.type
    g = np.ascontiguousarray(g, dtype=w.dtype)
    _call("adam_update", w.dtype, w, g, m, v, w.size, ty(lr), ty(beta1), ty(1.0 - beta1),
          ty(beta2), ty(1.0 - beta2), ty(eps), ty(1.0 - beta1 ** t), ty(1.0 - beta2 ** t))


def sgd_update(w, g, buf, lr, momentum=0.0, weight_decay=0.0, nesterov=False, first=False):
    """In place: SGD of optim/sgd.py on w (and the momentum buffer ``buf``, if momentum).

    first=True on a parameter's first step (buf ← g); buf may be None when momentum is 0.
    """
    g = np.ascontiguousarray(g, dtype=w.dtype)
    buf = w if buf is None else buf
    _call("sgd_update", w.dtype, w, g, buf, w.size, lr, momentum, weight_decay,
          int(bool(nesterov)), int(bool(first)))


def adam_update_scalars(w, g, m, v, scalars, beta1, beta2, eps):
    """Adam in place with lr, 1 − β1^t, 1 − β2^t read from ``scalars`` (3,) of w's dtype (the
    per-step scalars in device memory); see ``reference_device.adam_update_scalars``."""
    ty = w.dtype.type
    g = np.ascontiguousarray(g, dtype=w.dtype)
    scalars = np.ascontiguousarray(scalars, dtype=w.dtype)
    _call("adam_update_scalars", w.dtype, w, g, m, v, w.size, scalars, ty(beta1),
          ty(1.0 - beta1), ty(beta2), ty(1.0 - beta2), ty(eps))


def sgd_update_scalars(w, g, buf, scalars, momentum=0.0, weight_decay=0.0, nesterov=False,
                       first=False):
    """SGD in place with lr read from ``scalars[0]``; see ``reference_device.sgd_update_scalars``."""
    g = np.ascontiguousarray(g, dtype=w.dtype)
    scalars = np.ascontiguousarray(scalars, dtype=w.dtype)
    buf = w if buf is None else buf
    _call("sgd_update_scalars", w.dtype, w, g, buf, w.size, scalars, momentum, weight_decay,
          int(bool(nesterov)), int(bool(first)))


def _maxabs(w):
    alpha = np.empty(1, dtype=w.dtype)
    _call("maxabs", w.dtype, w, w.size, alpha)
    return alpha


def sign_projection(w):
    """α·sign(w), sign(0) = +1, α = max|w|; see ``reference.sign_projection``."""
    w = _contiguous(w)
    out = np.empty_like(w)
    _call("sign_apply", w.dtype, w, _maxabs(w), out, w.size)
    return out


def round_projection(w):
    """α·round(w/α), ties half away from zero, α = max|w|; see ``projections.round``."""
    w = _contiguous(w)
    out = np.empty_like(w)
    _call("round_apply", w.dtype, w, _maxabs(w), out, w.size)
    return out


def clip(v, c):
    """max(min(v, c), −c); see ``clipping.prox_linf``."""
    v = _contiguous(v)
    out = np.empty_like(v)
    _call("clip_apply", v.dtype, v, out, v.size, c)
    return out


# ---------------------------------------------------------------------------
# Every layer at once: tensors side by side in one flat buffer, tensor s = [offsets[s], offsets[s+1])
# ---------------------------------------------------------------------------
def _offsets(offsets, size):
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != size \
            or (np.diff(offsets) < 0).any():
        raise ValueError(f"offsets must rise from 0 to the buffer's size {size}; got {offsets}")
    return offsets


def _segments(kernel, w, offsets):
    w = _contiguous(w).reshape(-1)
    offsets = _offsets(offsets, w.size)
    n_seg = offsets.size - 1
    alpha = np.empty(max(n_seg, 1), dtype=w.dtype)
    _call("maxabs_segments", w.dtype, w, offsets, n_seg, alpha)
    out = np.empty_like(w)
    _call(kernel, w.dtype, w, offsets, n_seg, alpha, out, w.size)
    return out


def sign_projection_segments(w, offsets):
    """Sign of every tensor of a flat buffer, each with its own α (2 launches on the GPU).

    w: (P,) the tensors side by side; offsets: (S + 1,) int64, 0 = offsets[0] <= ... <=
    offsets[S] = P. Returns a new (P,) array: segment s is ``sign_projection`` of segment s.
    """
    return _segments("sign_segments", w, offsets)


def round_projection_segments(w, offsets):
    """Round of every tensor of a flat buffer, each with its own α; see the Sign version."""
    return _segments("round_segments", w, offsets)


def clip_segments(v, offsets, bounds, out=None):
    """Clip every tensor of a flat buffer to its own bound: segment s to [−bounds[s], bounds[s]].

    bounds: (S,) of v's dtype (inf: leave the tensor alone). out: a (P,) array to write, which
    may be v itself (in place, as Algorithm 1's line 12). One launch on the GPU.
    """
    v = _contiguous(v).reshape(-1)
    offsets = _offsets(offsets, v.size)
    bounds = np.ascontiguousarray(bounds, dtype=v.dtype)
    out = np.empty_like(v) if out is None else _out(out, v.shape, v.dtype)
    _call("clip_segments", v.dtype, v, offsets, offsets.size - 1, bounds, out, v.size)
    return out


batchnorm_forward_fused = batchnorm_forward      # kernels.get's names for the fused versions
batchnorm_backward_fused = batchnorm_backward


# ---------------------------------------------------------------------------
# Stochastic kernels (stochastic.cu): random numbers from Philox, keyed by key = (seed, stream)
# ---------------------------------------------------------------------------
def _key(key):
    key = np.ascontiguousarray(key, dtype=np.int64)
    if key.shape != (2,):
        raise ValueError(f"key must be 2 int64 numbers (seed, stream), got shape {key.shape}")
    return key


def stoch_projection_segments(w, offsets, key):
    """Stoch of every tensor of a flat buffer, each with its own α (see
    ``reference.stoch_projection_segments``); 2 launches on the GPU."""
    w = _contiguous(w).reshape(-1)
    offsets = _offsets(offsets, w.size)
    n_seg = offsets.size - 1
    alpha = np.empty(max(n_seg, 1), dtype=w.dtype)
    _call("maxabs_segments", w.dtype, w, offsets, n_seg, alpha)
    out = np.empty_like(w)
    _call("stoch_segments", w.dtype, w, offsets, n_seg, alpha, _key(key), out, w.size)
    return out


def stochm_projection_segments(w, offsets, key, gamma):
    """StochM(γ) of every tensor of a flat buffer (``reference.stochm_projection_segments``)."""
    w = _contiguous(w).reshape(-1)
    offsets = _offsets(offsets, w.size)
    n_seg = offsets.size - 1
    alpha = np.empty(max(n_seg, 1), dtype=w.dtype)
    _call("maxabs_segments", w.dtype, w, offsets, n_seg, alpha)
    out = np.empty_like(w)
    ty = w.dtype.type
    _call("stochm_segments", w.dtype, w, offsets, n_seg, alpha, _key(key), out, w.size,
          ty(gamma), ty(1.0 / gamma - gamma))
    return out


def gaussian_noise(x, key, sigma_add, sigma_mul, add_first=False):
    """(y, factor): Walking Noise's noise on x (``reference.gaussian_noise``); factor None
    when sigma_mul is 0."""
    x = _contiguous(x)
    y = np.empty_like(x)
    keep = sigma_mul != 0
    factor = np.empty_like(x) if keep else y
    ty = x.dtype.type
    _call("gaussian_noise", x.dtype, x, _key(key), y, factor, x.size, ty(sigma_add),
          ty(sigma_mul), int(bool(add_first)), int(keep))
    return y, (factor if keep else None)
