"""ImageNet (or any image classification set) from a folder of class sub-folders, streamed.

Layout::

    root/
      n01440764/  a.JPEG  b.JPEG ...      one sub-folder per class
      n01443537/  ...

Classes are the sub-folder names in sorted order (label = position), images are listed in
sorted order within each class. Nothing is decoded until a batch asks for it, so the
whole of ImageNet never has to fit in memory. (ILSVRC's validation images come in one flat
folder with a separate label list; sort them into class sub-folders first.)

Each image is decoded with Pillow, converted to RGB, resized so that its *shorter* side is
``resize`` (256) with bilinear filtering, and center-cropped to ``crop`` x ``crop`` (224):
the usual AlexNet evaluation transform. Batches are uint8 (B, 3, crop, crop) on the host;
:func:`normalize_imagenet` turns one into float32 on the backend.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np  # host-side image decoding

from tinyproj import backend

from . import files
from .batches import epoch_order
from .imagenet_decode import undecodable

__all__ = ["IMAGE_EXTENSIONS", "ImageFolder", "load_image", "normalize_imagenet",
           "IMAGENET_MEAN", "IMAGENET_STD", "IMAGENET_FOLDER", "IMAGENET_CROP",
           "locate_imagenet"]

IMAGENET_FOLDER = "imagenet"      # <data_dir>/imagenet/{train,val}/<class>/<image>
IMAGENET_CROP = 227               # what training sees: AlexNet's 227 (227 → 55 → 27 → 13 → 6)

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)  # per-channel RGB mean of ImageNet
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def load_image(path, resize=256, crop=224) -> np.ndarray:
    """Decode one image to uint8 (3, crop, crop): RGB, shorter side to ``resize``, center crop.

    ``resize=None`` skips the resize (the crop must then fit the image); ``crop=None``
    skips the crop (then the shape is (3, H, W) after resizing).
    """
    from PIL import Image  # Pillow comes with matplotlib

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")  # grey and CMYK JPEGs exist in ImageNet
    except Exception as err:
        raise undecodable(path, err) from err
    if resize is not None:
        w, h = img.size
        scale = resize / min(w, h)
        size = (max(resize, round(w * scale)), max(resize, round(h * scale)))
        img = img.resize(size, Image.BILINEAR)
    if crop is not None:
        w, h = img.size
        if w < crop or h < crop:
            raise ValueError(f"image {path} is {w}x{h} after resizing, smaller than the crop "
                             f"{crop}x{crop}; use resize >= crop.")
        left, top = (w - crop) // 2, (h - crop) // 2
        img = img.crop((left, top, left + crop, top + crop))
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()  # HWC -> CHW


def locate_imagenet(data_dir=None) -> Path:
    """The ImageNet folder: ``<data_dir>/imagenet`` once it holds ``train/`` and ``val/``.

    ``data_dir`` defaults to :func:`tinyproj.data.location.data_dir`. A ``data_dir`` that
    itself holds ``train/`` and ``val/`` is accepted too (runs made before this layout
    pointed ``--data-dir`` at the ImageNet folder). ImageNet cannot be downloaded
    automatically, so a missing folder ends in a :class:`~tinyproj.data.files.DatasetNotFoundError`
    that says how to lay it out.
    """
    base = files.resolve_data_dir(data_dir)
    for root in (base / IMAGENET_FOLDER, base):
        if (root / "train").is_dir() and (root / "val").is_dir():
            return root
    root = base / IMAGENET_FOLDER
    missing = [f"{sub}/" for sub in ("train", "val") if not (root / sub).is_dir()]
    raise files.not_found(
        "ImageNet", root, missing, "ImageNet is not downloaded automatically: get ILSVRC-2012 "
        "from image-net.org and sort its images into one sub-folder per class, "
        f"{root}/train/<class>/*.JPEG and {root}/val/<class>/*.JPEG.")


class ImageFolder:
    """A lazily loaded image classification set: ``root/<class>/<image>``.

    Attributes: ``classes`` (sorted sub-folder names; hidden ones such as
    ``.ipynb_checkpoints`` are not classes), ``class_to_idx``, ``samples`` (a list of
    ``(path, label)`` sorted by class then file name), ``labels`` int64 (N,).

    ``classes``: the class names to number by, in order — the training folder's for its
    validation folder, so that a class missing there (no folder) does not shift the labels
    of the classes after it. A sub-folder that is not one of them is refused.

    ``folder[i]`` decodes one image: ``(uint8 (3, crop, crop), int label)``.
    ``folder.batches(batch_size, rng=None, shuffle=False)`` yields
    ``(uint8 (B, 3, crop, crop), int64 (B,))`` host arrays, decoding only that batch.
    """

    def __init__(self, root, resize=256, crop=224, extensions=IMAGE_EXTENSIONS, classes=None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise files.DatasetNotFoundError(
                f"ImageFolder: {self.root} is not a folder. Point it at a folder with one "
                "sub-folder of images per class.", flag="--data-dir")
        self.resize, self.crop = resize, crop
        extensions = tuple(e.lower() for e in extensions)
        present = sorted(p.name for p in self.root.iterdir()
                         if p.is_dir() and not p.name.startswith("."))
        if not present:
            raise FileNotFoundError(f"ImageFolder: {self.root} has no sub-folders; expected one "
                                    "sub-folder of images per class (root/<class>/<image>).")
        self.classes = present if classes is None else list(classes)
        unknown = sorted(set(present) - set(self.classes))
        if unknown:
            raise files.DatasetError(
                f"ImageFolder: {self.root} has class folders the training set does not have: "
                f"{', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}; their labels "
                "would be meaningless. Give train/ and val/ the same class folders.",
                flag="--data-dir")
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.samples = []
        empty = []
        for name in present:
            found = sorted(p for p in (self.root / name).iterdir()
                           if p.is_file() and p.suffix.lower() in extensions)
            if not found:
                empty.append(name)
            self.samples += [(p, self.class_to_idx[name]) for p in found]
        if not self.samples:
            raise FileNotFoundError(f"ImageFolder: no images with extensions {extensions} under "
                                    f"{self.root}/<class>/.")
        if empty:
            warnings.warn(f"ImageFolder: classes without images in {self.root}: "
                          f"{', '.join(empty[:10])}{' ...' if len(empty) > 10 else ''}",
                          stacklevel=2)
        self.labels = np.array([label for _, label in self.samples], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i):
        path, label = self.samples[i]
        return load_image(path, self.resize, self.crop), label

    def __repr__(self) -> str:
        return (f"ImageFolder({str(self.root)!r}: {len(self)} images, {len(self.classes)} "
                f"classes, resize={self.resize}, crop={self.crop})")

    def batches(self, batch_size, rng=None, shuffle=False, drop_last=False):
        """Yield ``(images uint8 (B, 3, crop, crop), labels int64 (B,))``, decoded lazily.

        Shuffling uses ``backend.permutation(rng, N)`` like :func:`iterate_minibatches`.
        """
        n = len(self)
        order = epoch_order(n, rng, shuffle)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            idx = order[start:start + batch_size]
            images = np.stack([self[int(i)][0] for i in idx])
            yield images, self.labels[idx]


def normalize_imagenet(images, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """uint8 (B, 3, H, W) to float32 ``(images - mean) / std`` per channel, on the backend."""
    xp = backend.xp()
    x = backend.asarray(images, dtype=np.float32)
    mean = xp.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std = xp.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    return (x - mean) / std
