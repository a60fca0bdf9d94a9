"""Host twins of optim.cu and projection.cu: Algorithm 1's weight kernels — the Adam and SGD
updates (scalars as arguments, or read from device memory: ``*_scalars``), the Sign
projection (of one tensor or of every tensor of a flat buffer at once) and the clip of every
tensor of a flat buffer
(tensor s = [offsets[s], offsets[s+1]), each with its own α or bound).
"""
from __future__ import annotations

import numpy as np

from .host_build import call, checked_out, contiguous

__all__ = ["adam_update", "sgd_update", "adam_update_scalars", "sgd_update_scalars",
           "sign_projection", "sign_projection_segments", "clip_segments", "check_offsets",
           "segment_scales"]


def adam_update(w, g, m, v, lr, beta1, beta2, eps, t):
    """In place on w, m, v (C-contiguous, one dtype); see ``reference.adam_update``.

    The scalars are rounded to w's dtype as NumPy rounds a Python float beside a float32
    array. Flat buffers holding every parameter make it one call (one launch on the GPU).
    """
    ty = w.dtype.type
    g = np.ascontiguousarray(g, dtype=w.dtype)
    call("adam_update", w.dtype, w, g, m, v, w.size, ty(lr), ty(beta1), ty(1.0 - beta1),
          ty(beta2), ty(1.0 - beta2), ty(eps), ty(1.0 - beta1 ** t), ty(1.0 - beta2 ** t))


def sgd_update(w, g, buf, lr, momentum=0.0, weight_decay=0.0, nesterov=False, first=False):
    """In place: SGD of optim/sgd.py on w (and the momentum buffer ``buf``, if momentum).

    first=True on a parameter's first step (buf ← g); buf may be None when momentum is 0.
    """
    g = np.ascontiguousarray(g, dtype=w.dtype)
    buf = w if buf is None else buf
    call("sgd_update", w.dtype, w, g, buf, w.size, lr, momentum, weight_decay,
          int(bool(nesterov)), int(bool(first)))


def adam_update_scalars(w, g, m, v, scalars, beta1, beta2, eps):
    """Adam in place with lr, 1 − β1^t, 1 − β2^t read from ``scalars`` (3,) of w's dtype (the
    per-step scalars in device memory); see ``reference_device.adam_update_scalars``."""
    ty = w.dtype.type
    g = np.ascontiguousarray(g, dtype=w.dtype)
    scalars = np.ascontiguousarray(scalars, dtype=w.dtype)
    call("adam_update_scalars", w.dtype, w, g, m, v, w.size, scalars, ty(beta1),
          ty(1.0 - beta1), ty(beta2), ty(1.0 - beta2), ty(eps))


def sgd_update_scalars(w, g, buf, scalars, momentum=0.0, weight_decay=0.0, nesterov=False,
                       first=False):
    """SGD in place with lr read from ``scalars[0]``; see
    ``reference_device.sgd_update_scalars``."""
    g = np.ascontiguousarray(g, dtype=w.dtype)
    scalars = np.ascontiguousarray(scalars, dtype=w.dtype)
    buf = w if buf is None else buf
    call("sgd_update_scalars", w.dtype, w, g, buf, w.size, scalars, momentum, weight_decay,
          int(bool(nesterov)), int(bool(first)))


def _maxabs(w):
    alpha = np.empty(1, dtype=w.dtype)
    call("maxabs", w.dtype, w, w.size, alpha)
    return alpha


def sign_projection(w):
    """α·sign(w), sign(0) = +1, α = max|w|; see ``reference.sign_projection``."""
    w = contiguous(w)
    out = np.empty_like(w)
    call("sign_apply", w.dtype, w, _maxabs(w), out, w.size)
    return out


# ---------------------------------------------------------------------------
# Every layer at once: tensors side by side in one flat buffer, tensor s = [offsets[s],
# offsets[s+1])
# ---------------------------------------------------------------------------
def check_offsets(offsets, size):
    """``offsets`` as int64 (S + 1,), checked to rise from 0 to the buffer's ``size``."""
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != size \
            or (np.diff(offsets) < 0).any():
        raise ValueError(f"offsets must rise from 0 to the buffer's size {size}; got {offsets}")
    return offsets


def segment_scales(w, offsets, pieces=None):
    """``(w (P,), offsets, alpha (S,))``: the flat buffer, its checked offsets and
    α_s = max|w| over each tensor s — the first of a projection's 2 launches on the GPU.
    With ``pieces`` = (fine, firsts) (``kernels.pieces.tables``) in two, as on the GPU:
    the maximum of every piece, then of each tensor's pieces (the same α, bit for bit)."""
    w = contiguous(w).reshape(-1)
    offsets = check_offsets(offsets, w.size)
    n_seg = offsets.size - 1
    alpha = np.empty(max(n_seg, 1), dtype=w.dtype)
    if pieces is None:
        call("maxabs_segments", w.dtype, w, offsets, n_seg, alpha)
        return w, offsets, alpha
    fine = check_offsets(pieces[0], w.size)
    firsts = check_offsets(pieces[1], fine.size - 1)
    if firsts.size != offsets.size:
        raise ValueError(f"pieces: {firsts.size - 1} tensors' first pieces for "
                         f"{offsets.size - 1} tensors")
    partial = np.empty(max(fine.size - 1, 1), dtype=w.dtype)
    call("maxabs_segments", w.dtype, w, fine, fine.size - 1, partial)
    call("maxabs_segments", w.dtype, partial, firsts, n_seg, alpha)
    return w, offsets, alpha


def _segments(kernel, w, offsets, pieces=None):
    w, offsets, alpha = segment_scales(w, offsets, pieces)
    out = np.empty_like(w)
    call(kernel, w.dtype, w, offsets, offsets.size - 1, alpha, out, w.size)
    return out


def sign_projection_segments(w, offsets, pieces=None):
    """Sign of every tensor of a flat buffer, each with its own α (2 launches on the GPU, 3
    with ``pieces``: see ``segment_scales``).

    w: (P,) the tensors side by side; offsets: (S + 1,) int64, 0 = offsets[0] <= ... <=
    offsets[S] = P. Returns a new (P,) array: segment s is ``sign_projection`` of segment s.
    """
    return _segments("sign_segments", w, offsets, pieces)


def clip_segments(v, offsets, bounds, out=None):
    """Clip every tensor of a flat buffer to its own bound: segment s to [−bounds[s], bounds[s]].

    bounds: (S,) of v's dtype (inf: leave the tensor alone). out: a (P,) array to write, which
    may be v itself (in place, as Algorithm 1's line 12). One launch on the GPU.
    """
    v = contiguous(v).reshape(-1)
    offsets = check_offsets(offsets, v.size)
    bounds = np.ascontiguousarray(bounds, dtype=v.dtype)
    out = np.empty_like(v) if out is None else checked_out(out, v.shape, v.dtype)
    call("clip_segments", v.dtype, v, offsets, offsets.size - 1, bounds, out, v.size)
    return out
