"""Random access to a training or test set by example index, in memory or streamed — and
THE one way a training set draws anew each epoch.

The training loop draws a permutation of example indices and asks a source for the batch at a
slice of it, so the same loop (and the same exact resume) works for an in-memory array, for a
copy of it on the device and for a folder of images decoded on demand. Every source answers
one method::

    len(source)
    xb, yb = source.batch(indices, epoch=None, minibatch=None)   # float32 / int64, backend

A source that decodes in the background may also offer ``source.prefetch(indices, epoch,
minibatch)``: the training loop announces the next minibatch with it before running the
current step (:class:`FolderSource`: decoding overlaps the step; same pixels either way).

**Per-epoch randomness** (data augmentation) is a property of the source, asked for with
``epoch``: ``epoch=None`` is the deterministic view (evaluation, batch-norm re-estimation,
what a plain source always returns); ``epoch=e, minibatch=b`` is the b-th training minibatch
of epoch e. A source whose answer depends on them says so with ``per_epoch = True`` and draws
from a NumPy generator seeded by (seed, epoch, index) — :class:`FolderSource` with
``train=True``: ImageNet's random-resized crop + flip — or by (seed, epoch, minibatch) —
:class:`AugmentedSource`: crop + flip of a whole minibatch (:mod:`tinyproj.data.augment`).
Never from the run's generator: a resumed run, which knows its epoch and minibatch, sees the
same pixels as an uninterrupted one, and the run's own random stream (shuffling, projections)
is the same with augmentation on or off. The draws are made on the host, so the CPU and the
device see the same pixels; a CUDA graph would replay the captured draws, so the training
loop runs the steps of a ``per_epoch`` source eagerly.

    ArraySource(x, y)                     # x (N, ...) host array, y (N,) ints
    ResidentSource(array_source)          # the same, copied to the device once
    FolderSource(ImageFolder(root), train=False | True, seed=s)   # streamed images
    AugmentedSource(source, CropFlip(seed))                        # crop/flip per minibatch
"""
from __future__ import annotations

import numpy as np  # host-side indexing of host arrays

from tinyproj import backend

from .imagenet import normalize_imagenet

__all__ = ["ArraySource", "ResidentSource", "FolderSource", "AugmentedSource"]


class _HeldArrays:
    """What the sources holding every example in two arrays share: ``x`` (N, ...), ``y`` (N,)."""

    per_epoch = False

    def __len__(self) -> int:
        return len(self.x)

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x.shape[1:])


class ArraySource(_HeldArrays):
    """Examples held in host arrays: ``x`` (N, ...) numeric, ``y`` (N,) integer labels."""

    def __init__(self, x, y):
        if len(x) != len(y):
            raise ValueError(f"ArraySource: x has {len(x)} examples but y has {len(y)}")
        self.x, self.y = x, y

    def batch(self, indices, epoch=None, minibatch=None):
        """``(x float32 (B, ...), y int64 (B,))`` for the given indices, on the backend (the
        same for every epoch)."""
        idx = np.asarray(indices)
        return (backend.asarray(self.x[idx], dtype=backend.default_float),
                backend.asarray(self.y[idx], dtype=np.int64))


class ResidentSource(_HeldArrays):
    """An :class:`ArraySource` copied to the device once (CuPy, the stand-in), for training.

    ``batch(indices)`` takes a **device** index array and gathers the batch there: one
    launch each for x and y, no host→device copy per step. The whole set is copied up
    here, once (CIFAR-10's 45,000 training images: 553 MB of float32).
    """

    def __init__(self, source: ArraySource):
        self.x = backend.to_device(np.asarray(source.x, dtype=backend.default_float), "gpu")
        self.y = backend.to_device(np.asarray(source.y, dtype=np.int64), "gpu")

    def batch(self, indices, epoch=None, minibatch=None):
        """``(x float32 (B, ...), y int64 (B,))`` on the device; ``indices`` a device array."""
        return self.x[indices], self.y[indices]


class FolderSource:
    """Examples decoded from an :class:`~tinyproj.data.ImageFolder` at each request.

    train=False (evaluation): shorter side 256, centre crop ``folder.crop`` — the plain
    decoder, or, with ``workers``, the same transform with JPEG draft decoding in a pool of
    processes (:mod:`tinyproj.data.imagenet_decode`). train=True: random-resized crop to
    ``folder.crop`` + horizontal flip drawn from (seed, epoch, index), decoded by the pool
    (:func:`~tinyproj.data.imagenet_decode.decode_random`); a batch asked for without an
    epoch (batch-norm re-estimation, for instance) gets the centre crop. workers: decoding
    processes (None: the CPUs this process may use, at most 16; 0: in this process).
    """

    def __init__(self, folder, train: bool = False, seed: int = 0, workers=0):
        self.folder, self.train, self.seed, self.workers = folder, train, seed, workers
        self.per_epoch = bool(train)
        self._pool = None
        self._ahead = None          # (key, Pending): the batch prefetch() started
        self.prefetched = 0         # batches served from a prefetch (the rest decoded on demand)

    def __len__(self) -> int:
        return len(self.folder)

    @property
    def input_shape(self) -> tuple:
        return (3, self.folder.crop, self.folder.crop)

    def _decoder(self):
        if self._pool is None:
            from .decode_pool import DecodePool
            self._pool = DecodePool(self.workers)
        return self._pool

    def _key(self, idx, epoch) -> tuple:
        """What decides a batch's pixels: its images, and the epoch of a training crop."""
        return (tuple(idx), int(epoch) if self.train and epoch is not None else None)

    def _start(self, idx, epoch):
        """The batch's decoding, started in the pool (a Pending)."""
        paths = [self.folder.samples[i][0] for i in idx]
        if self.train and epoch is not None:
            return self._decoder().start_random(paths, self.seed, int(epoch), idx,
                                                crop=self.folder.crop)
        return self._decoder().start_center(paths, self.folder.resize, self.folder.crop)

    def prefetch(self, indices, epoch=None, minibatch=None) -> None:
        """Start decoding the batch that ``batch(indices, epoch, minibatch)`` will ask for, in
        the pool's processes, and return at once: the training loop calls it with the next
        minibatch before it runs the current step, so on a GPU the decoding of batch b + 1
        overlaps step b. The pixels are the ones ``batch`` would decode (a function of the
        indices and the epoch only); a batch asked for that was not prefetched is decoded
        then. Without worker processes (workers=0) there is nothing to overlap: a no-op."""
        if self.workers == 0:
            return
        idx = [int(i) for i in indices]
        self._ahead = (self._key(idx, epoch), self._start(idx, epoch))

    def batch(self, indices, epoch=None, minibatch=None):
        """``(x float32 (B, 3, crop, crop), y int64 (B,))`` on the backend."""
        idx = [int(i) for i in indices]
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == self._key(idx, epoch):
            images = ahead[1].result()                   # prefetched
            self.prefetched += 1
        elif self.workers == 0 and not (self.train and epoch is not None):
            images = np.stack([self.folder[i][0] for i in idx])
        else:
            images = self._start(idx, epoch).result()    # drops a prefetch of another batch
        labels = self.folder.labels[np.asarray(idx, dtype=np.int64)]
        return normalize_imagenet(images), backend.asarray(labels, dtype=np.int64)

    def close(self) -> None:
        """Stop the decoding processes (they also stop when the program ends)."""
        self._ahead = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None


class AugmentedSource:
    """``source`` with a transform of each training minibatch drawn per (epoch, minibatch).

    ``transform(x, epoch, minibatch) -> x`` (:class:`~tinyproj.data.augment.CropFlip`, seeded
    with the run's seed) is applied to ``source.batch(indices, epoch, minibatch)``'s images
    when an epoch is given; without one the batch is the source's own, untransformed. The
    images are transformed on the backend they come in on (host or device).
    """

    per_epoch = True

    def __init__(self, source, transform):
        self.source, self.transform = source, transform

    def __len__(self) -> int:
        return len(self.source)

    @property
    def input_shape(self) -> tuple:
        return self.source.input_shape

    def batch(self, indices, epoch=None, minibatch=None):
        x, y = self.source.batch(indices, epoch=epoch, minibatch=minibatch)
        if epoch is None:
            return x, y
        if minibatch is None:
            raise ValueError("AugmentedSource.batch: an epoch needs its minibatch number "
                             "(the draws are seeded by (seed, epoch, minibatch))")
        return self.transform(x, int(epoch), int(minibatch)), y
