"""Where datasets live on disk, how they are downloaded, and how files are checked.

Everything here runs on the host: file I/O, checksums, downloads. Nothing in this
module touches the array backend.

Where data lives
----------------
``default_data_dir()`` is ``$TINYPROJ_DATA`` when that variable is set, else the folder
``datasets`` relative to the current directory (the project root when you run from there).
Each loader looks in a sub-folder of it::

    <data_dir>/cifar-10-batches-py/   data_batch_1..5, test_batch, batches.meta
    <data_dir>/mnist/                 train-images-idx3-ubyte.gz, ...
    <data_dir>/fashion-mnist/         train-images-idx3-ubyte.gz, ...
    <data_dir>/cache/                 preprocessed arrays (GCN + ZCA), one .npz per setting

Checksums
---------
Right after a download the file's md5 must match (pooch refuses otherwise). Files a user
already has are checked for *structure* by the loaders (shapes, dtypes, label ranges) and
their md5 is only compared as a courtesy: a mismatch gives a :class:`ChecksumWarning`,
not an error, because a re-encoded but well-formed copy is still usable.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

__all__ = [
    "DatasetError", "DatasetNotFoundError", "ChecksumWarning", "default_data_dir",
    "resolve_data_dir", "file_md5", "warn_on_md5_mismatch", "download", "atomic_save_npz",
]


class DatasetError(ValueError):
    """A dataset file exists but is not what it should be (truncated, garbled, wrong shape)."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset file is missing and could not (or was not allowed to) be downloaded."""


class ChecksumWarning(UserWarning):
    """A well-formed dataset file whose md5 differs from the official one."""


# ---------------------------------------------------------------------------
# The data folder
# ---------------------------------------------------------------------------
def default_data_dir() -> Path:
    """``$TINYPROJ_DATA`` if set (and not empty), else ``./datasets``."""
    env = os.environ.get("TINYPROJ_DATA", "").strip()
    return Path(env).expanduser() if env else Path("datasets")


def resolve_data_dir(data_dir=None) -> Path:
    """``data_dir`` as a :class:`~pathlib.Path`, falling back on :func:`default_data_dir`."""
    return default_data_dir() if data_dir is None else Path(data_dir).expanduser()


# ---------------------------------------------------------------------------
# md5 sums, computed lazily and remembered
# ---------------------------------------------------------------------------
_md5_cache: dict = {}  # (absolute path, size, mtime_ns) -> hex digest


def file_md5(path) -> str:
    """The md5 hex digest of a file, computed once per (path, size, mtime) and remembered."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _md5_cache:
        digest = hashlib.md5()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _md5_cache[key] = digest.hexdigest()
    return _md5_cache[key]


def warn_on_md5_mismatch(folder, expected: dict, dataset: str) -> list:
    """Compare files in ``folder`` with their official md5 sums; warn once about any that differ.

    ``expected`` maps file names to md5 hex digests; files absent from ``folder`` are
    skipped (the loader has already complained about those). Returns the names that differ.
    A mismatch is a :class:`ChecksumWarning`, never an error: the caller has already
    checked that the files are well formed.
    """
    folder = Path(folder)
    differ = [name for name, md5 in expected.items()
              if (folder / name).is_file() and file_md5(folder / name) != md5]
    if differ:
        warnings.warn(
            f"{dataset}: the md5 sum of {', '.join(differ)} in {folder} differs from the official "
            f"file{'s' if len(differ) > 1 else ''}. The contents are well formed (shapes, dtypes and "
            "labels check out), so they are used; results may differ slightly from published "
            "numbers. If you expected the official files, delete them and load again with "
            "download=True.",
            ChecksumWarning, stacklevel=3)
    return differ


# ---------------------------------------------------------------------------
# Downloads (pooch, with a tqdm progress bar)
# ---------------------------------------------------------------------------
def download(urls, md5: str, folder, fname: str) -> Path:
    """Download ``fname`` into ``folder`` from the first of ``urls`` that works.

    ``urls`` is one address or a list of mirrors, each the full address of the file. The
    md5 is checked by pooch (a mismatch deletes the download and counts as a failure),
    which also writes to a temporary name first, so a broken download never leaves a
    half file under the real name. Returns the path of the file.
    """
    import pooch  # imported here so that tests can monkeypatch pooch.retrieve

    if isinstance(urls, str):
        urls = [urls]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        try:
            return Path(pooch.retrieve(url, known_hash=f"md5:{md5}", fname=fname,
                                       path=folder, progressbar=True))
        except Exception as err:  # network down, 404, checksum mismatch, ...
            failures.append(f"  {url}: {type(err).__name__}: {err}")
    raise DatasetNotFoundError(
        f"Could not download {fname} into {folder}. Tried:\n" + "\n".join(failures) + "\n"
        f"If this machine has no internet access, fetch {fname} elsewhere and copy it to "
        f"{folder}, or set the environment variable TINYPROJ_DATA to a folder that already "
        "holds the datasets (see datasets/README.md).")


# ---------------------------------------------------------------------------
# Atomic writes (rule 7 of DESIGN.md)
# ---------------------------------------------------------------------------
def atomic_save_npz(path, **arrays) -> Path:
    """Save ``arrays`` to ``path`` (.npz, uncompressed) via a temporary file and ``os.replace``.

    An interrupted run leaves either the old file or the new one, never half of one.
    """
    import numpy as np  # host-side file I/O

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
