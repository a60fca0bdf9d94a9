"""Where the datasets are, and where derived caches go: ``data_dir()`` and ``cache_dir()``.

The data folder (raw files: ``cifar-10-batches-py/``, ``mnist/``, ``fashion-mnist/``,
``imagenet/``), first match wins::

    1. the value given (``--data-dir`` on the command line, ``data_dir=`` in Python)
    2. $TINYPROJ_DATA
    3. ../shared/datasets beside the project checkout, when that folder exists
       (a course machine: <checkout>/../shared/datasets)
    4. <checkout>/datasets, or ./datasets when tinyproj is installed rather than checked out

The cache folder (derived arrays such as the 737 MB GCN + ZCA whitening of CIFAR-10)::

    1. the value given (``cache_dir=``)
    2. $TINYPROJ_CACHE
    3. $XDG_CACHE_HOME/tinyproj, else ~/.cache/tinyproj

A derived cache never goes into the data folder by default: that folder may be shared by a
whole class (and read-only), and a cache written there would be a stranger's file to them.

Both functions return an absolute, resolved path, so a path stored in a run's config.json
means the same folder whichever folder a later command runs from. A path that names an
existing *file* is refused with a :class:`~tinyproj.errors.UserError`. Nothing here creates
a folder.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError

__all__ = ["data_dir", "cache_dir", "checkout_root", "data_dir_source", "check_data_dir"]


def checkout_root() -> Path | None:
    """The project checkout that holds this ``tinyproj`` package, or None when installed.

    A checkout is recognized by the ``pyproject.toml`` beside the ``tinyproj/`` folder; an
    installed copy lives in site-packages, where there is none.
    """
    root = Path(__file__).resolve().parents[2]      # tinyproj/data/location.py → checkout
    return root if (root / "pyproject.toml").is_file() else None


def _folder(path: Path, source: str, fix: str, flag: str) -> Path:
    """``path`` made absolute; UserError when it names a file rather than a folder."""
    path = Path(path).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag}: {path} (from {source}) is a file, not a folder. {fix}",
                        flag=flag)
    return path


def data_dir_source(value=None) -> tuple:
    """``(path, where it came from)`` before resolution, e.g. ``(Path(...), "$TINYPROJ_DATA")``.

    The second item says which rule of the module docstring chose the folder, for banners
    and error messages.
    """
    if value is not None and str(value).strip():
        return Path(value), "--data-dir"
    env = os.environ.get("TINYPROJ_DATA", "").strip()
    if env:
        return Path(env), "$TINYPROJ_DATA"
    root = checkout_root()
    if root is not None and (root.parent / "shared" / "datasets").is_dir():
        return root.parent / "shared" / "datasets", "../shared/datasets beside the project"
    return (root or Path.cwd()) / "datasets", "the default datasets/ folder"


def data_dir(value=None) -> Path:
    """The data folder, absolute: ``value``, else $TINYPROJ_DATA, else ../shared/datasets
    beside the checkout when it exists, else ``<checkout or cwd>/datasets``.

    Raises UserError (flag ``--data-dir``) when the chosen path is an existing file.
    """
    path, source = data_dir_source(value)
    return _folder(path, source, "Give --data-dir (or $TINYPROJ_DATA) the folder that holds "
                   "cifar-10-batches-py/, mnist/, ... (see datasets/README.md).", "--data-dir")


def check_data_dir(value=None, dataset: str | None = None) -> Path:
    """:func:`data_dir` checked before a command writes or downloads anything (rule 8).

    A folder named by ``--data-dir`` (``value``) or ``$TINYPROJ_DATA`` must exist: a
    download then makes only the dataset's own files inside it, never a mistyped path (the
    default folder, rules 3-4 above, may be missing: the first download makes it). A folder
    that exists but lacks the dataset passes (the dataset is downloaded into it), except for
    ImageNet, which is never downloaded: its ``train/`` and ``val/`` must be there.
    ``dataset`` "synthetic" needs no folder and is not checked. Returns the folder, absolute;
    raises UserError (its flag: ``--data-dir`` or ``$TINYPROJ_DATA``) otherwise.
    """
    path = data_dir(value)                      # a file is refused here
    if dataset == "synthetic":
        return path
    source = data_dir_source(value)[1]
    if source in ("--data-dir", "$TINYPROJ_DATA") and not path.is_dir():
        raise UserError(f"{source} {path} does not exist; give the folder that holds the "
                        "datasets (cifar-10-batches-py/, mnist/, ...; see datasets/README.md), "
                        "or create it first to download a dataset into it", flag=source)
    if dataset == "imagenet":
        from .imagenet import locate_imagenet
        locate_imagenet(path)                   # DatasetNotFoundError: how to lay it out
    return path


def cache_dir(value=None) -> Path:
    """The folder for derived caches, absolute: ``value``, else $TINYPROJ_CACHE, else
    ``$XDG_CACHE_HOME/tinyproj``, else ``~/.cache/tinyproj``.

    Raises UserError when the chosen path is an existing file.
    """
    if value is not None and str(value).strip():
        path, source = Path(value), "cache_dir="
    elif os.environ.get("TINYPROJ_CACHE", "").strip():
        path, source = Path(os.environ["TINYPROJ_CACHE"].strip()), "$TINYPROJ_CACHE"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
        path, source = base / "tinyproj", "the user cache folder"
    return _folder(path, source, "Point $TINYPROJ_CACHE at a folder for derived arrays (it is "
                   "created when needed).", "$TINYPROJ_CACHE")
