"""Validation split and minibatch iteration.

Datasets are held on the host as NumPy arrays; each minibatch is cut there and handed
out on the backend in use (NumPy or CuPy) through ``backend.asarray``, so only one batch
at a time lives on the GPU.
"""
from __future__ import annotations

import math

import numpy as np  # host-side indexing of host arrays

from tinyproj import backend

__all__ = ["train_val_split", "num_batches", "epoch_order", "iterate_minibatches"]


def train_val_split(x, y, n_val=5000):
    """Split off the *last* ``n_val`` examples as a validation set (BinaryConnect: 45k/5k).

    Returns ``(x_train, y_train, x_val, y_val)`` (views, no copies) with
    ``len(x_train) == len(x) - n_val`` and ``len(x_val) == n_val``.
    """
    n = len(x)
    if len(y) != n:
        raise ValueError(f"train_val_split: x has {n} examples but y has {len(y)}.")
    if not 0 <= n_val < n:
        raise ValueError(f"train_val_split: n_val={n_val} must be at least 0 and smaller than "
                         f"the {n} examples given.")
    cut = n - n_val
    return x[:cut], y[:cut], x[cut:], y[cut:]


def num_batches(n, batch_size, drop_last=False) -> int:
    """How many minibatches :func:`iterate_minibatches` yields for ``n`` examples."""
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def epoch_order(n, rng=None, shuffle=True):
    """The order of one epoch: ``backend.permutation(rng, n)`` (global generator if None),
    or 0..n-1 when ``shuffle`` is False."""
    if not shuffle:
        return np.arange(n)
    return backend.permutation(backend.global_rng() if rng is None else rng, n)


def iterate_minibatches(x, y, batch_size, rng=None, shuffle=True, drop_last=False):
    """Yield ``(x_batch, y_batch)`` minibatches for one epoch.

    - ``x`` (N, ...) any numeric dtype, ``y`` (N,) integer labels, on the host (or GPU).
    - Each ``x_batch`` is a float32 array of shape (B, ...) on the backend in use (uint8
      images are cast, not rescaled: use ``preprocess="scale"`` for [0, 1]); each
      ``y_batch`` is int64 (B,). B = ``batch_size`` except for a smaller last batch,
      which ``drop_last=True`` leaves out.
    - With ``shuffle=True`` the order is ``backend.permutation(rng, N)``: every example
      appears exactly once per epoch, and the same generator state gives the same order.
      Pass the run's generator as ``rng`` (rule 5 of docs/design.md); without one the global
      generator ``backend.global_rng()`` is used. ``shuffle=False`` keeps the order 0..N-1.
    """
    n = len(x)
    if len(y) != n:
        raise ValueError(f"iterate_minibatches: x has {n} examples but y has {len(y)}; they "
                         "must match one to one.")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"iterate_minibatches: batch_size must be a positive integer, got "
                         f"{batch_size!r}.")
    order = epoch_order(n, rng, shuffle)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        if backend.is_gpu_array(x):
            idx = backend.xp_of(x).asarray(idx)
        yield (backend.asarray(x[idx], dtype=backend.default_float),
               backend.asarray(y[idx], dtype=np.int64))
