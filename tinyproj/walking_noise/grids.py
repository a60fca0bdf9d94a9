"""The σ grids of Walking Noise, as named presets (``--grid NAME``).

The authors sweep σ on these grids (their experiment configurations, UniHD-CEG/walking-noise;
docs/papers.md §2.5). "Quarter decades" are 4 points per decade, log-spaced, both ends included::

    name                  points  σ                                     used for
    add-mnist               41    1e-2 … 1e8,  quarter decades          additive, layer-wise, MNIST
    add                     49    1e-2 … 1e10, quarter decades          additive, layer-wise, others
    add-global              17    1e-2 … 1e2,  quarter decades          additive, global noise
    mul-linear-mnist        61    0, 0.1, …, 6  (linear, with σ = 0)    multiplicative, MNIST
    mul-linear              21    0, 0.1, …, 2  (linear, with σ = 0)    multiplicative, global
    mul-log-mnist           65    1 … 1e16,    quarter decades          multiplicative, MNIST
    mul-log                 41    1 … 1e10,    quarter decades          multiplicative, others
    combined                25    1e-2 … 1e10, half decades             combined amplitude A
    half-decade-add         25    1e-2 … 1e10, half decades             walk's additive default
    half-decade-mul         13    1e-3 … 1e3,  half decades             walk's multiplicative default

Linear grids hold σ = 0, the clean point; their midpoint μ is interpolated on a *linear* σ
scale (``midpoint.midpoint_sigma``'s ``scale``), log grids on log σ. Values are rounded to
6 significant digits, so that the same σ is the same number in every file (a row's key).

    from tinyproj.walking_noise.grids import grid_sigmas
    grid_sigmas("add-mnist")[:3]        # [0.01, 0.0177828, 0.0316228]
"""
from __future__ import annotations

from ..errors import UserError

__all__ = ["GRIDS", "grid_sigmas", "grid_help", "log_grid", "linear_grid", "is_linear"]


def log_grid(lo_exp: int, hi_exp: int, per_decade: int) -> list:
    """10^lo … 10^hi with ``per_decade`` points per decade (both ends included)."""
    n = (hi_exp - lo_exp) * per_decade
    return [float(f"{10 ** (lo_exp + k / per_decade):.6g}") for k in range(n + 1)]


def linear_grid(stop: float, step: float = 0.1) -> list:
    """0, step, 2·step, …, stop (σ = 0 included: the clean point of the curve)."""
    n = int(round(stop / step))
    return [float(f"{k * step:.6g}") for k in range(n + 1)]


GRIDS = {
    "add-mnist": (lambda: log_grid(-2, 8, 4), "additive layer-wise, MNIST: 1e-2..1e8, 41 pts"),
    "add": (lambda: log_grid(-2, 10, 4), "additive layer-wise: 1e-2..1e10, 49 pts"),
    "add-global": (lambda: log_grid(-2, 2, 4), "additive global: 1e-2..1e2, 17 pts"),
    "mul-linear-mnist": (lambda: linear_grid(6.0), "multiplicative, MNIST: 0..6 step 0.1, 61 pts"),
    "mul-linear": (lambda: linear_grid(2.0), "multiplicative (and global): 0..2 step 0.1, 21 pts"),
    "mul-log-mnist": (lambda: log_grid(0, 16, 4), "multiplicative, MNIST: 1..1e16, 65 pts"),
    "mul-log": (lambda: log_grid(0, 10, 4), "multiplicative: 1..1e10, 41 pts"),
    "combined": (lambda: log_grid(-2, 10, 2), "combined amplitude A: 1e-2..1e10, 25 pts"),
    "half-decade-add": (lambda: log_grid(-2, 10, 2), "additive default without --sigmas: "
                        "1e-2..1e10, 25 pts"),
    "half-decade-mul": (lambda: log_grid(-3, 3, 2), "multiplicative default without --sigmas: "
                        "1e-3..1e3, 13 pts"),
}
"""name -> (a function giving the σ list, a one-line description)."""


def grid_sigmas(name: str) -> list:
    """The σ list of the preset ``name`` (UserError naming ``--grid`` for an unknown name)."""
    key = str(name).strip().lower().replace("_", "-")
    if key not in GRIDS:
        raise UserError(f"--grid: unknown grid {name!r}; the grids are: {', '.join(GRIDS)} "
                        "(see `tinyproj walk --help`)", flag="--grid")
    return GRIDS[key][0]()


def grid_help() -> str:
    """``name (description)`` for every preset, for the command line's help."""
    return "; ".join(f"{name} ({text})" for name, (_, text) in GRIDS.items())


def is_linear(sigmas) -> bool:
    """Whether a grid is read on a linear σ scale: it holds σ = 0 (the linear presets)."""
    return any(float(s) == 0.0 for s in sigmas)
