"""What every regime of the cross-robustness table is trained and tested on.

One :class:`CrossData` holds the training and test sources and how they were made (the
dataset's name, folder and subsets), because the two kinds of training take their images
differently: Algorithm-1 regimes go through ``tinyproj.runs.training.train``, which loads
the dataset by name, noisy regimes take the sources directly. :func:`load_data` makes both
see the same images.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..data import load_dataset
from ..data.sources import ArraySource

__all__ = ["CrossData", "load_data"]


@dataclass
class CrossData:
    """What every regime is trained and tested on.

    train, test       sources with ``len()`` and ``.batch(indices) -> (x, y)``
    num_classes       10 for MNIST
    dataset, data_dir the dataset's name and folder (training.train loads it by name)
    train_subset, test_subset   first N images used (None: all)
    """

    train: object
    test: object
    num_classes: int = 10
    dataset: str = "mnist"
    data_dir: str | None = None
    train_subset: int | None = None
    test_subset: int | None = None

    @property
    def chance_accuracy(self) -> float:
        return 1.0 / self.num_classes


def load_data(dataset: str = "mnist", data_dir=None, train_subset: int | None = None,
              test_subset: int | None = None, download: bool = False) -> CrossData:
    """The training and test sources of ``dataset`` (first N images when subsets are given).

    data_dir: the folder holding ``mnist/`` (default ``$TINYPROJ_DATA`` or ``./datasets``).
    ``"synthetic"``: the small made-up set of ``load_dataset("synthetic")`` (1000 training
    and 200 test images of 3×32×32), for trying things out without MNIST.
    """
    if str(dataset).lower() == "synthetic":
        ds = load_dataset("synthetic")        # exactly what training.train loads by name
    else:
        ds = load_dataset(dataset, data_dir=data_dir, download=download)
    x, y, xt, yt = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    if train_subset:
        x, y = x[:train_subset], y[:train_subset]
    if test_subset:
        xt, yt = xt[:test_subset], yt[:test_subset]
    return CrossData(ArraySource(x, y), ArraySource(xt, yt), ds.num_classes, str(dataset),
                     None if data_dir is None else str(data_dir), train_subset, test_subset)
