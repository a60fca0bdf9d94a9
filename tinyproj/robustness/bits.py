"""Bits per weight: the signal-to-noise view of a weight distortion (Merolla et al., section 4.1.2).

A distorted weight is read as signal plus noise, ``P = W + N``. A channel with signal power
Q_w and independent Gaussian noise power Q_n carries at most (Shannon)::

    bits = ½ · log2(1 + Q_w / Q_n)

per use, so a weight known only up to that noise holds that many bits. The paper: "Tr-Stoch-C
achieves a test error of 11 % even when σ = 0.55. This corresponds to 0.68 bits per weight".

Per layer k (n_k weights, alpha_k = max_i |w_ki|)::

    Q_w,k = mean_i(w_ki²)                              second moment of the layer's weights
    Q_n,k = (alpha_k · σ)²                             AddNorm(σ): noise N(0, alpha_k·σ), exact
    Q_n,k = Q_w,k · E[(u − 1)²], u ~ U(γ, 1/γ)         MultUnif(γ): noise w·(u − 1), exact
    Q_n,k = mean_i((p_ki − w_ki)²)                     empirical, from one draw P of any distortion
    b_k   = ½ · log2(1 + Q_w,k / Q_n,k)                bits per weight of layer k

For the whole network (the distorted layers only) two numbers are given:

``per_weight`` (the one reported as ``bits_per_weight``)
    the weight-count-weighted mean of the layers' bits, Σ_k n_k·b_k / Σ_k n_k: the total
    information the distorted weights carry, divided by their number.
``pooled``
    ½·log2(1 + Q_w/Q_n) with Q_w and Q_n pooled over all distorted weights
    (Q_w = Σ n_k·Q_w,k / Σ n_k, likewise Q_n): all weights treated as one distribution.

Both agree when every layer has the same ratio Q_w,k/Q_n,k; they differ a little otherwise.

No noise (σ = 0, γ = 1) means infinite bits: the functions return ``math.inf``, and the sweep
files write it as JSON ``null`` (strict JSON has no infinity; see :func:`finite_or_none`).
For MultUnif the "noise" w·(u − 1) grows with the weight and has a non-zero mean
(E[u] = (γ + 1/γ)/2 > 1), so its bits are only the SNR analogue, not a capacity.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .. import backend

__all__ = ["snr_bits", "second_moment", "BitsReport", "bits_report", "addnorm_noise_power",
           "multunif_noise_power", "empirical_noise_power", "addnorm_bits", "multunif_bits",
           "multunif_relative_noise", "finite_or_none"]


def snr_bits(q_w: float, q_n: float) -> float:
    """½·log2(1 + q_w/q_n); ``inf`` when there is no noise (q_n = 0), 0 when there is no signal."""
    if q_n < 0 or q_w < 0:
        raise ValueError(f"second moments cannot be negative; got Q_w={q_w}, Q_n={q_n}")
    if q_n == 0:
        return math.inf
    return 0.5 * math.log2(1.0 + q_w / q_n)


def second_moment(array) -> float:
    """mean(x²) of a whole array, accumulated in float64, as a Python float."""
    xp = backend.xp_of(array)
    x = xp.asarray(array, dtype="float64")
    return (x * x).mean().item() if x.size else 0.0      # .item(): an explicit sync on a GPU


@dataclass
class BitsReport:
    """Bits per weight of some layers and of them together (see the module docstring).

    per_layer   {name: b_k}   (``inf`` for a layer without noise)
    per_weight  Σ n_k·b_k / Σ n_k, the network's bits per weight
    pooled      ½·log2(1 + Q_w/Q_n) with pooled second moments
    """

    per_layer: dict
    per_weight: float
    pooled: float

    def as_json(self) -> dict:
        """Row fields with infinities written as None (JSON null)."""
        return {"bits_per_weight": finite_or_none(self.per_weight),
                "bits_per_weight_pooled": finite_or_none(self.pooled),
                "bits_per_layer": {k: finite_or_none(v) for k, v in self.per_layer.items()}}


def bits_report(weights: dict, noise_power: dict) -> BitsReport:
    """Bits of the layers named in ``noise_power`` ({name: Q_n,k}); ``weights`` = {name: array}."""
    if not noise_power:
        raise ValueError("bits_report: no layer given (noise_power is empty)")
    per_layer, counts, q_ws = {}, {}, {}
    for name, q_n in noise_power.items():
        if name not in weights:
            raise ValueError(f"bits_report: no weights for layer {name!r}; have {list(weights)}")
        q_ws[name] = second_moment(weights[name])
        counts[name] = int(weights[name].size)
        per_layer[name] = snr_bits(q_ws[name], float(q_n))
    total = sum(counts.values())
    if any(math.isinf(b) for b in per_layer.values()):
        per_weight = math.inf          # a noiseless layer holds unbounded information
    else:
        per_weight = sum(counts[k] * per_layer[k] for k in per_layer) / total
    pooled_w = sum(counts[k] * q_ws[k] for k in per_layer) / total
    pooled_n = sum(counts[k] * float(noise_power[k]) for k in per_layer) / total
    return BitsReport(per_layer, per_weight, snr_bits(pooled_w, pooled_n))


def addnorm_noise_power(weights: dict, sigma: float) -> dict:
    """{name: (alpha_k·σ)²}: the exact noise second moment of AddNorm(σ), layer by layer."""
    out = {}
    for name, w in weights.items():
        xp = backend.xp_of(w)
        alpha = xp.abs(w).max().item() if w.size else 0.0    # .item(): explicit sync
        out[name] = (alpha * float(sigma)) ** 2
    return out


def multunif_relative_noise(gamma: float) -> float:
    """E[(u − 1)²] for u ~ U(γ, 1/γ): with a = γ, b = 1/γ, E[u] = (a+b)/2, E[u²] = (a²+ab+b²)/3."""
    a, b = float(gamma), 1.0 / float(gamma)
    return max(0.0, (a * a + a * b + b * b) / 3.0 - (a + b) + 1.0)


def multunif_noise_power(weights: dict, gamma: float) -> dict:
    """{name: Q_w,k·E[(u − 1)²]}: the exact second moment of w·(u − 1) under MultUnif(γ)."""
    rel = multunif_relative_noise(gamma)
    return {name: second_moment(w) * rel for name, w in weights.items()}


def empirical_noise_power(clean: dict, distorted: dict) -> dict:
    """{name: mean((p − w)²)} measured from one draw: ``clean`` W and ``distorted`` P by name."""
    return {name: second_moment(backend.xp_of(p).asarray(p, dtype="float64") - clean[name])
            for name, p in distorted.items()}


def addnorm_bits(weights: dict, sigma: float) -> BitsReport:
    """Bits per weight under AddNorm(σ), exact (Q_n,k = (alpha_k·σ)²)."""
    return bits_report(weights, addnorm_noise_power(weights, sigma))


def multunif_bits(weights: dict, gamma: float) -> BitsReport:
    """Bits per weight under MultUnif(γ), exact (the SNR analogue; see the module docstring)."""
    return bits_report(weights, multunif_noise_power(weights, gamma))


def finite_or_none(x):
    """``x`` as a float, or None for inf/NaN (how the sweep files write infinite bits)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None
