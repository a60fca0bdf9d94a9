"""The midpoint: the level at which a curve has crossed halfway from clean to chance.

Both papers sum a robustness curve up by one number. Walking Noise walks σ up a log grid
and reads off where the *accuracy* has fallen halfway to chance; the robustness sweeps of
Merolla et al. walk σ, γ or β away from the exact weights and read off where the *error*
has risen halfway to chance. It is the same rule::

    threshold = clean + (chance − clean) / 2          halfway from clean to chance

    walk the levels from ``start`` in the direction ``side`` ("up": increasing levels,
    "down": decreasing), nearest first; the midpoint is the first level whose value has
    reached the threshold (error >= threshold, accuracy <= threshold), interpolated between
    that level and the one before it:

        t        = (threshold − v₀) / (v₁ − v₀)
        midpoint = x⁻¹( x(l₀) + t · (x(l₁) − x(l₀)) )    x = identity ("linear") or log10 ("log")

A log scale suits a log grid (σ = 1e-2, 1e-1, …; every level must then be > 0); a linear
one suits grids that start at 0 or are short linear ranges (σ from 0, γ, β).

Beyond the grid: when no level on that side reaches the threshold, the curve crosses (if
ever) past the last level: ``level=None, beyond_grid=True``; widen the grid to find it. When
the clean value is itself at chance (or worse) there is no midpoint at all:
``level=None, beyond_grid=False`` and a note.

Used by :mod:`tinyproj.robustness.midpoint` (errors, linear) and
:mod:`tinyproj.walking_noise.midpoint` (accuracies, log σ); they add only what is their own
(which level is "clean", spreads over seeds).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Crossing", "halfway", "crossing", "midpoint", "KINDS", "SCALES"]

KINDS = ("error", "accuracy")
"""What the values are: errors grow under the distortion, accuracies fall."""

SCALES = ("linear", "log")


@dataclass(frozen=True)
class Crossing:
    """Where a curve reaches a threshold.

    level        the interpolated level, or None (not reached on the grid, or no midpoint)
    beyond_grid  True when the curve stays on the clean side of the threshold on the grid
    threshold    the value that had to be reached
    note         why there is no level, when there is none
    """

    level: float | None
    beyond_grid: bool
    threshold: float
    note: str = ""


def halfway(clean: float, chance: float) -> float:
    """``clean + (chance − clean) / 2``: the midpoint's threshold."""
    return clean + (chance - clean) / 2


def _check(levels, values, scale: str, kind: str) -> list:
    if scale not in SCALES:
        raise ValueError(f"scale must be 'linear' or 'log'; got {scale!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be 'error' or 'accuracy'; got {kind!r}")
    levels, values = list(levels), list(values)
    if len(levels) != len(values):
        raise ValueError(f"{len(levels)} levels but {len(values)} values; give one value "
                         "per level")
    pairs = []
    for level, value in zip(levels, values):
        level, value = float(level), float(value)
        if scale == "log" and not (math.isfinite(level) and level > 0):
            raise ValueError(f"every level must be a finite number > 0 on a log scale (the "
                             f"midpoint is interpolated on log sigma); got {level}")
        pairs.append((level, value))
    if len({level for level, _ in pairs}) != len(pairs):
        raise ValueError("a level appears twice; average the repeated points first (or pass "
                         "one seed's curve at a time)")
    return pairs


def crossing(levels, values, threshold: float, *, start: float, side: str = "up",
             kind: str = "error", scale: str = "linear") -> Crossing:
    """First crossing of ``threshold`` walking from ``start`` towards ``side`` (module doc).

    levels, values: the grid and the (mean) value at each level, any order. Only levels on
    ``side`` of ``start`` (>= start for "up", <= start for "down", start included) are used,
    nearest first. kind: "error" (reached when value >= threshold) or "accuracy" (reached
    when value <= threshold). If the first level used already reaches the threshold, its
    level is returned (nothing to interpolate from).
    """
    if side not in ("up", "down"):
        raise ValueError(f"side must be 'up' or 'down'; got {side!r}")
    pairs = _check(levels, values, scale, kind)
    start = float(start)
    used = sorted((p for p in pairs if (p[0] >= start if side == "up" else p[0] <= start)),
                  key=lambda p: p[0], reverse=side == "down")

    def reached(value):
        return value >= threshold if kind == "error" else value <= threshold

    x = math.log10 if scale == "log" else (lambda v: v)
    x_inv = (lambda v: 10 ** v) if scale == "log" else (lambda v: v)
    prev = None
    for level, value in used:
        if reached(value):
            if prev is None or value == prev[1]:
                return Crossing(level, False, threshold)
            l0, v0 = prev
            t = (threshold - v0) / (value - v0)      # v0 not reached, value reached: v0 != value
            return Crossing(x_inv(x(l0) + t * (x(level) - x(l0))), False, threshold)
        prev = (level, value)
    return Crossing(None, True, threshold,
                    note=f"{'error stays below' if kind == 'error' else 'accuracy stays above'}"
                         " the threshold on the whole grid")


def midpoint(levels, values, *, clean: float, chance: float, start: float, side: str = "up",
             kind: str = "error", scale: str = "linear") -> Crossing:
    """The midpoint of one curve: :func:`crossing` of ``halfway(clean, chance)``.

    clean: the value without distortion (the error at the identity level, or the maximum
    accuracy); chance: the value of guessing (error 1 − 1/classes, accuracy 1/classes).
    start: the level the walk starts from (the identity level, or the σ of the maximum).
    Returns ``Crossing(None, False, threshold, note)`` when clean is not better than chance.
    """
    threshold = halfway(float(clean), float(chance))
    at_chance = clean >= chance if kind == "error" else clean <= chance
    if at_chance:
        _check(levels, values, scale, kind)            # still report malformed input
        what = "clean error" if kind == "error" else "maximum accuracy"
        return Crossing(None, False, threshold,
                        note=f"the {what} is already at chance: no midpoint")
    return crossing(levels, values, threshold, start=start, side=side, kind=kind, scale=scale)
