"""Dataset errors, downloads, md5 checks and atomic writes; where the files are is location.py.

Everything here runs on the host: file I/O, checksums, downloads. Nothing in this
module touches the array backend.

Where data lives
----------------
:func:`tinyproj.data.location.data_dir` chooses the data folder (``--data-dir``, else
``$TINYPROJ_DATA``, else ``../shared/datasets`` beside the checkout, else ``datasets/``);
:func:`resolve_data_dir` here is the same function under its older name. Each loader looks
in a sub-folder of it::

    <data_dir>/cifar-10-batches-py/   data_batch_1..5, test_batch, batches.meta
    <data_dir>/mnist/                 train-images-idx3-ubyte.gz, ...
    <data_dir>/fashion-mnist/         train-images-idx3-ubyte.gz, ...
    <data_dir>/svhn/                  train_32x32.mat, test_32x32.mat
    <data_dir>/imagenet/              train/<class>/*.JPEG, val/<class>/*.JPEG

Preprocessed arrays (GCN + ZCA) go to :func:`~tinyproj.data.location.cache_dir`, never
into the data folder.

Checksums
---------
Right after a download the file's md5 must match (pooch refuses otherwise). Files a user
already has are checked for *structure* by the loaders (shapes, dtypes, label ranges) and
their md5 is only compared as a courtesy: a mismatch gives a :class:`ChecksumWarning`,
not an error, because a re-encoded but well-formed copy is still usable.

Files written here (downloads, caches) get the permissions of the user's umask, like any
file the user makes (``tempfile`` would leave them readable by their owner only).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

from ..errors import UserError
from . import location

__all__ = [
    "DatasetError", "DatasetNotFoundError", "ChecksumWarning", "default_data_dir",
    "resolve_data_dir", "file_md5", "warn_on_md5_mismatch", "FRESH_COPY", "download",
    "atomic_save_npz", "not_found", "umask_mode", "atomic_write_bytes",
]


class DatasetError(UserError):
    """A dataset file exists but is not what it should be (truncated, garbled, wrong shape)."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset file is missing and could not (or was not allowed to) be downloaded."""


class ChecksumWarning(UserWarning):
    """A well-formed dataset file whose md5 differs from the official one."""


# ---------------------------------------------------------------------------
# The data folder (see location.py)
# ---------------------------------------------------------------------------
def default_data_dir() -> Path:
    """The data folder when none is given: ``tinyproj.data.location.data_dir()``."""
    return location.data_dir()


def resolve_data_dir(data_dir=None) -> Path:
    """``data_dir`` as an absolute Path, or the default folder when None (location.data_dir)."""
    return location.data_dir(data_dir)


def not_found(dataset: str, folder, missing, how_to_get: str) -> DatasetNotFoundError:
    """The error for a dataset whose files are missing: what, where, and what to do.

    Names the folder looked in, how that folder was chosen (``--data-dir`` /
    ``$TINYPROJ_DATA``) and how to get the files (``how_to_get``).
    """
    names = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    return DatasetNotFoundError(
        f"{dataset}: {names} not found in {folder}. {how_to_get} Or point --data-dir "
        f"(or $TINYPROJ_DATA) at a folder that already holds it (see datasets/README.md).",
        flag="--data-dir")


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


FRESH_COPY = ("delete the file and run again: tinyproj fetches a fresh copy (its commands by "
              "themselves, the loaders with download=True, their default); where the folder "
              "is read-only, point --data-dir or $TINYPROJ_DATA at a good copy instead")
"""How to replace a damaged or unexpected dataset file (the end of their error messages)."""


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
            "numbers. If you expected the official files, delete them and run again: tinyproj "
            "fetches fresh copies (where the folder is read-only, point --data-dir or "
            "$TINYPROJ_DATA at the official files instead).",
            ChecksumWarning, stacklevel=3)
    return differ


# ---------------------------------------------------------------------------
# File permissions: what the user's umask says, as for any file they create
# ---------------------------------------------------------------------------
def umask_mode(mode: int = 0o666) -> int:
    """``mode & ~umask``: the permissions a plain ``open(path, "w")`` would give (0o644 under
    the usual umask 022). ``tempfile.mkstemp`` makes 0o600 files whatever the umask, so a
    cache or download written through it would be unreadable to classmates sharing it."""
    try:
        with open("/proc/self/status") as f:        # Linux: read the umask without changing it
            for line in f:
                if line.startswith("Umask:"):
                    return mode & ~int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)                       # elsewhere: the classic set-and-restore
    os.umask(current)
    return mode & ~current


# ---------------------------------------------------------------------------
# Downloads (pooch, with a tqdm progress bar)
# ---------------------------------------------------------------------------
def download(urls, md5: str, folder, fname: str, dataset: str | None = None,
             root=None) -> Path:
    """Download ``fname`` into ``folder`` from the first of ``urls`` that works.

    ``urls`` is one address or a list of mirrors, each the full address of the file. The
    md5 is checked by pooch (a mismatch deletes the download and counts as a failure),
    which also writes to a temporary name first, so a broken download never leaves a
    half file under the real name. Returns the path of the file. Without internet access
    (or when ``folder`` cannot be written) this raises :class:`DatasetNotFoundError` naming
    the folder, every address tried, and where to copy the file by hand.

    ``root``: the data folder that ``folder`` lies in (``<root>/mnist``; default: ``folder``
    itself). A missing ``root`` is created only when its parent exists, and then the folders
    from it down to ``folder``; a missing parent is refused (:class:`DatasetNotFoundError`
    naming it), so a typo never becomes a chain of new folders. A failed download removes
    the folders this call made, and only those.
    """
    import pooch  # imported here so that tests can monkeypatch pooch.retrieve

    if isinstance(urls, str):
        urls = [urls]
    folder = Path(folder)
    dataset = dataset or fname
    how = (f"If this machine has no internet access, download {urls[0]} on one that has and "
           f"copy it to {folder}.")
    created = _make_folders(folder, folder if root is None else Path(root), dataset, fname, how)
    existed = (folder / fname).exists()
    failures = []
    for url in urls:
        try:
            path = Path(pooch.retrieve(url, known_hash=f"md5:{md5}", fname=fname,
                                       path=folder, progressbar=True))
        except Exception as err:  # network down, 404, checksum mismatch, ...
            failures.append(f"  {url}: {type(err).__name__}: {err}")
            continue
        if not existed:
            os.chmod(path, umask_mode())
        return path
    _remove_empty(created)   # a failed download must not leave empty folders behind
    raise DatasetNotFoundError(
        f"{dataset}: could not download {fname} into {folder}. Tried:\n" + "\n".join(failures)
        + f"\n{how} Or point --data-dir (or $TINYPROJ_DATA) at a folder that already holds "
        "the dataset (see datasets/README.md).", flag="--data-dir")


def _make_folders(folder: Path, root: Path, dataset: str, fname: str, how: str) -> list:
    """Create ``root`` (only if its parent exists) and the folders from it down to ``folder``;
    returns the ones this call made, deepest first (what a failed download removes)."""
    parts = folder.relative_to(root).parts          # () when folder is root itself
    chain = [root] + [root.joinpath(*parts[:i + 1]) for i in range(len(parts))]
    if not root.exists() and not root.parent.exists():
        raise DatasetNotFoundError(
            f"{dataset}: cannot download {fname} into {folder}: the parent folder "
            f"{root.parent} of the data folder {root} does not exist. A download creates the "
            "data folder itself, never a chain of folders (a mistyped path would leave one "
            f"behind). Create {root.parent} first if it is meant, or point --data-dir (or "
            "$TINYPROJ_DATA) at an existing folder.", flag="--data-dir")
    created = []
    try:
        for d in chain:
            try:
                d.mkdir()
                created.insert(0, d)
            except FileExistsError:
                if not d.is_dir():
                    raise
    except OSError as err:           # a read-only shared data folder, a file in the way, ...
        _remove_empty(created)
        raise DatasetNotFoundError(
            f"{dataset}: cannot download {fname} because {folder} cannot be created or written "
            f"({err.strerror or err}). {how} Or point --data-dir (or $TINYPROJ_DATA) at a "
            "folder that holds the dataset or that you can write to.", flag="--data-dir") from err
    return created


def _remove_empty(folders) -> None:
    """rmdir each of ``folders`` (deepest first) that is still empty: the ones this process
    created for a download that failed. A folder with anything in it is left alone."""
    for d in folders:
        try:
            d.rmdir()
        except OSError:
            return


# ---------------------------------------------------------------------------
# Atomic writes (rule 7 of docs/design.md)
# ---------------------------------------------------------------------------
def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary ``.NAME.<random>.tmp`` beside it (the
    pattern ``runs.files.remove_stale_temps`` clears after a kill), flushed to disk, then
    ``os.replace``. The file gets the permissions of the user's umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, umask_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_save_npz(path, **arrays) -> Path:
    """Save ``arrays`` to ``path`` (.npz, uncompressed) via a temporary file and ``os.replace``.

    An interrupted run leaves either the old file or the new one, never half of one. The
    file gets the permissions of the user's umask (:func:`umask_mode`).
    """
    import numpy as np  # host-side file I/O

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the temporary name of atomic_write_bytes (.NAME.<random>.tmp), which
    # runs.files.remove_stale_temps recognises after a kill
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, umask_mode())     # mkstemp made it 0600; give it the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
