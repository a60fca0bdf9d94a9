"""ImageNet's training and test transforms, and decoding them in parallel (issue 12).

The two transforms of AlexNet-style training, on one JPEG file each, to uint8 (3, crop, crop):

* **test** (:func:`decode_center`): shorter side resized to ``resize`` (256), then the
  centre ``crop`` × ``crop`` (227 for AlexNet: 227 → 55 → 27 → 13 → 6 feature maps).
* **train** (:func:`decode_random`): a *random-resized crop* — a box of area
  s·(W·H), s ~ U(0.08, 1), aspect ratio r with log r ~ U(log 3/4, log 4/3), placed uniformly
  in the image (10 tries, else the largest centred box of a permitted ratio), resized to
  ``crop`` × ``crop`` — then a horizontal flip with probability ½. (The scale and ratio
  ranges are the usual ones for ImageNet training since Szegedy et al. 2015.)

Speed: Pillow's JPEG decoder can scale by 1/2, 1/4 or 1/8 *while decoding*
(``Image.draft``), which skips most of the inverse DCT work. We ask for it whenever the
result still has at least the pixels the transform needs (the resize target for test; for
train, enough that the smallest box kept is still ≥ ``crop`` pixels wide — typical
ImageNet photos, ~500×375, are then decoded at full size, large ones are not).

Randomness: the draws for an image come from ``numpy.random.default_rng((seed, epoch,
index))``, so a result depends only on (seed, epoch, index) — the same in any worker process
and in any order (the per-epoch mechanism: :mod:`tinyproj.data.sources`).

:class:`DecodePool` decodes a batch with a pool of worker processes (decoding is pure
Python + C in Pillow and holds the GIL for part of the time, so threads do not scale).
The workers write each image straight into a shared-memory batch buffer and send back only
a tiny job description: returned through a pipe, a 227² image is ~155 KB to pickle, so
10,000 images/s would be ~1.5 GB/s through pipes into one process, which would cap the
pipeline; the parent copies the finished batch out once.
"""
from __future__ import annotations

import concurrent.futures
import math
import weakref
from multiprocessing import shared_memory

import numpy as np  # host-side image arrays

from .process_pool import ScriptSafePool, default_workers

__all__ = ["decode_center", "decode_random", "random_box", "DecodePool",
           "SCALE", "RATIO", "ALEXNET_CROP"]

SCALE = (0.08, 1.0)           # area of the random box, as a fraction of the image
RATIO = (3 / 4, 4 / 3)        # its width / height, drawn log-uniformly
ALEXNET_CROP = 227


def _open(path, need_side: int):
    """The image as RGB, decoded at the smallest JPEG scale keeping ≥ need_side pixels on its
    shorter side (``draft``; a no-op for other formats)."""
    from PIL import Image  # Pillow comes with matplotlib
    try:
        img = Image.open(path)
        w, h = img.size
        if img.format == "JPEG" and min(w, h) >= 2 * need_side:
            # draft picks the largest scale 1/2^k whose size is still >= the requested one
            k = min(3, int(math.log2(min(w, h) / need_side)))
            img.draft("RGB", (math.ceil(w / 2 ** k), math.ceil(h / 2 ** k)))
        return img.convert("RGB")
    except Exception as err:
        raise ValueError(f"could not decode image {path} ({type(err).__name__}: {err}); "
                         "delete or replace the file.") from err


def _chw(img) -> np.ndarray:
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()   # HWC -> CHW


def decode_center(path, resize: int = 256, crop: int = ALEXNET_CROP) -> np.ndarray:
    """uint8 (3, crop, crop): shorter side to ``resize`` (bilinear), centre crop."""
    from PIL import Image
    if crop > resize:
        raise ValueError(f"decode_center: crop {crop} is larger than resize {resize}")
    img = _open(path, resize)
    w, h = img.size
    scale = resize / min(w, h)
    img = img.resize((max(resize, round(w * scale)), max(resize, round(h * scale))),
                     Image.BILINEAR)
    w, h = img.size
    left, top = (w - crop) // 2, (h - crop) // 2
    return _chw(img.crop((left, top, left + crop, top + crop)))


def random_box(width: int, height: int, rng, scale=SCALE, ratio=RATIO) -> tuple:
    """(left, top, box_w, box_h) of a random-resized crop in a width × height image."""
    area = width * height
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(*scale)
        r = math.exp(rng.uniform(log_lo, log_hi))
        bw, bh = round(math.sqrt(target * r)), round(math.sqrt(target / r))
        if 0 < bw <= width and 0 < bh <= height:
            return int(rng.integers(0, width - bw + 1)), int(rng.integers(0, height - bh + 1)), \
                bw, bh
    # fallback: the whole image cut to the nearest permitted ratio, centred
    r = width / height
    if r < ratio[0]:
        bw, bh = width, round(width / ratio[0])
    elif r > ratio[1]:
        bw, bh = round(height * ratio[1]), height
    else:
        bw, bh = width, height
    return (width - bw) // 2, (height - bh) // 2, bw, bh


def decode_random(path, seed: int, epoch: int, index: int,
                  crop: int = ALEXNET_CROP) -> np.ndarray:
    """uint8 (3, crop, crop): random-resized crop + horizontal flip (p = ½), drawn from
    ``default_rng((seed, epoch, index))``."""
    from PIL import Image
    rng = np.random.default_rng((seed, epoch, index))
    # the smallest box kept has side ≥ sqrt(0.08·3/4) ≈ 0.245 of the shorter side; decode
    # at a scale that keeps that box at least `crop` pixels wide
    img = _open(path, math.ceil(crop / math.sqrt(SCALE[0] * RATIO[0])))
    left, top, bw, bh = random_box(*img.size, rng)
    img = img.resize((crop, crop), Image.BILINEAR, box=(left, top, left + bw, top + bh))
    out = _chw(img)
    if rng.random() < 0.5:
        out = out[:, :, ::-1].copy()
    return out


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
    """

    def __init__(self, workers: int | None = None):
        if workers is None:
            workers = default_workers()
        if workers < 0:
            raise ValueError(f"DecodePool: workers must be >= 0, got {workers}")
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
        if self._pool is None or not jobs:
            return Pending(self, images=np.stack([_decode_one(j) for j in jobs]))
        shape = (len(jobs), 3, crop, crop)
        name = self._buffer(math.prod(shape)).name
        chunk = max(1, len(jobs) // (4 * self.workers))
        futures = [self._pool.submit(_decode_into, name, shape, start, jobs[start:start + chunk])
                   for start in range(0, len(jobs), chunk)]
        self._pending = Pending(self, futures=futures, shape=shape)
        return self._pending

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
        self._pool, self._images, self.futures, self._shape = pool, images, futures, shape

    def result(self) -> np.ndarray:
        if self._images is not None:                 # decoded in the parent already
            images, self._images = self._images, None
            return images
        if self._pool._pending is not self:
            raise RuntimeError("DecodePool: this batch was dropped (another batch was started "
                               "after it, or the pool closed) or its result already taken")
        self._pool._pending = None
        self._pool._wait(self.futures)               # raises a worker's error, naming the file
        return np.ndarray(self._shape, np.uint8, buffer=self._pool._block.buf).copy()
