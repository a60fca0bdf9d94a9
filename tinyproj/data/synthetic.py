"""A small, learnable, made-up classification dataset for tests and quick demos."""
from __future__ import annotations

import numpy as np  # host-side data generation

__all__ = ["synthetic_classification"]


def synthetic_classification(n, shape=(3, 32, 32), num_classes=10, seed=0, noise=1.0,
                             dtype=np.float64):
    """``n`` examples of ``shape`` drawn around class-dependent means.

    Returns ``(x, y)``: ``x`` float32 (n, *shape), ``y`` int64 (n,) in 0..num_classes-1.
    Classes are balanced (label ``i % num_classes``, shuffled). Each class ``c`` has a
    mean image ``m_c ~ N(0, 1)`` per value, and ``x = m_{y} + noise * N(0, 1)``. With the
    default noise and more than a few dozen values per example the classes are easy to
    separate, so a model that learns anything fits them. The same seed gives the same data.
    ``dtype``: what the normals are drawn in; float32 (other numbers from the same seed) halves
    the memory of a large set, e.g. the GPU benchmark's 60,000 CIFAR-sized images.
    """
    if n < 1 or num_classes < 1:
        raise ValueError(f"synthetic_classification: need n >= 1 and num_classes >= 1, got "
                         f"n={n}, num_classes={num_classes}.")
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    means = rng.standard_normal((num_classes, *shape), dtype=dtype)
    y = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    x = means[y] + noise * rng.standard_normal((n, *shape), dtype=dtype)
    return x.astype(np.float32, copy=False), y
