"""Random access to a training or test set by example index, in memory or streamed.

The training loop draws a permutation of example indices and asks a source for
the batch at a slice of it, so the same loop (and the same exact resume) works
for an in-memory array and for a folder of images decoded on demand.

    source = ArraySource(x, y)               # x (N, ...) host array, y (N,) ints
    source = FolderSource(ImageFolder(root)) # streamed ImageNet-style folder
    len(source); xb, yb = source.batch(indices)   # float32 / int64 on the backend
"""
from __future__ import annotations

import numpy as np  # host-side indexing of host arrays

from tinyproj import backend

from .imagenet import normalize_imagenet

__all__ = ["ArraySource", "ResidentSource", "FolderSource"]


class ArraySource:
    """Examples held in host arrays: ``x`` (N, ...) numeric, ``y`` (N,) integer labels."""

    def __init__(self, x, y):
        if len(x) != len(y):
            raise ValueError(f"ArraySource: x has {len(x)} examples but y has {len(y)}")
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x.shape[1:])

    def batch(self, indices):
        """``(x float32 (B, ...), y int64 (B,))`` for the given indices, on the backend."""
        idx = np.asarray(indices)
        return (backend.asarray(self.x[idx], dtype=backend.default_float),
                backend.asarray(self.y[idx], dtype=np.int64))


class ResidentSource:
    """An :class:`ArraySource` copied to the device once (CuPy, the stand-in), for training.

    ``batch(indices)`` takes a **device** index array and gathers the batch there: one
    launch each for x and y, no host→device copy per step. The whole set is copied up
    here, once (CIFAR-10's 45,000 training images: 553 MB of float32).
    """

    def __init__(self, source: ArraySource):
        self.x = backend.to_device(np.asarray(source.x, dtype=backend.default_float), "gpu")
        self.y = backend.to_device(np.asarray(source.y, dtype=np.int64), "gpu")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x.shape[1:])

    def batch(self, indices):
        """``(x float32 (B, ...), y int64 (B,))`` on the device; ``indices`` a device array."""
        return self.x[indices], self.y[indices]


class FolderSource:
    """Examples decoded from an :class:`~tinyproj.data.ImageFolder` at each request."""

    def __init__(self, folder):
        self.folder = folder

    def __len__(self) -> int:
        return len(self.folder)

    @property
    def input_shape(self) -> tuple:
        return (3, self.folder.crop, self.folder.crop)

    def batch(self, indices):
        images = np.stack([self.folder[int(i)][0] for i in indices])
        labels = self.folder.labels[np.asarray(indices)]
        return normalize_imagenet(images), backend.asarray(labels, dtype=np.int64)
