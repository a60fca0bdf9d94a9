"""CIFAR-10 from the official "python version" batches.

The official archive ``cifar-10-python.tar.gz`` unpacks to ``cifar-10-batches-py/`` with
six pickled batches and a meta file::

    data_batch_1 .. data_batch_5   each a dict: data (10000, 3072) uint8, labels [10000 ints], ...
    test_batch                     same layout, the 10000 test images
    batches.meta                   dict: label_names [10 str], num_cases_per_batch, num_vis

A row of ``data`` holds one 32x32 image as three planes, red then green then blue
(1024 values each, row-major), so ``data.reshape(-1, 3, 32, 32)`` gives (N, C, H, W).

The batches are Python pickles. Unpickling can run arbitrary code, so they are read with
an unpickler that only accepts the few NumPy names an array needs.
"""
from __future__ import annotations

import os
import pickle
import tarfile
import tempfile
from pathlib import Path

import numpy as np  # host-side file I/O; arrays go to the backend in batches.py

from . import files
from .files import FRESH_COPY, DatasetError, resolve_data_dir, warn_on_md5_mismatch

__all__ = ["CIFAR10_URL", "CIFAR10_ARCHIVE_MD5", "CIFAR10_FILE_MD5", "CIFAR10_CLASSES",
           "load_cifar10", "download_cifar10", "read_cifar_batch", "cifar10_folder",
           "cifar10_class_names", "locate_cifar10", "CIFAR10_DATA_FILES"]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR10_TEST_FILE = "test_batch"
CIFAR10_META_FILE = "batches.meta"
CIFAR10_DATA_FILES = CIFAR10_TRAIN_FILES + [CIFAR10_TEST_FILE]
CIFAR10_FILE_MD5 = {  # md5 of each extracted file of the official archive
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
_ROWS_PER_BATCH, _PIXELS = 10000, 3 * 32 * 32


def cifar10_folder(data_dir=None) -> Path:
    """``<data_dir>/cifar-10-batches-py``."""
    return resolve_data_dir(data_dir) / CIFAR10_FOLDER


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """An unpickler that builds dicts, lists, strings and NumPy arrays, and nothing else."""

    _allowed = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (not part of a "
                                         "CIFAR-10 batch)")
        return super().find_class(module, name)


def _unpickle(path: Path):
    """Load one pickled CIFAR file (written by Python 2, hence latin1) or explain why not."""
    try:
        with open(path, "rb") as f:
            return _ArrayOnlyUnpickler(f, encoding="latin1").load()
    except Exception as err:  # EOFError when truncated, UnpicklingError when garbled, ...
        raise DatasetError(
            f"{path} could not be read as a CIFAR-10 python batch ({type(err).__name__}: {err}); "
            f"the file is truncated or corrupt. To fix it, {FRESH_COPY}.") from err


def read_cifar_batch(path) -> tuple:
    """Read and check one batch file.

    Returns ``(data, labels)``: ``data`` uint8 of shape (10000, 3072) (R, G, B planes of
    32x32 each) and ``labels`` int64 of shape (10000,) with values in 0..9. Anything else
    raises :class:`DatasetError` naming the file and what was wrong.
    """
    path = Path(path)
    batch = _unpickle(path)
    fix = f" To fix it, {FRESH_COPY}."
    if not isinstance(batch, dict):
        raise DatasetError(f"{path} holds a {type(batch).__name__}, expected the dict of a "
                           "CIFAR-10 batch." + fix)
    if "data" not in batch or "labels" not in batch:
        raise DatasetError(f"{path} has keys {sorted(map(str, batch))}, expected at least "
                           "'data' and 'labels'." + fix)
    data, labels = batch["data"], np.asarray(batch["labels"])
    if not isinstance(data, np.ndarray) or data.shape != (_ROWS_PER_BATCH, _PIXELS):
        raise DatasetError(f"{path}: 'data' has shape {getattr(data, 'shape', None)}, expected "
                           f"({_ROWS_PER_BATCH}, {_PIXELS})." + fix)
    if data.dtype != np.uint8:
        raise DatasetError(f"{path}: 'data' has dtype {data.dtype}, expected uint8." + fix)
    if labels.shape != (_ROWS_PER_BATCH,) or labels.dtype.kind not in "iu":
        raise DatasetError(f"{path}: 'labels' has shape {labels.shape} and dtype {labels.dtype}, "
                           f"expected {_ROWS_PER_BATCH} integers." + fix)
    if labels.min() < 0 or labels.max() > 9:
        raise DatasetError(f"{path}: labels range from {labels.min()} to {labels.max()}, "
                           "expected 0..9." + fix)
    return data, labels.astype(np.int64)


def _read_class_names(folder: Path) -> tuple:
    """Class names from ``batches.meta`` (checked), or the standard names if it is absent."""
    path = folder / CIFAR10_META_FILE
    if not path.exists():
        return CIFAR10_CLASSES
    meta = _unpickle(path)
    names = meta.get("label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != 10:
        raise DatasetError(f"{path} has no list of 10 'label_names'. To fix it, "
                           f"{FRESH_COPY}.")
    return tuple(str(n) for n in names)


def download_cifar10(data_dir=None) -> Path:
    """Download the official archive (md5 checked, progress bar) and extract it.

    The archive ``cifar-10-python.tar.gz`` is kept in ``data_dir`` so that a damaged
    file can be re-extracted without a new download. Files are extracted to a temporary
    folder first and then moved into place one by one (``os.replace``), so an interrupted
    extraction never leaves a half-written batch under its real name. A missing data folder
    is created when its parent exists; a missing parent is refused (``files.download``).
    """
    data_dir = resolve_data_dir(data_dir)
    archive = files.download(CIFAR10_URL, CIFAR10_ARCHIVE_MD5, data_dir, "cifar-10-python.tar.gz",
                             dataset="CIFAR-10")
    target = data_dir / CIFAR10_FOLDER
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".extract-") as tmp:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers()
                       if m.isfile() and m.name.startswith(CIFAR10_FOLDER + "/")
                       and ".." not in Path(m.name).parts]
            try:
                tar.extractall(tmp, members=members, filter="data")
            except TypeError:  # Python < 3.11.4 has no filter; the names were checked above
                tar.extractall(tmp, members=members)
        for member in members:
            os.replace(Path(tmp) / member.name, target / Path(member.name).name)
    return target


def locate_cifar10(data_dir=None, download=True) -> Path:
    """``<data_dir>/cifar-10-batches-py`` once it holds the six data files.

    Missing files are downloaded (and extracted) when ``download`` is true; otherwise, or
    when that fails, a :class:`DatasetNotFoundError` says what to do.
    """
    folder = cifar10_folder(data_dir)
    missing = [name for name in CIFAR10_DATA_FILES if not (folder / name).is_file()]
    if missing and download:
        download_cifar10(data_dir)
        missing = [name for name in CIFAR10_DATA_FILES if not (folder / name).is_file()]
    if missing:
        raise files.not_found(
            "CIFAR-10", folder, missing, f"Load it with download allowed (needs internet), or "
            f"download {CIFAR10_URL} elsewhere and unpack its cifar-10-batches-py folder into "
            f"{folder.parent}.")
    return folder


def load_cifar10(data_dir=None, download=True):
    """Load CIFAR-10 as uint8 images and int64 labels.

    Returns ``(x_train, y_train, x_test, y_test)``:

    - ``x_train``: uint8 (50000, 3, 32, 32), ``y_train``: int64 (50000,) in 0..9
    - ``x_test``:  uint8 (10000, 3, 32, 32), ``y_test``:  int64 (10000,) in 0..9

    Files are looked for in ``<data_dir>/cifar-10-batches-py`` (``data_dir`` defaults to
    :func:`tinyproj.data.location.data_dir`: ``$TINYPROJ_DATA``, ../shared/datasets or
    datasets/). Missing files are downloaded when ``download``
    is true. Every file is checked for structure; a file whose md5 differs from the
    official one gives a :class:`~tinyproj.data.files.ChecksumWarning` but is used.
    """
    folder = locate_cifar10(data_dir, download)
    train = [read_cifar_batch(folder / name) for name in CIFAR10_TRAIN_FILES]
    x_test, y_test = read_cifar_batch(folder / CIFAR10_TEST_FILE)
    _read_class_names(folder)  # checks batches.meta when present
    warn_on_md5_mismatch(folder, CIFAR10_FILE_MD5, "CIFAR-10")

    x_train = np.concatenate([x for x, _ in train]).reshape(-1, 3, 32, 32)
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, x_test.reshape(-1, 3, 32, 32), y_test


def cifar10_class_names(data_dir=None) -> tuple:
    """The ten class names, read from ``batches.meta`` when present."""
    return _read_class_names(cifar10_folder(data_dir))
