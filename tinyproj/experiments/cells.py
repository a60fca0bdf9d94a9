"""One cell of the cross-robustness table: a regime's midpoint under one perturbation.

How a cell is measured depends on the perturbation's family, and each family keeps its own
paper's protocol:

* weights (Merolla et al.): ``robustness.score_distortion`` per level, K random draws,
  batch norm re-estimated on training data with the distorted weights (``bn``, a
  ``robustness.bn_estimate.BNProtocol``: by default exact over every training image, as
  ``tinyproj sweep``); the midpoint: the
  level where the mean test error is halfway from the clean error (σ = 0 / γ = 1, always
  measured) to chance, interpolated linearly in the level (as ``robustness.midpoints``);
* activations (Walking Noise): ``walk(model, ..., sites="all")`` per σ; the midpoint from
  ``walking_noise.midpoint_sigma``: the σ where accuracy is halfway from its best value on
  the grid to chance, interpolated on log σ.

Both are the one crossing rule of :mod:`tinyproj.runs.midpoint`; only the values (errors or
accuracies), the clean value and the scale of the levels differ.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import robustness
from ..robustness.bn_estimate import BNProtocol
from ..runs.midpoint import midpoint
from ..walking_noise import midpoint_sigma, walk
from .cross_data import CrossData
from .perturbations import Perturbation

__all__ = ["Cell", "measure_cell", "format_cell"]


@dataclass
class Cell:
    """One midpoint: a regime under a perturbation.

    regime, perturbation   the row and column names
    level        the midpoint (σ or γ), None when not reached on the grid or undefined
    beyond_grid  True when accuracy never fell halfway to chance on the grid
    grid_edge    the grid's most perturbing level (max σ, min γ)
    clean_accuracy  accuracy without perturbation (weights: at σ = 0 / γ = 1, batch norm
                 re-estimated; activations: the best accuracy on the grid)
    threshold    the accuracy at the midpoint: halfway from clean_accuracy to chance
    levels, accuracies   the measured curve
    note         why there is no level, when there is none
    """

    regime: str
    perturbation: str
    level: float | None
    beyond_grid: bool
    grid_edge: float
    clean_accuracy: float
    threshold: float
    levels: list = field(default_factory=list)
    accuracies: list = field(default_factory=list)
    note: str = ""


def _weight_cell(name, model, p: Perturbation, data: CrossData, *, draws, seed, bn,
                 test_subset) -> Cell:
    dist = robustness.get_distortion(p.kind)
    levels = [float(v) for v in p.levels]
    if dist.identity not in levels:                 # the clean error is measured, not guessed
        levels.insert(0, float(dist.identity))
    errors = []
    for level in levels:
        s = robustness.score_distortion(model, data.train, data.test, dist.spec(level),
                                        draws=draws, seed=seed, bn=bn, test_subset=test_subset)
        errors.append(float(s.mean))
    # Merolla's side of the one midpoint rule: mean errors, linear in the level, walked
    # from the identity level (σ = 0, γ = 1) towards more distortion
    clean_error = errors[levels.index(dist.identity)]
    mid = midpoint(levels, errors, clean=clean_error, chance=1.0 - data.chance_accuracy,
                   start=dist.identity, side=p.worse, kind="error", scale="linear")
    return Cell(name, p.name, mid.level, bool(mid.beyond_grid), p.grid_edge,
                1.0 - clean_error, 1.0 - mid.threshold, levels, [1.0 - e for e in errors],
                mid.note)


def _activation_cell(name, model, p: Perturbation, data: CrossData, *, seed, bn_batches,
                     test_subset, bn_protocol, repeats) -> Cell:
    rows = walk(model, data.train, data.test, p.kind, list(p.levels), sites="all",
                bn_protocol=bn_protocol, repeats=repeats, seed=seed, test_subset=test_subset,
                bn_batches=bn_batches, progress=False)
    pts = sorted((float(r["sigma"]), float(r["accuracy"])) for r in rows)
    sigmas, accs = [s for s, _ in pts], [a for _, a in pts]
    mid = midpoint_sigma(sigmas, accs, chance=data.chance_accuracy)
    note = ""
    if mid.sigma is None:
        note = ("accuracy stays above the threshold on the whole grid" if mid.beyond_grid
                else "the best accuracy is already at chance")
    return Cell(name, p.name, mid.sigma, bool(mid.beyond_grid), p.grid_edge,
                float(mid.max_accuracy), float(mid.threshold), sigmas, accs, note)


def measure_cell(name, model, perturbation: Perturbation, data: CrossData, *, draws=3,
                 seed=0, bn: BNProtocol | None = None, walk_bn_batches: int = 20,
                 test_subset=None, bn_protocol="running", repeats=1) -> Cell:
    """Sweep one perturbation on one trained model and find its midpoint (a :class:`Cell`).

    bn: the weight distortions' re-estimation (default ``BNProtocol()``: exact, every training
    image). walk_bn_batches, bn_protocol: the activation walks' own (Walking Noise's)
    re-estimation with the noise on, used only with ``bn_protocol="reestimate"``."""
    if perturbation.family == "weight":
        return _weight_cell(name, model, perturbation, data, draws=draws, seed=seed,
                            bn=BNProtocol() if bn is None else bn, test_subset=test_subset)
    return _activation_cell(name, model, perturbation, data, seed=seed,
                            bn_batches=walk_bn_batches, test_subset=test_subset,
                            bn_protocol=bn_protocol, repeats=repeats)



def _number(v: float) -> str:
    """A midpoint in 3 significant digits (plain for 0.001 … 9999, else 1.2e+05)."""
    return f"{v:.3g}"


def format_cell(cell: Cell, perturbation: Perturbation) -> str:
    """The text of a cell: ``"0.42"``, ``"> 2"`` / ``"< 0.02"`` beyond the grid, ``"—"``."""
    if cell.level is not None:
        return _number(cell.level)
    if cell.beyond_grid:
        sign = ">" if perturbation.worse == "up" else "<"
        return f"{sign} {_number(cell.grid_edge)}"
    return "—"
