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

Decoding many of them at once, in worker processes: :mod:`tinyproj.data.decode_pool`.
"""
from __future__ import annotations

import math

import numpy as np  # host-side image arrays

__all__ = ["decode_center", "decode_random", "random_box", "open_rgb", "undecodable",
           "shorter_side_to", "SCALE", "RATIO", "ALEXNET_CROP"]

SCALE = (0.08, 1.0)           # area of the random box, as a fraction of the image
RATIO = (3 / 4, 4 / 3)        # its width / height, drawn log-uniformly
ALEXNET_CROP = 227


def open_rgb(path, need_side: int):
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
        raise undecodable(path, err) from err


def undecodable(path, err) -> ValueError:
    """The error for an image that did not decode, with the way on: a missing file was moved
    or deleted after its folder was listed; anything else is a damaged or foreign file."""
    if isinstance(err, FileNotFoundError):
        return ValueError(f"image {path} is gone (moved or deleted after its folder was "
                          "listed); put it back, or start again so the folder is listed anew.")
    return ValueError(f"could not decode image {path} ({type(err).__name__}: {err}); "
                      "delete or replace the file.")


def _chw(img) -> np.ndarray:
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()   # HWC -> CHW


def shorter_side_to(img, side: int):
    """``img`` resized (bilinear) so that its shorter side is ``side`` pixels, the other in
    proportion and never below ``side``: the test transform's resize, and the one
    ``prepare-imagenet`` stores (data/imagenet_shrink.py)."""
    from PIL import Image
    w, h = img.size
    scale = side / min(w, h)
    return img.resize((max(side, round(w * scale)), max(side, round(h * scale))),
                      Image.BILINEAR)


def decode_center(path, resize: int = 256, crop: int = ALEXNET_CROP) -> np.ndarray:
    """uint8 (3, crop, crop): shorter side to ``resize`` (bilinear), centre crop."""
    if crop > resize:
        raise ValueError(f"decode_center: crop {crop} is larger than resize {resize}")
    img = shorter_side_to(open_rgb(path, resize), resize)
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
    img = open_rgb(path, math.ceil(crop / math.sqrt(SCALE[0] * RATIO[0])))
    left, top, bw, bh = random_box(*img.size, rng)
    img = img.resize((crop, crop), Image.BILINEAR, box=(left, top, left + bw, top + bh))
    out = _chw(img)
    if rng.random() < 0.5:
        out = out[:, :, ::-1].copy()
    return out
