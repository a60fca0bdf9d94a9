"""Training-time augmentation: random crop with padding and random horizontal flip.

Walking Noise's authors train Fashion-MNIST, CIFAR-10 and SVHN with torchvision's
``RandomCrop(size, padding=4)`` then ``RandomHorizontalFlip()`` (MNIST without either), and
evaluate on the plain test images. For one image x (C, H, W) and padding p::

    padded = x surrounded by p pixels of ``fill`` on every side        (C, H + 2p, W + 2p)
    dy, dx ~ uniform integers in 0..2p                                  (the crop's corner)
    out    = padded[:, dy:dy + H, dx:dx + W]                            (C, H, W)
    out    = out[:, :, ::-1]  with probability 1/2                      (the flip)

``fill`` is a black pixel after the preprocessing, per channel (``Dataset.pad_value``): the
authors pad the raw image, before ``Normalize``.

The draws of a minibatch (2 small integer arrays and a boolean array) come from a NumPy
generator seeded with ``(seed, epoch, batch)`` on the host — the training loop gets them
through :class:`~tinyproj.data.sources.AugmentedSource`, where the per-epoch mechanism (and
why it resumes exactly) is described. On a device that is one small host→device copy of the
indices per step, and the crop itself is one gather on the device.

:func:`crop_flip_reference` is the readable loop, :meth:`CropFlip.apply` the vectorized one
(one fancy-indexing gather); the tests hold them equal.
"""
from __future__ import annotations

import numpy as np  # host-side draws

from .. import backend

__all__ = ["CropFlip", "crop_flip_reference", "AUGMENTATIONS", "draws"]

AUGMENTATIONS = ("none", "crop_flip", "crop", "flip")
"""The values of the ``augment`` setting."""
_STREAM = 0xA06                                # keeps these seeds apart from other streams


def draws(seed: int, epoch: int, batch: int, size: int, padding: int, flip: bool):
    """``(dy, dx, flipped)`` for the ``size`` images of one minibatch: int64 (size,) in
    0..2·padding each (all ``padding`` when there is no crop: the image stays in place) and
    bool (size,), from a NumPy generator seeded with (seed, epoch, batch)."""
    rng = np.random.default_rng([int(seed), int(epoch), int(batch), _STREAM])
    dy = rng.integers(0, 2 * padding + 1, size)
    dx = rng.integers(0, 2 * padding + 1, size)
    flipped = rng.random(size) < 0.5 if flip else np.zeros(size, dtype=bool)
    return dy, dx, flipped


def crop_flip_reference(x, dy, dx, flipped, padding: int, fill) -> np.ndarray:
    """The readable version, image by image, on host arrays: x (N, C, H, W) → (N, C, H, W)."""
    x = np.asarray(x)
    n, c, h, w = x.shape
    out = np.empty_like(x)
    for i in range(n):
        padded = np.empty((c, h + 2 * padding, w + 2 * padding), dtype=x.dtype)
        for ch in range(c):
            padded[ch] = fill[ch]
        padded[:, padding:padding + h, padding:padding + w] = x[i]
        crop = padded[:, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        out[i] = crop[:, :, ::-1] if flipped[i] else crop
    return out


class CropFlip:
    """Random crop (``padding`` pixels of ``fill`` around, then the original size) and/or
    random horizontal flip of training minibatches; ``aug(x, epoch, batch)`` (batch: the
    minibatch's number in its epoch).

    x: (N, C, H, W) float array on the backend in use; returns a new array of the same
    shape, dtype and backend. ``crop=False`` keeps every image in place, ``flip=False``
    never flips. ``fill``: one value per channel (or one for all).
    """

    def __init__(self, seed: int, padding: int = 4, crop: bool = True, flip: bool = True,
                 fill=0.0):
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"CropFlip: padding must be an integer >= 0, got {padding!r}")
        self.seed, self.padding = int(seed), padding if crop else 0
        self.crop, self.flip = bool(crop), bool(flip)
        self.fill = np.atleast_1d(np.asarray(fill, dtype=np.float64))

    def __repr__(self) -> str:
        return (f"CropFlip(padding={self.padding if self.crop else 0}, crop={self.crop}, "
                f"flip={self.flip})")

    def __call__(self, x, epoch: int, batch: int):
        dy, dx, flipped = draws(self.seed, epoch, batch, len(x), self.padding, self.flip)
        return self.apply(x, dy, dx, flipped)

    def apply(self, x, dy, dx, flipped):
        """Crop at (dy, dx) and flip where ``flipped``, all images at once (one gather)."""
        if x.ndim != 4:
            raise ValueError(f"CropFlip: expected images (N, C, H, W), got shape {x.shape}; "
                             "crop and flip need images (use --augment none for flat data)")
        xp = backend.xp_of(x)
        n, c, h, w = x.shape
        p = self.padding
        fill = np.broadcast_to(self.fill, (c,)) if self.fill.size == 1 else self.fill
        if fill.size != c:
            raise ValueError(f"CropFlip: {fill.size} fill values for {c} channels")
        padded = xp.empty((n, c, h + 2 * p, w + 2 * p), dtype=x.dtype)
        padded[...] = xp.asarray(fill.astype(np.float32)).reshape(1, c, 1, 1)
        padded[:, :, p:p + h, p:p + w] = x
        rows = dy[:, None] + np.arange(h)                              # (N, H)
        cols = dx[:, None] + np.arange(w)                              # (N, W)
        cols = np.where(flipped[:, None], cols[:, ::-1], cols)
        index = np.arange(n)[:, None, None]
        # advanced indices (N,1,1), (N,H,1), (N,1,W) around a slice: result (N, H, W, C)
        out = padded[xp.asarray(index), :, xp.asarray(rows[:, :, None]),
                     xp.asarray(cols[:, None, :])]
        return xp.ascontiguousarray(out.transpose(0, 3, 1, 2))
