"""SVHN (Street View House Numbers, cropped digits) from its official ``.mat`` files.

The two files, in ``<data_dir>/svhn``::

    train_32x32.mat   73,257 digits   (182 MB, zlib-compressed MAT-file level 5)
    test_32x32.mat    26,032 digits   (64 MB)

each with two variables: ``X`` uint8 of MATLAB size (32, 32, 3, N) — row, column, RGB
channel, image — and ``y`` double (N, 1) with the digit, **10 standing for 0**. Here they
become ``x`` uint8 (N, 3, 32, 32) and ``y`` int64 (N,) in 0..9 (10 → 0), read with the
small MAT-file reader of ``matfile.py`` (no scipy). The "extra" set (531,131 easier digits)
is not used: Walking Noise trains on ``train`` and tests on ``test``.

Downloads come from the Stanford page (md5 checked by pooch); files already present are
checked for structure, and their md5 only compared as a courtesy (``files.py``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np  # host-side file I/O

from . import files
from .files import FRESH_COPY, DatasetError, resolve_data_dir, warn_on_md5_mismatch
from .matfile import read_mat

__all__ = ["SVHN_URL", "SVHN_MD5", "SVHN_SIZES", "read_svhn_mat", "load_svhn",
           "download_svhn", "locate_svhn", "svhn_files"]

SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
SVHN_MD5 = {"train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
            "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3"}
SVHN_SIZES = {"train_32x32.mat": 73257, "test_32x32.mat": 26032}
_SUB = "svhn"


def read_svhn_mat(path, expected=None):
    """``(x uint8 (N, 3, 32, 32), y int64 (N,) in 0..9)`` from one SVHN ``.mat`` file.

    ``X`` (32, 32, 3, N) is transposed to (N, 3, 32, 32); label 10 becomes 0. ``expected``:
    the number of digits the file must hold (None: any). DatasetError naming the file for a
    wrong shape, dtype or label range.
    """
    path = Path(path)
    fix = f" To fix it, {FRESH_COPY}."
    arrays = read_mat(path, names=("X", "y"))
    X, y = arrays["X"], arrays["y"]
    if X.ndim != 4 or X.shape[:3] != (32, 32, 3) or X.dtype != np.uint8:
        raise DatasetError(f"{path}: X is {X.dtype} of size {X.shape}, expected uint8 "
                           f"(32, 32, 3, N)." + fix)
    n = X.shape[3]
    if expected is not None and n != expected:
        raise DatasetError(f"{path} holds {n} digits, expected {expected}." + fix)
    labels = np.asarray(y).reshape(-1)
    if labels.shape != (n,) or not np.all((labels >= 1) & (labels <= 10)) or \
            not np.all(labels == np.round(labels)):
        raise DatasetError(f"{path}: y has {labels.size} values in {labels.min()}..."
                           f"{labels.max()}, expected {n} whole numbers in 1..10." + fix)
    x = np.ascontiguousarray(X.transpose(3, 2, 0, 1))    # (N, C, H, W)
    return x, (labels.astype(np.int64) % 10)


def download_svhn(data_dir=None) -> Path:
    """Download the SVHN files that are missing from ``<data_dir>/svhn``. A missing data
    folder is created when its parent exists; a missing parent is refused (``files.download``)."""
    root = resolve_data_dir(data_dir)
    folder = root / _SUB
    for name in _missing(folder):
        files.download(SVHN_URL + name, SVHN_MD5[name], folder, name, dataset="SVHN", root=root)
    return folder


def _missing(folder: Path) -> list:
    return [name for name in SVHN_MD5 if not (folder / name).is_file()]


def locate_svhn(data_dir=None, download=True) -> Path:
    """``<data_dir>/svhn`` holding both files; missing ones are downloaded when allowed,
    otherwise a DatasetNotFoundError says where to put them."""
    folder = resolve_data_dir(data_dir) / _SUB
    if _missing(folder) and download:
        download_svhn(data_dir)
    missing = _missing(folder)
    if missing:
        raise files.not_found("SVHN", folder, missing,
                              f"Load it with download allowed (needs internet), or download "
                              f"them from {SVHN_URL} elsewhere and copy them into {folder}.")
    return folder


def svhn_files(folder) -> list:
    """The two files of an SVHN folder."""
    return [Path(folder) / name for name in SVHN_MD5]


def load_svhn(data_dir=None, download=True):
    """Load SVHN: ``(x_train, y_train, x_test, y_test)``.

    ``x_train`` uint8 (73257, 3, 32, 32), ``y_train`` int64 (73257,) in 0..9,
    ``x_test`` uint8 (26032, 3, 32, 32), ``y_test`` int64 (26032,).
    """
    folder = locate_svhn(data_dir, download)
    out = []
    for name in SVHN_MD5:
        out += read_svhn_mat(folder / name, SVHN_SIZES[name])
    warn_on_md5_mismatch(folder, SVHN_MD5, "SVHN")
    return tuple(out)
