"""Decoding a batch of images in worker processes: :class:`DecodePool` (issue 12).

The transforms themselves (the test crop, the training random-resized crop + flip) are in
:mod:`tinyproj.data.imagenet_decode`; this module runs them for a whole batch at once.

Processes, not threads: decoding is Python + C in Pillow and holds the GIL for part of the
time, so threads do not scale. The workers are started by :class:`~tinyproj.data.process_pool.
ScriptSafePool` (forkserver: they hold none of this process's files, and never re-run the
calling script).

Shared memory, not pipes: each worker writes its images straight into one shared batch
block and sends back only a tiny job description. Returned through a pipe, a 227² image is
~155 KB to pickle, so 10,000 images/s would be ~1.5 GB/s through pipes into one process,
which would cap the pipeline; the parent copies the finished batch out once.

In the background: ``pool.start_random(...)`` / ``pool.start_center(...)`` hand a batch to
the workers and return a :class:`Pending` at once, so decoding overlaps whatever runs
meanwhile (the training loop's step: ``FolderSource.prefetch`` in data/sources.py). One batch
is in flight at a time; ``center`` and ``random`` are ``start_…(…).result()``.
"""
from __future__ import annotations

import concurrent.futures
import math
import weakref
from multiprocessing import shared_memory

import numpy as np  # host-side image arrays

from .imagenet_decode import ALEXNET_CROP, decode_center, decode_random
from .process_pool import ScriptSafePool, check_workers, default_workers

__all__ = ["DecodePool", "Pending"]


def _decode_one(job):
    kind, path, args = job
    return decode_random(path, *args) if kind == "train" else decode_center(path, *args)


_ATTACHED: dict = {}    # in a worker process: its attachment to the parent's batch block


def _attach(name: str) -> shared_memory.SharedMemory:
    """This worker's attachment to the shared block ``name``, kept across batches; attaching
    to a new block (the parent grew it) closes the old attachment.

    Attaching registers the block with the resource tracker, but the workers share the
    parent's tracker (forkserver, spawn and fork all pass it on), whose registry is a set:
    the name is already there, and the parent's unlink removes it. Unregistering here, the
    usual advice for unrelated processes, would remove the parent's entry instead."""
    block = _ATTACHED.get(name)
    if block is None:
        for old in _ATTACHED.values():
            old.close()
        _ATTACHED.clear()
        block = _ATTACHED[name] = shared_memory.SharedMemory(name)
    return block


def _write(name: str, shape: tuple, index: int, image: np.ndarray) -> None:
    """Store ``image`` as row ``index`` of the uint8 batch ``shape`` in the block ``name``."""
    np.ndarray(shape, np.uint8, buffer=_attach(name).buf)[index] = image


def _decode_into(name: str, shape: tuple, start: int, jobs) -> None:
    """In a worker: decode ``jobs`` into rows start, start + 1, ... of the batch.

    Each image is decoded before the block is viewed (in :func:`_write`), so a decoding error
    — which the worker keeps, with its frames, until the next one — holds no view of the
    block, and the block can be closed when the parent replaces it."""
    for index, job in enumerate(jobs, start):
        _write(name, shape, index, _decode_one(job))


def _release(block: shared_memory.SharedMemory) -> None:
    """Close and unlink the parent's block (also run by ``weakref.finalize``)."""
    block.close()
    block.unlink()


class DecodePool:
    """Decode batches of images with ``workers`` processes (0: in this process).

    ``pool.center(paths, resize, crop)`` and ``pool.random(paths, seed, epoch, indices,
    crop)`` return uint8 (B, 3, crop, crop), a fresh array of the caller's. Use as a context
    manager, or call ``close()`` (which also unlinks the shared batch block; so does garbage
    collection or the end of the program, if the pool was never closed).
    The default, ``workers=None``, is the number of CPUs this process may use, at most 16.
    Refused (ValueError): ``workers`` below 0 or above 4 per CPU, at least 16 (:func:`~tinyproj.
    data.process_pool.max_workers`; each worker is a process, and decoding is CPU-bound).

    An empty list of paths gives an empty (0, 3, crop, crop) array; ``random`` with fewer or
    more ``indices`` than ``paths`` is refused (ValueError): each image's draw depends on its
    index, so a missing one cannot be guessed.

    The workers ignore Ctrl-C (data/process_pool.py): the KeyboardInterrupt is raised here, in
    the waiting parent, and leaving the ``with`` block (``close()``) shuts them down.
    """

    def __init__(self, workers: int | None = None):
        if workers is None:
            workers = default_workers()
        check_workers(workers, "DecodePool: workers")
        self.workers = workers
        # forkserver workers that hold none of this process's files and never re-run the
        # calling script (a lesson has no main guard): see data/process_pool.py
        self._pool = ScriptSafePool(workers) if workers > 0 else None
        self._block = None          # the shared batch buffer, made by the first batch
        self._unlink = None         # its weakref.finalize
        self._pending = None        # the batch in flight (start_center / start_random)

    def _buffer(self, nbytes: int) -> shared_memory.SharedMemory:
        """The shared block, reused while it holds ``nbytes``, else replaced by one that does."""
        if self._block is None or self._block.size < nbytes:
            self._drop_buffer()
            self._block = shared_memory.SharedMemory(create=True, size=nbytes)
            self._unlink = weakref.finalize(self, _release, self._block)
        return self._block

    def _drop_buffer(self) -> None:
        """Unlink the shared block, if there is one (the next batch makes a new one)."""
        if self._unlink is not None:
            self._unlink()          # runs _release once, and no more at exit
        self._block = self._unlink = None

    def _start(self, jobs, crop: int) -> "Pending":
        """Hand ``jobs`` to the workers and return at once; ``.result()`` waits for the batch.

        One batch is in flight at a time (they share the block): a batch started while another
        is pending first waits for that one, whose images are then dropped."""
        self._settle()
        if not jobs:
            return Pending(self, images=np.zeros((0, 3, crop, crop), np.uint8))
        if self._pool is None:
            return Pending(self, images=np.stack([_decode_one(j) for j in jobs]))
        shape = (len(jobs), 3, crop, crop)
        name = self._buffer(math.prod(shape)).name
        chunk = max(1, len(jobs) // (4 * self.workers))
        futures = [self._pool.submit(_decode_into, name, shape, start, jobs[start:start + chunk])
                   for start in range(0, len(jobs), chunk)]
        self._pending = Pending(self, futures=futures, shape=shape)
        return self._pending

    def _finish(self, pending: "Pending") -> np.ndarray:
        """The images of ``pending``, the batch in flight: wait for it, copy it out."""
        if self._pending is not pending:
            raise RuntimeError("DecodePool: this batch was dropped (another batch was started "
                               "after it, or the pool closed) or its result already taken")
        self._pending = None
        self._wait(pending.futures)                  # raises a worker's error, naming the file
        return np.ndarray(pending.shape, np.uint8, buffer=self._block.buf).copy()

    def _settle(self) -> None:
        """Wait for a batch still in flight (its images and errors are dropped)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            try:
                self._wait(pending.futures)
            except ValueError:      # a bad file in a batch nobody asked for any more
                pass

    def _wait(self, futures) -> None:
        """Wait until every task is done — so no worker still writes into the block when the
        next batch reuses it — then raise the first error (a worker's ValueError names the
        file; the pool stays usable)."""
        try:
            concurrent.futures.wait(futures)
        except BaseException:       # interrupted (Ctrl-C): tasks may still be running, so
            for future in futures:  # let them write into a block that no batch will read
                future.cancel()
            self._drop_buffer()
            raise
        for future in futures:
            future.result()

    def start_center(self, paths, resize: int = 256, crop: int = ALEXNET_CROP) -> "Pending":
        """:meth:`center`, started in the background: decoding overlaps what runs meanwhile."""
        return self._start([("test", p, (resize, crop)) for p in paths], crop)

    def start_random(self, paths, seed: int, epoch: int, indices,
                     crop: int = ALEXNET_CROP) -> "Pending":
        """:meth:`random`, started in the background."""
        paths, indices = list(paths), list(indices)
        if len(paths) != len(indices):
            raise ValueError(f"DecodePool.random: {len(paths)} paths but {len(indices)} "
                             "indices; give one index per image (its draw depends on it)")
        return self._start([("train", p, (seed, epoch, int(i), crop))
                            for p, i in zip(paths, indices)], crop)

    def center(self, paths, resize: int = 256, crop: int = ALEXNET_CROP) -> np.ndarray:
        return self.start_center(paths, resize, crop).result()

    def random(self, paths, seed: int, epoch: int, indices, crop: int = ALEXNET_CROP):
        return self.start_random(paths, seed, epoch, indices, crop).result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        self._pending = None
        self._drop_buffer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Pending:
    """A batch being decoded by a :class:`DecodePool`; ``result()`` waits for it and returns
    uint8 (B, 3, crop, crop), the caller's own array (once; a second call raises)."""

    def __init__(self, pool: DecodePool, images=None, futures=None, shape=None):
        self._pool, self._images, self.futures, self.shape = pool, images, futures, shape

    def result(self) -> np.ndarray:
        if self._images is not None:                 # decoded in this process already
            images, self._images = self._images, None
            return images
        return self._pool._finish(self)
