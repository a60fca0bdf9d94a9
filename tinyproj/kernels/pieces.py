"""Every tensor of a flat buffer cut into pieces of at most ``piece`` elements: the unit of
parallel work when α = max|w| (or a clip) runs over all layers at once.

A flat buffer holds the tensors side by side, tensor s = w[offsets[s]:offsets[s+1]]
(optim/flat.py). One worker per *tensor* leaves the others idle while the largest tensor is
done (bc_cifar10's 8.4-million-weight layer on the CPU; AlexNet's 37.7-million-weight one on
a GPU, where one thread block reduced it alone: 7.4 ms of a 181 ms step on an H200). One
worker per *piece* spreads it out; a tensor's α is then the max over its pieces' maxima,
exact in any order.

Two forms of the same cut, for the two kinds of worker:

* ``runs`` — (start, stop, segment) per piece, for the Numba loops (kernels/cpu_fused.py);
* ``tables`` — (fine, firsts), offsets tables for the GPU's ``maxabs_segments`` kernel, run
  once over the pieces and once over each tensor's pieces (kernels/gpu.py, the ``pieces``
  argument of the ``*_projection_segments`` kernels).
"""
from __future__ import annotations

import numpy as np

__all__ = ["runs", "tables"]


def runs(offsets, piece: int):
    """(start, stop, segment), three (Q,) int64 arrays: tensor s = w[offsets[s]:offsets[s+1]]
    cut into ⌈n_s / piece⌉ runs [start, stop) of at most ``piece`` elements, in order.

    An empty tensor gets no piece (its α stays 0, it has nothing to clip).
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    counts = -(-lengths // int(piece))                  # ⌈n_s / piece⌉, 0 when n_s = 0
    segment = np.repeat(np.arange(lengths.size, dtype=np.int64), counts)
    first = np.cumsum(counts) - counts                  # index of tensor s's first piece
    k = np.arange(segment.size, dtype=np.int64) - first[segment]   # piece k of its tensor
    start = offsets[segment] + k * piece
    stop = np.minimum(start + piece, offsets[segment + 1])
    return start, stop, segment


def tables(offsets, piece: int):
    """(fine, firsts): the same cut as offsets tables. fine (Q + 1,) the pieces' offsets in
    the buffer (the pieces tile it in order: empty tensors take no room); firsts (S + 1,) the
    first piece of each tensor, so tensor s is pieces firsts[s] .. firsts[s+1] − 1 (none for
    an empty tensor, whose α is then the kernel's 0, as in one pass)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    start, _, segment = runs(offsets, piece)
    counts = np.bincount(segment, minlength=offsets.size - 1)
    fine = np.append(start, offsets[-1])
    firsts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return fine.astype(np.int64), firsts
