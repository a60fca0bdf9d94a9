"""MNIST and Fashion-MNIST from their IDX files.

Both come as four gzip-compressed IDX files in a folder (``<data_dir>/mnist`` and
``<data_dir>/fashion-mnist``)::

    train-images-idx3-ubyte.gz   60000 images 28x28 uint8
    train-labels-idx1-ubyte.gz   60000 labels uint8 in 0..9
    t10k-images-idx3-ubyte.gz    10000 images
    t10k-labels-idx1-ubyte.gz    10000 labels

The IDX format: a 4-byte magic number ``00 00 <type> <ndim>`` (type 0x08 = unsigned byte),
then ``ndim`` big-endian 32-bit sizes, then the values in C order. Images have magic 2051
(``00 00 08 03``), labels 2049 (``00 00 08 01``). Already-decompressed files (the same names
without ``.gz``) are read too.
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np  # host-side file I/O

from . import files
from .files import FRESH_COPY, DatasetError, resolve_data_dir, warn_on_md5_mismatch

__all__ = ["MNIST_MIRRORS", "MNIST_MD5", "FASHION_MNIST_MIRRORS", "FASHION_MNIST_MD5",
           "FASHION_MNIST_CLASSES", "read_idx", "load_mnist", "load_fashion_mnist",
           "download_mnist", "locate_mnist", "mnist_files"]

MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
FASHION_MNIST_MIRRORS = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
]
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
# Debian's package `dataset-fashion-mnist` installs the files here (gzip headers rewritten,
# so the .gz md5 sums differ from the official ones while the contents are identical).
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049
_SPLITS = {  # split -> (images file, labels file, number of examples)
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}
_DATASETS = {  # name -> (sub-folder, mirrors, md5s)
    "MNIST": ("mnist", MNIST_MIRRORS, MNIST_MD5),
    "Fashion-MNIST": ("fashion-mnist", FASHION_MNIST_MIRRORS, FASHION_MNIST_MD5),
}


def read_idx(path, expected_magic=None) -> np.ndarray:
    """Read one IDX file (gzip-compressed when the name ends in ``.gz``) as a uint8 array.

    Checks the magic number (``expected_magic``: 2051 images, 2049 labels, None = any
    unsigned-byte IDX file) and that the file holds exactly as many values as its header
    says. Raises :class:`DatasetError` naming the file and the problem otherwise.
    """
    path = Path(path)
    fix = f" To fix it, {FRESH_COPY}."
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError; truncated gzip: EOFError
        raise DatasetError(f"{path} could not be decompressed ({type(err).__name__}: {err}); "
                           "it is truncated or not a gzip file." + fix) from err
    if len(raw) < 4:
        raise DatasetError(f"{path} is {len(raw)} bytes long, too short for an IDX header." + fix)
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    magic = struct.unpack(">I", raw[:4])[0]
    if zero != 0 or dtype_code != 0x08 or (expected_magic is not None and magic != expected_magic):
        want = f"{expected_magic}" if expected_magic is not None else "an unsigned-byte IDX file"
        raise DatasetError(f"{path} starts with magic number {magic} (bytes {raw[:4].hex()}), "
                           f"expected {want}; this is not the right IDX file." + fix)
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path} ends inside its header." + fix)
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise DatasetError(f"{path}: the header announces shape {shape} ({size} values) but the "
                           f"file holds {len(raw) - header}; it is truncated or padded." + fix)
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find(folder: Path, name: str):
    """``folder/name`` or its decompressed twin (``name`` without ``.gz``), whichever exists."""
    for candidate in (folder / name, folder / name[:-3]):
        if candidate.is_file():
            return candidate
    return None


def _missing(folder: Path, md5s: dict) -> list:
    return [name for name in md5s if _find(folder, name) is None]


def download_mnist(data_dir=None, dataset="MNIST") -> Path:
    """Download the four files of ``dataset`` ("MNIST" or "Fashion-MNIST") that are missing.

    A missing data folder is created when its parent exists; a missing parent is refused
    (``files.download``)."""
    sub, mirrors, md5s = _DATASETS[dataset]
    root = resolve_data_dir(data_dir)
    folder = root / sub
    for name in _missing(folder, md5s):
        files.download([mirror + name for mirror in mirrors], md5s[name], folder, name,
                       dataset=dataset, root=root)
    return folder


def locate_mnist(dataset="MNIST", data_dir=None, download=True) -> Path:
    """The folder holding all four files of ``dataset`` ("MNIST" or "Fashion-MNIST").

    ``<data_dir>/mnist`` (or ``fashion-mnist``); for Fashion-MNIST also Debian's folder.
    Missing files are downloaded when ``download`` is true; otherwise, or when that
    fails, a :class:`DatasetNotFoundError` says what to do.
    """
    sub, mirrors, md5s = _DATASETS[dataset]
    folder = resolve_data_dir(data_dir) / sub
    if not _missing(folder, md5s):
        return folder
    if dataset == "Fashion-MNIST" and DEBIAN_FASHION_MNIST.is_dir() \
            and not _missing(DEBIAN_FASHION_MNIST, md5s):
        return DEBIAN_FASHION_MNIST
    if download:
        download_mnist(data_dir, dataset)
    missing = _missing(folder, md5s)
    if missing:
        raise files.not_found(
            dataset, folder, missing, f"Load it with download allowed (needs internet), or "
            f"download the four files from {mirrors[0]} elsewhere and copy them into {folder}.")
    return folder


def mnist_files(folder) -> list:
    """The four files of an MNIST-style folder as found there (.gz or decompressed)."""
    return [_find(Path(folder), name) for name in MNIST_MD5]


def _load(dataset: str, data_dir, download: bool):
    folder = locate_mnist(dataset, data_dir, download)
    # Debian rewrote the gzip headers of its copy, so its md5 sums are expected to differ.
    return _read_splits(folder, dataset, _DATASETS[dataset][2],
                        check_md5=folder != DEBIAN_FASHION_MNIST)


def _read_splits(folder: Path, dataset: str, md5s: dict, check_md5: bool):
    out = []
    for split, (images_name, labels_name, count) in _SPLITS.items():
        images_path, labels_path = _find(folder, images_name), _find(folder, labels_name)
        images = read_idx(images_path, _IMAGES_MAGIC)
        labels = read_idx(labels_path, _LABELS_MAGIC)
        if images.shape != (count, 28, 28):
            raise DatasetError(f"{images_path} holds images of shape {images.shape}, expected "
                               f"({count}, 28, 28) for the {dataset} {split} set. To fix it, "
                               f"{FRESH_COPY}.")
        if labels.shape != (count,) or labels.max() > 9:
            raise DatasetError(f"{labels_path} holds {labels.shape} labels up to {labels.max()}, "
                               f"expected {count} labels in 0..9. To fix it, {FRESH_COPY}.")
        out += [images.reshape(count, 1, 28, 28).copy(), labels.astype(np.int64)]
    if check_md5:
        warn_on_md5_mismatch(folder, md5s, dataset)  # .gz files only; decompressed ones are skipped
    return tuple(out)


def load_mnist(data_dir=None, download=True):
    """Load MNIST: ``(x_train, y_train, x_test, y_test)``.

    ``x_train`` uint8 (60000, 1, 28, 28), ``y_train`` int64 (60000,) in 0..9,
    ``x_test`` uint8 (10000, 1, 28, 28), ``y_test`` int64 (10000,).
    Files are looked for in ``<data_dir>/mnist`` and downloaded when missing and allowed.
    """
    return _load("MNIST", data_dir, download)


def load_fashion_mnist(data_dir=None, download=True):
    """Load Fashion-MNIST: same shapes and dtypes as :func:`load_mnist`.

    Files are looked for in ``<data_dir>/fashion-mnist``, then in Debian's
    ``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``), and
    downloaded into the first when missing and allowed.
    """
    return _load("Fashion-MNIST", data_dir, download)
