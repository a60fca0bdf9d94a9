"""The midpoint noise level μ of Walking Noise: the σ at which a site is half broken.

For one walk (accuracy a_i at noise levels σ_i, one site) with maximum accuracy a_max and
chance accuracy a_c (0.1 for 10 classes)::

    threshold = a_c + (a_max − a_c) / 2            halfway from the maximum down to chance

Starting from the σ of the maximum and walking to larger σ, the midpoint μ is the first level
where the accuracy falls to the threshold or below, **interpolated linearly in log σ** between
the two grid points that bracket it (the σ grid is logarithmic: 1e-2, 1e-1, ...)::

    log μ = log σ₀ + (a₀ − threshold) / (a₀ − a₁) · (log σ₁ − log σ₀)

A larger μ is a more robust site. On a linear grid that starts at σ = 0 (the authors'
multiplicative 0…2 and 0…6) the interpolation is linear in σ instead (``scale``).

If the accuracy never falls to the threshold on the grid, μ lies beyond the grid:
``sigma=None``, ``beyond_grid=True`` (widen the grid to find it).
If the maximum accuracy is itself at or below chance there is no midpoint (``sigma=None``,
``beyond_grid=False``, with a note).

Several seeds. :func:`summarize_midpoints` averages the midpoints of several seeds on the
log scale: the geometric mean 10^mean(log10 μ) and the standard deviation of log10 μ (in
decades, ddof = 1), over the seeds whose walk crossed the threshold; ``n_beyond`` counts the
seeds whose μ lies beyond the grid (their μ is larger than the grid's end, so a mean over the
others understates the robustness — report n_beyond with it).

The crossing rule is shared with the robustness sweeps: :mod:`tinyproj.runs.midpoint`. This
file adds what is Walking Noise's own: the walk starts at the maximum accuracy, and the spread
of μ over seeds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from ..runs.midpoint import midpoint

__all__ = ["Midpoint", "midpoint_sigma", "MidpointSummary", "summarize_midpoints"]


@dataclass
class Midpoint:
    """Where accuracy has fallen halfway from its maximum to chance.

    sigma         μ, interpolated on log σ; None when not crossed on the grid
    beyond_grid   True when the accuracy stays above the threshold up to the largest σ
    max_accuracy  a_max over the grid
    threshold     a_c + (a_max − a_c)/2
    chance        a_c
    note          why there is no sigma, when there is none
    """

    sigma: float | None
    beyond_grid: bool
    max_accuracy: float
    threshold: float
    chance: float = 0.1
    note: str = ""


def midpoint_sigma(sigmas, accuracies, chance: float = 0.1, scale: str | None = None
                   ) -> Midpoint:
    """The :class:`Midpoint` of one walk (module docstring for the rule).

    sigmas: the noise levels (any order, no repeats; > 0 on a log scale); accuracies: the
    accuracy (fraction 0..1) at each. chance: the chance accuracy, 1/classes. scale: "log"
    or "linear" σ for the interpolation; None (default) = "linear" when the grid holds σ = 0
    (the authors' linear multiplicative grids 0…2, 0…6), else "log". The crossing itself is
    :func:`tinyproj.runs.midpoint.midpoint`, started at the σ of the (first) maximum accuracy.
    """
    sigmas, accuracies = list(sigmas), list(accuracies)
    if len(sigmas) != len(accuracies):
        raise ValueError(f"midpoint_sigma: {len(sigmas)} sigmas but {len(accuracies)} "
                         "accuracies; give one accuracy per sigma")
    if not sigmas:
        raise ValueError("midpoint_sigma: no points (give at least one sigma and its accuracy)")
    chance = float(chance)
    try:
        pairs = sorted(zip((float(s) for s in sigmas), (float(a) for a in accuracies)))
        top = max(range(len(pairs)), key=lambda i: (pairs[i][1], -i))   # first maximum
        a_max = pairs[top][1]
        if scale is None:
            scale = "linear" if any(s == 0.0 for s, _ in pairs) else "log"
        c = midpoint(sigmas, accuracies, clean=a_max, chance=chance, start=pairs[top][0],
                     side="up", kind="accuracy", scale=scale)
    except ValueError as err:
        raise ValueError(f"midpoint_sigma: {err}") from None
    return Midpoint(c.level, c.beyond_grid, a_max, c.threshold, chance, note=c.note)


class MidpointSummary(NamedTuple):
    """Midpoints of several seeds: ``(geo_mean, log10_std, n, n_beyond)``.

    geo_mean   10^mean(log10 μ) over the n seeds with a midpoint (None when n = 0)
    log10_std  standard deviation of log10 μ, in decades, ddof = 1 (0.0 for n = 1, None for 0)
    n          seeds with a midpoint on the grid
    n_beyond   seeds whose midpoint lies beyond the grid (not in the mean)
    """

    geo_mean: float | None
    log10_std: float | None
    n: int
    n_beyond: int

    @property
    def log10_mean(self) -> float | None:
        return None if self.geo_mean is None else math.log10(self.geo_mean)


def summarize_midpoints(midpoints) -> MidpointSummary:
    """Geometric mean and log10 spread of several seeds' midpoints (module docstring)."""
    midpoints = list(midpoints)
    logs = [math.log10(m.sigma) for m in midpoints if m.sigma is not None]
    n_beyond = sum(1 for m in midpoints if m.sigma is None and m.beyond_grid)
    if not logs:
        return MidpointSummary(None, None, 0, n_beyond)
    mean = math.fsum(logs) / len(logs)
    std = (math.sqrt(math.fsum((v - mean) ** 2 for v in logs) / (len(logs) - 1))
           if len(logs) > 1 else 0.0)
    return MidpointSummary(10 ** mean, std, len(logs), n_beyond)
