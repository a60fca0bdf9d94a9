"""Minibatches gathered on the device from a device-side position (what a CUDA graph needs).

The training loop shuffles the training set once per epoch (``order``, drawn with the run's
generator on the host and copied up once per epoch). Minibatch b of the epoch is images
``order[b·B : (b+1)·B]``. A host slice ``order[first:first + B]`` bakes ``first`` into the
step: a CUDA graph that captured it would gather the captured batch at every replay. So the
position lives in device memory and the step moves it itself::

    positions = lanes + offset         lanes = [0, 1, ..., B−1] (made once), offset 0-d int64
    offset   += B                      on the device, inside the step
    x, y      = images[order[positions]], labels[order[positions]]

Three launches more than the slice (the add, the increment, the gather of the indices), no
sync, no copy; the same images as the slice, so eager results are unchanged. An epoch's last
batch, when partial, has another shape: the training loop gathers it eagerly from a slice of
``order`` (a graph runs only the captured shape). ``start_epoch`` rewrites the order in place (the same device array,
which a captured graph keeps reading) and sets the offset with one fill launch.
"""
from __future__ import annotations

import numpy as np

from .. import backend

__all__ = ["DeviceBatches"]


class DeviceBatches:
    """Full minibatches of ``batch_size`` from a ResidentSource, by a device-side offset."""

    def __init__(self, source, batch_size: int):
        self.source = source
        self.batch_size = int(batch_size)
        xp = backend.xp_of(source.x)
        self.order = None                                  # (n,) int64, rewritten per epoch
        self.offset = xp.zeros((), dtype=np.int64)
        self.lanes = xp.arange(self.batch_size, dtype=np.int64)

    def start_epoch(self, order, batch: int = 0) -> None:
        """The epoch's order (host ints; one host→device copy) and its first batch ``batch``
        (a resumed run starts mid-epoch)."""
        host = np.asarray(order, dtype=np.int64)
        if self.order is None or self.order.shape != host.shape:
            self.order = backend.to_device(host, "gpu")
        else:
            self.order.set(host)                           # the same array, new values
        self.offset.fill(int(batch) * self.batch_size)

    def next_full(self):
        """``(x, y)`` of the batch at the device offset, and the offset moved on (no sync)."""
        positions = self.lanes + self.offset
        self.offset += self.batch_size
        return self.source.batch(self.order[positions])
