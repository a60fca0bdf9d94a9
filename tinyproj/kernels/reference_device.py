"""The readable twins of the kernels that read their per-step scalars from device memory.

``adam_update`` and ``sgd_update`` (reference.py) take the learning rate and Adam's step t as
Python numbers, which a GPU kernel receives as launch arguments. A CUDA graph freezes launch
arguments at capture (tinyproj/graphs.py), so the optimizers on a device keep those numbers
in a small device array instead (optim/device_scalars.py) and call the ``*_scalars`` kernels
below, which read them from there. The arithmetic is the same: with the scalars rounded to
the weights' dtype, as NumPy rounds a Python float beside a float32 array, the result is
``reference.adam_update``'s bit for bit (tests/test_graphs.py checks it).

These are plain array code, the oracle of the CUDA kernels (gpu.py) and of their
host-compiled twins (host.py), rule 2 of docs/design.md.
"""
from __future__ import annotations

from .. import backend
from . import reference

__all__ = ["adam_update_scalars", "sgd_update_scalars", "NAMES"]

NAMES = ("adam_update_scalars", "sgd_update_scalars")


def adam_update_scalars(w, g, m, v, scalars, beta1, beta2, eps):
    """Adam in place on w, m, v with ``scalars`` = [lr, 1 − β1^t, 1 − β2^t] (3,) of w's dtype::

        m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²
        w ← w − lr · (m / bc1) / (√(v / bc2) + eps)
    """
    xp = backend.xp_of(w)
    lr, bc1, bc2 = scalars[0], scalars[1], scalars[2]      # 0-d views: read on the device
    m *= beta1
    m += (1.0 - beta1) * g
    v *= beta2
    v += (1.0 - beta2) * (g * g)
    m_hat = m / bc1
    v_hat = v / bc2
    w -= lr * m_hat / (xp.sqrt(v_hat) + eps)


def sgd_update_scalars(w, g, buf, scalars, momentum=0.0, weight_decay=0.0, nesterov=False,
                       first=False):
    """SGD in place (``reference.sgd_update``) with lr = ``scalars[0]`` read on the device."""
    reference.sgd_update(w, g, buf, scalars[0], momentum, weight_decay, nesterov, first)
