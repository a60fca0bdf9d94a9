"""One entry point for every dataset: ``load_dataset(name, ...) -> Dataset``."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np  # host-side arrays

from ..errors import UserError
from . import location
from .cifar import CIFAR10_DATA_FILES, cifar10_class_names, load_cifar10, locate_cifar10
from .imagenet import IMAGENET_CROP
from .mnist import (FASHION_MNIST_CLASSES, load_fashion_mnist, load_mnist, locate_mnist,
                    mnist_files)
from .preprocess import (black_value, cached_arrays, gcn_zca, global_contrast_normalize,
                         normalize_channels, scale_signed, scale_to_unit)
from .svhn import load_svhn, locate_svhn, svhn_files
from .synthetic import synthetic_classification

__all__ = ["Dataset", "load_dataset", "DATASET_NAMES", "PREPROCESSINGS", "DATASET_SHAPES",
           "DATASET_SIZES", "dataset_shape", "check_preprocess"]

DATASET_NAMES = ("cifar10", "mnist", "fashion-mnist", "svhn", "synthetic")
DATASET_SHAPES = {
    "cifar10": ((3, 32, 32), 10),
    "mnist": ((1, 28, 28), 10),
    "fashion-mnist": ((1, 28, 28), 10),
    "svhn": ((3, 32, 32), 10),
    "synthetic": ((3, 32, 32), 10),                      # load_dataset's default shape
    "imagenet": ((3, IMAGENET_CROP, IMAGENET_CROP), 1000),   # streamed (ImageFolder), cropped
}
"""Every dataset the command line offers → (shape of one example, number of classes), known
without loading anything, so a model can be checked against its data before any I/O
(``models.check(name, *DATASET_SHAPES[dataset])``). ImageNet's class count is nominal: a
folder with fewer classes gives fewer."""

DATASET_SIZES = {"cifar10": (50000, 10000), "mnist": (60000, 10000),
                 "fashion-mnist": (60000, 10000), "svhn": (73257, 26032),
                 "synthetic": (1000, 200),
                 "imagenet": (1281167, 50000)}
"""Every dataset → (training examples, test examples) as published (synthetic: load_dataset's
defaults; ImageNet: ILSVRC-2012, a local folder may hold fewer), so ``--train-subset``,
``--val-size`` and ``--test-subset`` can be checked before anything is loaded."""
PREPROCESSINGS = ("none", "scale", "signed", "meanstd", "gcn", "gcn_zca")
_DEFAULT_PREPROCESS = {"cifar10": "gcn_zca", "mnist": "scale", "fashion-mnist": "scale",
                       "svhn": "meanstd", "synthetic": "none"}
_ALIASES = {"cifar10": "cifar10", "mnist": "mnist", "fashionmnist": "fashion-mnist",
            "svhn": "svhn", "synthetic": "synthetic"}
_CACHE_VERSION = 1  # bump when the preprocessing code changes what it computes


@dataclass(repr=False)
class Dataset:
    """A dataset held in memory on the host.

    ``x_train`` (N, C, H, W), ``y_train`` int64 (N,), ``x_test`` (M, C, H, W),
    ``y_test`` int64 (M,); ``x`` is uint8 with ``preprocess="none"`` and float32 otherwise.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    name: str
    class_names: tuple = ()
    preprocess: str = "none"

    @property
    def input_shape(self) -> tuple:
        """The shape of one example, e.g. (3, 32, 32)."""
        return tuple(self.x_train.shape[1:])

    @property
    def pad_value(self) -> tuple:
        """A black pixel after the preprocessing, per channel: what a random crop pads with
        (the authors pad the raw image before normalizing; ``preprocess.black_value``)."""
        channels = self.x_train.shape[1] if self.x_train.ndim == 4 else 1
        return black_value(self.preprocess, channels)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train {self.x_train.shape} {self.x_train.dtype}, "
                f"test {self.x_test.shape}, {self.num_classes} classes, "
                f"preprocess={self.preprocess!r})")


def _canonical_name(name: str, names=DATASET_NAMES) -> str:
    key = str(name).lower().replace("-", "").replace("_", "")
    found = _ALIASES.get(key, "imagenet" if key == "imagenet" else None)
    if found == "imagenet" and found not in names:
        raise UserError("--dataset: ImageNet is streamed from its folder, not loaded into memory: "
                        "use data.ImageFolder(data.locate_imagenet(data_dir) / 'train').",
                        flag="--dataset")
    if found not in names:
        raise UserError(f"--dataset: unknown dataset {name!r}; valid names are "
                        f"{', '.join(names)}.", flag="--dataset")
    return found


def dataset_shape(name: str) -> tuple:
    """``(input_shape, num_classes)`` of a dataset by name, without loading it (see
    :data:`DATASET_SHAPES`); UserError (``--dataset``) for an unknown name."""
    return DATASET_SHAPES[_canonical_name(name, tuple(DATASET_SHAPES))]


def _canonical_preprocess(preprocess, name: str) -> str:
    if preprocess in (None, "default"):
        return _DEFAULT_PREPROCESS[name]
    key = str(preprocess).lower().replace("+", "_").replace("-", "_")
    if key not in PREPROCESSINGS:
        raise ValueError(f"unknown preprocess {preprocess!r}; choose one of "
                         f"{', '.join(PREPROCESSINGS)} (or 'default').")
    if name == "synthetic" and key in ("scale", "signed", "meanstd"):
        raise ValueError(f"preprocess={key!r} starts from uint8 pixels / 255; the synthetic data "
                         "are floats already. Choose 'none', 'gcn' or 'gcn_zca'.")
    if key == "meanstd" and DATASET_SHAPES[name][0][0] != 3:
        raise ValueError(f"preprocess='meanstd' uses the authors' three RGB channel means and "
                         f"stds; {name} has {DATASET_SHAPES[name][0][0]} channel(s). Choose "
                         "'scale' ([0, 1]) or 'signed' ([−1, 1]).")
    return key


def check_preprocess(name: str, preprocess) -> str:
    """The canonical preprocessing of ``preprocess`` for dataset ``name`` (no data loaded);
    UserError (``--preprocess``) for an unknown one or one the dataset cannot take."""
    try:
        return _canonical_preprocess(preprocess, _canonical_name(name))
    except ValueError as err:
        if isinstance(err, UserError):
            raise
        raise UserError(f"--preprocess: {err}", flag="--preprocess") from None


def _say(message: str) -> None:
    """A progress line on stderr (stdout stays for results), shown at once."""
    print(message, file=sys.stderr, flush=True)


def _fingerprint(paths) -> list:
    """Name, size and modification time of each source file: a changed file changes the cache key."""
    return [[Path(p).name, Path(p).stat().st_size, Path(p).stat().st_mtime_ns] for p in paths]


def _preprocess(arrays: tuple, preprocess: str, gcn_scale: float, filter_bias: float) -> dict:
    x_train, y_train, x_test, y_test = arrays
    if preprocess == "scale":
        x_train, x_test = scale_to_unit(x_train), scale_to_unit(x_test)
    elif preprocess == "signed":
        x_train, x_test = scale_signed(x_train), scale_signed(x_test)
    elif preprocess == "meanstd":
        x_train, x_test = normalize_channels(x_train), normalize_channels(x_test)
    elif preprocess == "gcn":
        x_train = global_contrast_normalize(x_train, scale=gcn_scale).astype(np.float32)
        x_test = global_contrast_normalize(x_test, scale=gcn_scale).astype(np.float32)
    elif preprocess == "gcn_zca":
        x_train, x_test = gcn_zca(x_train, x_test, scale=gcn_scale, filter_bias=filter_bias)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def load_dataset(name, data_dir=None, preprocess="default", train_subset=None, download=True,
                 cache=None, cache_dir=None, gcn_scale=55.0, zca_filter_bias=0.1,
                 **synthetic_options) -> Dataset:
    """Load a dataset by name, preprocessed, as a :class:`Dataset`.

    name:          "cifar10", "mnist", "fashion-mnist", "svhn" or "synthetic" (case, "-"
                   and "_" do not matter).
    data_dir:      where the raw files are; default :func:`tinyproj.data.location.data_dir`
                   (``$TINYPROJ_DATA``, else ../shared/datasets beside the checkout, else
                   datasets/).
    preprocess:    "default" (cifar10: "gcn_zca", the paper's; mnist and fashion-mnist:
                   "scale"; svhn: "meanstd"; synthetic: "none"), or one of
                   "none"    uint8 pixels as stored,
                   "scale"   float32 pixels / 255 in [0, 1],
                   "signed"  (pixels / 255 − 0.5) / 0.5 in [−1, 1] (Walking Noise's
                             Fashion-MNIST),
                   "meanstd" per channel (pixels / 255 − mean) / std with the Walking Noise
                             authors' constants (their CIFAR-10 and SVHN; RGB only),
                   "gcn"     global contrast normalization (mean 0, L2 norm ``gcn_scale``),
                   "gcn_zca" GCN then ZCA whitening fit on the training images
                             (``zca_filter_bias``), applied to both sets.
    train_subset:  keep only the first N training images (before preprocessing, so ZCA is
                   fit on them); the test set is always complete.
    download:      fetch missing files (needs internet access).
    cache:         keep "gcn_zca" results in ``cache_dir`` (default
                   :func:`tinyproj.data.location.cache_dir`: ``$TINYPROJ_CACHE``, else
                   ~/.cache/tinyproj; never the data folder) as .npz; a second call with
                   the same parameters and unchanged source files loads them. Default: on
                   for real datasets, off for "synthetic". The first whitening of CIFAR-10
                   prints a line to stderr (it takes a minute or more).
    synthetic_options: for "synthetic" only: ``n_train`` (1000), ``n_test`` (200),
                   ``shape`` ((3, 32, 32)), ``num_classes`` (10), ``seed`` (0), ``noise`` (1.0).

    Keep the last 5000 training images for validation with
    ``train_val_split(ds.x_train, ds.y_train, 5000)`` (BinaryConnect's 45k/5k split).
    """
    name = _canonical_name(name)
    preprocess = _canonical_preprocess(preprocess, name)
    if synthetic_options and name != "synthetic":
        raise TypeError(f"load_dataset: unexpected options {sorted(synthetic_options)} for "
                        f"{name!r}; they apply to 'synthetic' only.")
    if train_subset is not None and int(train_subset) < 1:
        raise ValueError(f"train_subset must be a positive number of images, got {train_subset}.")

    if name == "synthetic":
        opts = dict(n_train=1000, n_test=200, shape=(3, 32, 32), num_classes=10, seed=0,
                    noise=1.0)
        unknown = set(synthetic_options) - set(opts)
        if unknown:
            raise TypeError(f"load_dataset('synthetic'): unknown options {sorted(unknown)}; "
                            f"valid ones are {sorted(opts)}.")
        opts.update(synthetic_options)
        opts["shape"] = tuple(opts["shape"])
        num_classes, class_names = opts["num_classes"], ()
        source = opts

        def load_raw():
            x, y = synthetic_classification(opts["n_train"] + opts["n_test"], opts["shape"],
                                            num_classes, opts["seed"], opts["noise"])
            n = opts["n_train"]
            return x[:n], y[:n], x[n:], y[n:]
    else:
        num_classes = 10
        if name == "cifar10":
            folder = locate_cifar10(data_dir, download)
            source = _fingerprint(folder / f for f in CIFAR10_DATA_FILES)
            class_names = cifar10_class_names(data_dir)
            loader = load_cifar10
        elif name == "svhn":
            source = _fingerprint(svhn_files(locate_svhn(data_dir, download)))
            class_names = tuple(map(str, range(10)))
            loader = load_svhn
        else:
            dataset = "MNIST" if name == "mnist" else "Fashion-MNIST"
            source = _fingerprint(mnist_files(locate_mnist(dataset, data_dir, download)))
            class_names = tuple(map(str, range(10))) if name == "mnist" else FASHION_MNIST_CLASSES
            loader = load_mnist if name == "mnist" else load_fashion_mnist

        def load_raw():
            return loader(data_dir, download=False)  # located above, so present

    if cache is None:
        cache = name != "synthetic"
    cached = preprocess == "gcn_zca" and cache
    where = location.cache_dir(cache_dir) if cached else None

    def compute() -> dict:
        x_train, y_train, x_test, y_test = load_raw()
        if train_subset is not None:
            if int(train_subset) > len(x_train):
                raise UserError(f"--train-subset {train_subset} is larger than the "
                                f"{len(x_train)} training images of {name}.",
                                flag="--train-subset")
            x_train, y_train = x_train[:int(train_subset)], y_train[:int(train_subset)]
        arrays = (x_train, y_train, x_test, y_test)
        if preprocess != "gcn_zca" or len(x_train) < 5000:     # quick: no word needed
            return _preprocess(arrays, preprocess, gcn_scale, zca_filter_bias)
        # the whitening of all of CIFAR-10 takes a minute or more: say so, once
        start = time.perf_counter()
        _say(f"whitening {name} (GCN + ZCA of {len(x_train)} images; first time only, "
             f"about 1-3 min); " + (f"cached in {where}" if where else "not cached (cache off)"))
        out = _preprocess(arrays, preprocess, gcn_scale, zca_filter_bias)
        _say(f"whitened in {time.perf_counter() - start:.0f} s")
        return out

    if cached:
        params = {"name": name, "preprocess": preprocess, "scale": float(gcn_scale),
                  "filter_bias": float(zca_filter_bias),
                  "train_subset": None if train_subset is None else int(train_subset),
                  "version": _CACHE_VERSION, "source": source}
        arrays = cached_arrays(where, params, compute)
    else:
        arrays = compute()
    return Dataset(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                   num_classes=num_classes, name=name, class_names=class_names,
                   preprocess=preprocess)
