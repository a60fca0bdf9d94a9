"""Preprocessing on the host: scaling, normalization, GCN, ZCA whitening, caching.

Walking Noise's normalizations (the authors' torchvision transforms, ``ToTensor`` then
``Normalize``), all from uint8 pixels p::

    scale     p / 255                               in [0, 1]    (their MNIST)
    signed    (p / 255 − 0.5) / 0.5                 in [−1, 1]   (their Fashion-MNIST)
    meanstd   (p / 255 − mean_c) / std_c per channel             (their CIFAR-10 and SVHN)
              mean = (0.4914, 0.4822, 0.4465), std = (0.2023, 0.1994, 0.2010)
              (:data:`AUTHORS_MEAN`, :data:`AUTHORS_STD`: the constants in their code —
              the widely copied CIFAR-10 values, used for SVHN too; not recomputed here)

A black pixel (p = 0) becomes :func:`black_value` (0, −1, −mean_c/std_c): the value the
random crop pads with, since the authors pad the raw image before normalizing it.

The CIFAR-10 pipeline of the paper (BinaryConnect's, made with pylearn2's
``make_cifar10_gcn_whitened.py``) is::

    x = global_contrast_normalize(x, scale=55.)    # per image, use_std=False (see below)
    zca = ZCA(filter_bias=0.1).fit(x_train)        # fit on the training images only
    x_train, x_test = zca.transform(x_train), zca.transform(x_test)

Arithmetic is float64; results are stored as float32. Images are flattened to rows of
D = C*H*W values for the computation and given back in their original shape.

Which GCN? pylearn2's ``global_contrast_normalize`` has ``use_std=False`` by default, and
its CIFAR10 dataset class (``CIFAR10(gcn=55.)``, used by the whitening script) calls it
with that default. So each image is divided by its L2 norm (after mean removal) and
multiplied by 55: every image ends up with mean 0 and Euclidean norm 55. With
``use_std=True`` pylearn2 divides by the standard deviation with ``ddof=1`` instead
(``sqrt(sqrt_bias + X.var(axis=1, ddof=1)) / scale``); that variant is available here too,
but it is not the paper's.
"""
from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path

import numpy as np  # host-side preprocessing, done once before training

from .files import atomic_save_npz

__all__ = ["scale_to_unit", "scale_signed", "normalize_channels", "black_value",
           "AUTHORS_MEAN", "AUTHORS_STD", "global_contrast_normalize", "ZCA", "gcn_zca",
           "cached_arrays"]

AUTHORS_MEAN = (0.4914, 0.4822, 0.4465)
AUTHORS_STD = (0.2023, 0.1994, 0.2010)


def scale_to_unit(x) -> np.ndarray:
    """uint8 pixels 0..255 to float32 in [0, 1]: ``x / 255``."""
    return (np.asarray(x, dtype=np.float32) / np.float32(255.0))


def scale_signed(x) -> np.ndarray:
    """uint8 pixels to float32 in [−1, 1]: ``(x / 255 − 0.5) / 0.5``."""
    return (scale_to_unit(x) - np.float32(0.5)) / np.float32(0.5)


def normalize_channels(x, mean=AUTHORS_MEAN, std=AUTHORS_STD) -> np.ndarray:
    """uint8 images (N, C, H, W) to float32 ``(x / 255 − mean_c) / std_c`` per channel c.

    ``mean`` and ``std`` have one value per channel (default: the authors' constants).
    """
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[1] != len(mean) or len(std) != len(mean):
        raise ValueError(f"normalize_channels: images of shape (N, {len(mean)}, H, W) needed "
                         f"for {len(mean)} channel means, got {x.shape}")
    m = np.asarray(mean, dtype=np.float32)[None, :, None, None]
    s = np.asarray(std, dtype=np.float32)[None, :, None, None]
    return (scale_to_unit(x) - m) / s


def black_value(preprocess: str, channels: int) -> tuple:
    """The value of a black pixel (0) after ``preprocess``, one per channel: what a random
    crop pads with. GCN and ZCA work image by image, so a black border has no fixed value
    there; 0 (the data's mean after GCN) is used."""
    if preprocess == "signed":
        return (-1.0,) * channels
    if preprocess == "meanstd":
        return tuple(-m / s for m, s in zip(AUTHORS_MEAN, AUTHORS_STD))
    return (0.0,) * channels


def global_contrast_normalize(X, scale=1.0, subtract_mean=True, use_std=False,
                              sqrt_bias=0.0, min_divisor=1e-8) -> np.ndarray:
    """Global contrast normalization, image by image, exactly as pylearn2's function.

    ``X`` has shape (N, ...); each example ``x`` (flattened to D values) becomes::

        x <- x - mean(x)                                   if subtract_mean
        s  = sqrt(sqrt_bias + sum(x**2)) / scale           if not use_std  (the default)
        s  = sqrt(sqrt_bias + var(x, ddof=1)) / scale      if use_std      (ddof=0 when D == 1)
        x <- x / s                                         (s replaced by 1 where s < min_divisor)

    With the defaults and ``scale=55`` every image has mean 0 and L2 norm 55.
    Returns a new float64 array of the same shape as ``X`` (the input is not changed).
    """
    X = np.asarray(X)
    shape = X.shape
    X = X.reshape(shape[0], -1).astype(np.float64)  # a copy: the caller's array stays as is
    if subtract_mean:
        X -= X.mean(axis=1, keepdims=True)
    if use_std:
        ddof = 1 if X.shape[1] > 1 else 0  # as pylearn2 (MATLAB's var), avoiding NaN for D == 1
        normalizers = np.sqrt(sqrt_bias + X.var(axis=1, ddof=ddof)) / scale
    else:
        normalizers = np.sqrt(sqrt_bias + (X ** 2).sum(axis=1)) / scale
    normalizers[normalizers < min_divisor] = 1.0  # a blank image stays blank instead of NaN
    X /= normalizers[:, None]
    return X.reshape(shape)


class ZCA:
    """ZCA whitening as pylearn2's ``ZCA`` preprocessor (``filter_bias`` 0.1 by default).

    Fitting on training rows X (N, D), in float64::

        mu    = mean of X over examples                            (D,)
        Sigma = (X - mu)^T (X - mu) / N + filter_bias * I          (D, D)  (divides by N, not N-1)
        Sigma = V diag(lam) V^T                                    eigendecomposition
        W     = V diag(1 / sqrt(lam)) V^T                          (D, D), symmetric

    and ``transform(X) = (X - mu) W``. Without the bias the whitened training data would
    have covariance I; with it, the covariance is ``V diag(e / (e + filter_bias)) V^T``
    (e the eigenvalues of the plain covariance): directions with much more variance than
    ``filter_bias`` are whitened, weaker ones (mostly noise) are left damped.

    Attributes after :meth:`fit`: ``mean_`` (D,), ``W_`` (D, D), ``eigenvalues_`` (D,) of
    the biased covariance, ascending.
    """

    def __init__(self, filter_bias=0.1):
        self.filter_bias = float(filter_bias)
        self.mean_ = self.W_ = self.eigenvalues_ = None

    def fit(self, X, chunk=5000) -> "ZCA":
        """Fit on ``X`` (N, ...) flattened to (N, D). The covariance is summed in chunks of rows."""
        X = np.asarray(X)
        X = X.reshape(X.shape[0], -1)
        n, d = X.shape
        self.mean_ = X.mean(axis=0, dtype=np.float64)
        cov = np.zeros((d, d))
        for start in range(0, n, chunk):
            centered = X[start:start + chunk].astype(np.float64) - self.mean_
            cov += centered.T @ centered
        cov /= n
        cov[np.diag_indices(d)] += self.filter_bias
        eigenvalues, V = np.linalg.eigh(cov)
        if eigenvalues.min() <= 0:
            raise ValueError(f"ZCA: the covariance plus filter_bias={self.filter_bias} has a "
                             f"non-positive eigenvalue ({eigenvalues.min():.3g}); use a positive "
                             "filter_bias.")
        self.eigenvalues_ = eigenvalues
        self.W_ = (V / np.sqrt(eigenvalues)) @ V.T  # V diag(1/sqrt(lam)) V^T
        return self

    def transform(self, X, dtype=np.float32, chunk=5000) -> np.ndarray:
        """``(X - mean_) @ W_`` for ``X`` (N, ...), computed in float64, returned as ``dtype``."""
        if self.W_ is None:
            raise RuntimeError("ZCA.transform was called before fit; call zca.fit(x_train) first.")
        X = np.asarray(X)
        shape = X.shape
        X = X.reshape(shape[0], -1)
        if X.shape[1] != self.W_.shape[0]:
            raise ValueError(f"ZCA was fitted on {self.W_.shape[0]} values per example but got "
                             f"{X.shape[1]} (input shape {shape}).")
        out = np.empty(X.shape, dtype=dtype)
        for start in range(0, X.shape[0], chunk):
            rows = X[start:start + chunk].astype(np.float64) - self.mean_
            out[start:start + chunk] = rows @ self.W_
        return out.reshape(shape)


def gcn_zca(x_train, x_test, scale=55.0, filter_bias=0.1):
    """The paper's CIFAR-10 preprocessing: GCN (norm ``scale``) then ZCA fit on ``x_train``.

    Returns float32 ``(x_train, x_test)`` of the input shapes.
    """
    x_train = global_contrast_normalize(x_train, scale=scale)
    x_test = global_contrast_normalize(x_test, scale=scale)
    zca = ZCA(filter_bias=filter_bias).fit(x_train)
    return zca.transform(x_train), zca.transform(x_test)


def cached_arrays(cache_dir, params: dict, compute):
    """Return ``compute()`` (a dict of arrays), cached as ``.npz`` under a key made from ``params``.

    The file name shows the scalar parameters plus a short hash of all of them (lists such
    as a fingerprint of the source files count in the hash only), e.g.
    ``cifar10-gcn_zca-scale55.0-filter_bias0.1-train_subsetNone-1a2b3c4d.npz``. A cache hit loads the file; a
    miss computes, then writes atomically (temporary file + ``os.replace``, with the
    permissions of the user's umask, so classmates can share a cache folder). A cache that
    cannot be read is recomputed; a cache folder that cannot be written (read-only data
    folder) gives a warning and the computed arrays.
    """
    text = json.dumps(params, sort_keys=True)
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    parts = [str(value) if key in ("name", "preprocess") else f"{key}{value}"
             for key, value in params.items() if isinstance(value, (str, int, float, type(None)))]
    readable = re.sub(r"[^A-Za-z0-9._-]", "", "-".join(parts)) or "arrays"
    path = Path(cache_dir) / f"{readable}-{digest}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files if k != "params"}
            if arrays:
                return arrays
        except Exception as err:  # a damaged cache is no reason to stop: recompute it
            warnings.warn(f"ignoring unreadable cache file {path} ({err}); recomputing",
                          stacklevel=2)
    arrays = compute()
    try:
        atomic_save_npz(path, params=np.array(text), **arrays)
    except OSError as err:
        warnings.warn(f"could not write the preprocessing cache {path} ({err}); set "
                      "$TINYPROJ_CACHE (or pass cache_dir=) to a writable folder to keep the "
                      "result for next time", stacklevel=2)
    return arrays
