"""The midpoint level: how much distortion a layer (or the network) takes before it is half broken.

Borrowed from Walking Noise (docs/papers.md §2.3), applied to weight distortions. With the clean error
e_0 (the error at the distortion's identity level: σ = 0, γ = 1, β = 1) and the chance error
e_c = 1 − 1/classes (0.9 for 10 classes)::

    threshold = e_0 + (e_c − e_0) / 2          halfway from clean to chance

Walking from the identity level in the direction in which the distortion grows (σ up, γ down;
for β, "down" towards Sign by default, or "up"), the midpoint is the first level where the
mean error reaches the threshold, **interpolated linearly in the level** between the two grid
points that bracket it. (Not on a log scale: the σ grid starts at 0, and the γ and β grids are
short linear ranges.) If the error never reaches the threshold on the grid, the midpoint lies
beyond the grid: ``level=None`` and ``beyond_grid=True``; widen the grid to find it. A larger
midpoint (for σ; a smaller one for γ) means a more robust layer.

The crossing rule is shared with Walking Noise: :mod:`tinyproj.runs.midpoint`. This file adds
what is Merolla's own: the clean error read from the identity level, one midpoint per layer.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..runs.midpoint import crossing, midpoint
from .sweeps import get_distortion

__all__ = ["Midpoint", "midpoint_level", "midpoints"]


@dataclass
class Midpoint:
    """Where the error crosses halfway between clean and chance.

    layer        weight name, or None for the whole network
    level        the interpolated level, or None when not crossed on the grid
    beyond_grid  True when the error stays below the threshold over the whole grid
    clean_error, chance_error, threshold    e_0, e_c and e_0 + (e_c − e_0)/2
    side         "up" or "down": the direction walked from the identity level
    note         why there is no level, when there is none
    """

    layer: str | None
    level: float | None
    beyond_grid: bool
    clean_error: float
    chance_error: float
    threshold: float
    side: str
    note: str = ""


def midpoint_level(levels, errors, threshold: float, start: float, side: str = "up"):
    """``(level or None, beyond_grid)``: first crossing of ``threshold`` walking from ``start``.

    levels, errors: the grid and its (mean) errors, any order; only levels on ``side`` of
    ``start`` (>= start for "up", <= start for "down") are used, nearest first. The crossing
    is interpolated linearly between the bracketing levels. If the first point already
    reaches the threshold, its level is returned. (:func:`tinyproj.runs.midpoint.crossing`
    with errors on a linear scale.)
    """
    c = crossing(levels, errors, threshold, start=start, side=side, kind="error",
                 scale="linear")
    return c.level, c.beyond_grid


def midpoints(rows: list, distortion=None, side: str | None = None, clean_error=None,
              chance_error=None) -> dict:
    """``{layer: Midpoint}`` for the rows of one sweep (a per-layer sweep gives one per layer).

    rows: from ``merge_sweep_files`` (fields layer, level, error_mean, chance_error).
    distortion: its name (default: the rows' ``distortion``). side: default the distortion's
    ``worse`` direction. clean_error: e_0 when the identity level is not in the grid (otherwise
    the identity row's mean error is used, per layer). chance_error: default the rows' value,
    else 0.9. Raises ValueError when the clean error is unknown.
    """
    if not rows:
        return {}
    dist = get_distortion(distortion if distortion is not None else rows[0]["distortion"])
    side = side or dist.worse
    by_layer = {}
    for row in rows:
        by_layer.setdefault(row.get("layer"), []).append(row)
    out = {}
    for layer, layer_rows in by_layer.items():
        chance = chance_error if chance_error is not None else \
            layer_rows[0].get("chance_error", 0.9)
        clean = clean_error
        identity = [r for r in layer_rows if float(r["level"]) == dist.identity]
        if identity:
            clean = identity[0]["error_mean"]
        if clean is None:
            raise ValueError(f"{dist.name}: the identity level {dist.param}={dist.identity} is "
                             f"not in the grid of layer {layer or 'all'}; pass clean_error=... "
                             "or include that level in the sweep")
        levels = [float(r["level"]) for r in layer_rows]
        errors = [float(r["error_mean"]) for r in layer_rows]
        if not identity:
            levels.append(dist.identity)
            errors.append(clean)
        c = midpoint(levels, errors, clean=clean, chance=chance, start=dist.identity,
                     side=side, kind="error", scale="linear")
        out[layer] = Midpoint(layer, c.level, c.beyond_grid, clean, chance, c.threshold, side,
                              note=c.note)
    return out
