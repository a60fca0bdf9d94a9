"""Learning dynamics under noisy training: weight magnitudes and self-binarization.

Walking Noise's two observations (docs/papers.md §2.8), each with a measure recorded per epoch:

**Weights grow under additive noise.** Additive noise of fixed σ hurts less when the
signal it is added to is larger, so training raises the signal-to-noise ratio by growing the
weights. :func:`weight_stats` gives, per weight layer (conv/linear weights, ndim >= 2)::

    mean_abs = mean |w|,   std = std(w),   max_abs = max |w|

(a weight clamp to [−1, 1] during training, ``train_noisy(clamp=1.0)``, tests the
explanation: with the growth blocked the robustness gain should shrink).

**Multiplicative noise can binarize the weights.** Under y = x·N(1, σ) a weight close to zero
carries almost only noise, and the network may push its weights to two values ±a
("self-binarization"). :func:`binarization` measures, per weight layer, two things:

``share_near_max``
    the fraction of weights with |w| > 0.9 · max|w|: near ±max. 1.0 for a layer of ±a
    values; for Glorot-uniform weights (uniform on [−a, a]) 0.1; for Gaussian-like weights
    much smaller. Sensitive to a single outlier (it sets max|w|).
``bimodality``
    Sarle's bimodality coefficient of the (signed) weights, population moments::

        b = (skewness² + 1) / kurtosis,   kurtosis = m4 / m2²  (not the excess)

    1.0 for a symmetric two-point distribution (±a, the binarized limit), 5/9 ≈ 0.556 for a
    uniform one, 1/3 for a Gaussian; values above 5/9 suggest two modes. Robust to
    outliers in the sense that it uses the whole distribution; None when all weights are
    equal (no spread: undefined).

Both are in [0, 1]; watch them per epoch (``train_noisy(record_dynamics=True)``).

Over a run (:func:`growth`, :func:`magnitude_histogram`, :func:`looks_binarized`):

``growth``
    per layer, mean |w| at the end over mean |w| at the start (epoch 0, before any step):
    above 1 the layer's weights grew. Walking Noise's additive-noise claim predicts growth in
    the layers that feed the noisy site, more for larger σ.
``magnitude_histogram``
    the shares of |w| / max|w| in equal bins over [0, 1]: a layer of ±a values has all its
    weight in the last bin, Glorot/PyTorch-uniform weights are flat, Gaussian-like weights
    pile up near 0. The last of 10 bins is ``share_near_max``.
``looks_binarized``
    the verdict used in the results: bimodality above 0.7 — between a uniform layer (5/9) and
    a mixture of ±a with spread 0.3·a around each (≈ 0.76); a Gaussian scores 1/3 — **and**
    fewer than 10 % of the weights within 10 % of max|w| of zero (``share_near_zero``, the
    first histogram bin). Sarle's coefficient rather than ``share_near_max``, because one
    outlier sets max|w|; the near-zero condition because b is also high for a spike at 0 plus
    a broad hump on one side (two modes, but not ±a). The additive σ ≥ 1e4 runs of
    ``benchmarks/wn_dynamics.py`` left fc1 so: about half of its weights near their small
    initial values (those of never- or rarely-lit MNIST pixels and of hidden units that never
    got a gradient), the others grown, nearly all positive — b ≈ 0.71. (A symmetric
    layer with a share p exactly at 0 has b ≤ 1 − p, so b = 0.71 with p ≈ 0.53 near 0
    means a skewed, one-sided layer.)

How these measures behave in the authors' regime (MNIST ``mlp_tfc``, σ up to 1e8–1e10) is
the experiment ``benchmarks/wn_dynamics.py``; its numbers are in
``results/wn-dynamics-mnist/`` and lesson 10.
"""
from __future__ import annotations

import math

import numpy as np  # host-side: histograms of values copied to the host

from .. import backend
from ..algorithm1 import weight_params

__all__ = ["weight_stats", "binarization", "share_near_max", "bimodality_coefficient",
           "layer_weights", "dynamics_row", "magnitude_histogram", "looks_binarized",
           "growth", "share_near_zero", "BINARIZED_BIMODALITY", "BINARIZED_NEAR_ZERO"]

BINARIZED_BIMODALITY = 0.7
"""Bimodality above which :func:`looks_binarized` calls a layer binarized (module docstring)."""
BINARIZED_NEAR_ZERO = 0.1
"""Share of weights near zero below which :func:`looks_binarized` calls a layer binarized."""


def layer_weights(model) -> dict:
    """``{layer name: weight array}`` for the conv/linear weights (``"fc1"``, ``"conv2"``)."""
    out = {}
    for name, p in weight_params(model).items():
        layer = name[:-len(".weight")] if name.endswith(".weight") else name
        out[layer] = p.data
    return out


def _flat64(w):
    xp = backend.xp_of(w)
    return xp.asarray(w, dtype=xp.float64).reshape(-1), xp


def weight_stats(model) -> dict:
    """``{layer: {"mean_abs", "std", "max_abs"}}`` for every conv/linear weight (floats)."""
    out = {}
    for layer, w in layer_weights(model).items():
        v, xp = _flat64(w)
        a = xp.abs(v)
        stats = backend.to_numpy(xp.stack([a.mean(), v.std(), a.max()]))   # one sync
        out[layer] = {"mean_abs": float(stats[0]), "std": float(stats[1]),
                      "max_abs": float(stats[2])}
    return out


def share_near_max(w, fraction: float = 0.9) -> float:
    """Fraction of the entries of ``w`` with |w| > fraction · max|w| (0.0 for all zeros)."""
    v, xp = _flat64(w)
    a = xp.abs(v)
    top = a.max().item() if a.size else 0.0          # .item(): explicit syncs on a GPU
    if top == 0.0:
        return 0.0
    return (a > fraction * top).mean().item()


def bimodality_coefficient(w) -> float | None:
    """Sarle's b = (skew² + 1) / kurtosis of the entries of ``w`` (None without spread)."""
    v, xp = _flat64(w)
    d = v - v.mean()
    m2, m3, m4 = (float(m) for m in backend.to_numpy(          # one sync on a GPU
        xp.stack([(d * d).mean(), (d ** 3).mean(), (d ** 4).mean()])))
    if not m2 > 0 or not math.isfinite(m2):
        return None
    skew = m3 / m2 ** 1.5
    kurt = m4 / (m2 * m2)
    return (skew * skew + 1.0) / kurt


def binarization(model, fraction: float = 0.9) -> dict:
    """``{layer: {"share_near_max", "bimodality"}}`` per conv/linear weight (module docstring)."""
    return {layer: {"share_near_max": share_near_max(w, fraction),
                    "bimodality": bimodality_coefficient(w)}
            for layer, w in layer_weights(model).items()}


def dynamics_row(model) -> dict:
    """``{"weights": weight_stats(model), "binarization": binarization(model)}``."""
    return {"weights": weight_stats(model), "binarization": binarization(model)}


def magnitude_histogram(w, bins: int = 10) -> list:
    """Shares of |w| / max|w| in ``bins`` equal bins over [0, 1] (floats summing to 1).

    The last bin is (1 − 1/bins, 1]: with 10 bins it holds the weights within 10 % of the
    layer's largest magnitude. All zeros (no scale): every weight counts in the first bin.
    """
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 1:
        raise ValueError(f"magnitude_histogram: bins must be an integer >= 1, got {bins!r}")
    v, xp = _flat64(w)
    a = np.asarray(backend.to_numpy(xp.abs(v)))       # one copy to the host (explicit sync)
    if a.size == 0:
        return [0.0] * bins
    top = float(a.max())
    if top == 0.0:
        return [1.0] + [0.0] * (bins - 1)
    # bin k holds k/bins < |w|/top <= (k+1)/bins; exact zeros go to bin 0
    idx = np.clip(np.ceil(a / top * bins).astype(np.int64) - 1, 0, bins - 1)
    return [float(c) / a.size for c in np.bincount(idx, minlength=bins)]


def share_near_zero(w, fraction: float = 0.1) -> float:
    """Fraction of the entries of ``w`` with |w| <= fraction · max|w| (1.0 for all zeros)."""
    v, xp = _flat64(w)
    a = xp.abs(v)
    top = a.max().item() if a.size else 0.0          # .item(): explicit syncs on a GPU
    if a.size == 0:
        return 0.0
    if top == 0.0:
        return 1.0
    return (a <= fraction * top).mean().item()


def looks_binarized(w, threshold: float = BINARIZED_BIMODALITY,
                    near_zero: float = BINARIZED_NEAR_ZERO) -> bool:
    """True when Sarle's bimodality of ``w`` is above ``threshold`` and fewer than
    ``near_zero`` of its entries lie within 10 % of max|w| of zero (False without spread)."""
    b = bimodality_coefficient(w)
    return b is not None and b > threshold and share_near_zero(w) < near_zero


def growth(first: dict, last: dict, key: str = "mean_abs") -> dict:
    """``{layer: last[layer][key] / first[layer][key]}`` for two :func:`weight_stats` results.

    first: the statistics at the start (epoch 0); last: at the end. A layer whose starting
    value is 0 gives ``inf`` (or ``nan`` when both are 0); layers missing from either are left
    out.
    """
    out = {}
    for layer in first:
        if layer not in last:
            continue
        a, b = float(first[layer][key]), float(last[layer][key])
        out[layer] = b / a if a != 0 else (math.inf if b != 0 else math.nan)
    return out
