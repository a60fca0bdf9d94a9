"""Datasets, preprocessing and minibatches.

One module per idea:

- ``dataset.py``    ``load_dataset(name, ...) -> Dataset``, the single entry point
- ``cifar.py``      CIFAR-10 from the official python batches (``load_cifar10``)
- ``mnist.py``      MNIST and Fashion-MNIST from IDX files (``load_mnist``, ``load_fashion_mnist``)
- ``svhn.py``       SVHN from its official .mat files (``load_svhn``)
- ``matfile.py``    a small reader of MATLAB level-5 files, numeric arrays only (``read_mat``)
- ``imagenet.py``   a streamed folder of class sub-folders (``ImageFolder``)
- ``synthetic.py``  a learnable made-up dataset for tests (``synthetic_classification``)
- ``preprocess.py`` scaling, the Walking Noise normalizations, GCN, ZCA whitening, the cache
- ``augment.py``    random crop (padding 4) and horizontal flip of training batches
- ``batches.py``    the validation split and minibatch iteration
- ``location.py``   where the data are (``data_dir()``) and where caches go (``cache_dir()``)
- ``files.py``      dataset errors, downloads, md5 checks, atomic writes (umask respected)

Where the data are: ``--data-dir`` / ``data_dir=``, else ``$TINYPROJ_DATA``, else
``../shared/datasets`` beside the checkout when it exists, else ``datasets/`` (always made
absolute). Derived caches (the GCN + ZCA whitening) go to ``$TINYPROJ_CACHE``, else
``~/.cache/tinyproj`` — never into the data folder, which may be shared and read-only.

Loading and preprocessing happen on the host in NumPy (file I/O, done once);
``iterate_minibatches`` hands each batch to the backend in use (NumPy or CuPy).

Example::

    from tinyproj import backend, data
    ds = data.load_dataset("cifar10")                  # GCN + ZCA as in the paper (cached)
    x_tr, y_tr, x_val, y_val = data.train_val_split(ds.x_train, ds.y_train, n_val=5000)
    rng = backend.make_rng(0)
    for xb, yb in data.iterate_minibatches(x_tr, y_tr, 50, rng=rng):
        ...                                            # xb float32 (50, 3, 32, 32), yb int64
"""
from .batches import iterate_minibatches, num_batches, train_val_split
from .cifar import download_cifar10, load_cifar10, read_cifar_batch
from .dataset import (DATASET_NAMES, DATASET_SHAPES, DATASET_SIZES, PREPROCESSINGS, Dataset,
                      dataset_shape, load_dataset)
from .files import (ChecksumWarning, DatasetError, DatasetNotFoundError, default_data_dir,
                    file_md5)
from .imagenet import ImageFolder, load_image, locate_imagenet, normalize_imagenet
from .location import cache_dir, data_dir
from .mnist import download_mnist, load_fashion_mnist, load_mnist, read_idx
from .matfile import read_mat
from .preprocess import (ZCA, gcn_zca, global_contrast_normalize, normalize_channels,
                         scale_signed, scale_to_unit)
from .svhn import download_svhn, load_svhn, read_svhn_mat
from .synthetic import synthetic_classification

__all__ = [
    "load_dataset", "Dataset", "DATASET_NAMES", "PREPROCESSINGS", "DATASET_SHAPES",
    "DATASET_SIZES", "dataset_shape", "data_dir", "cache_dir", "locate_imagenet",
    "load_cifar10", "download_cifar10", "read_cifar_batch",
    "load_mnist", "load_fashion_mnist", "download_mnist", "read_idx",
    "load_svhn", "download_svhn", "read_svhn_mat", "read_mat",
    "ImageFolder", "load_image", "normalize_imagenet",
    "synthetic_classification",
    "global_contrast_normalize", "ZCA", "gcn_zca", "scale_to_unit", "scale_signed",
    "normalize_channels",
    "train_val_split", "iterate_minibatches", "num_batches",
    "DatasetError", "DatasetNotFoundError", "ChecksumWarning", "default_data_dir", "file_md5",
]
