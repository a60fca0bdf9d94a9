"""The columns of the cross-robustness table: test perturbations swept over a grid.

Two families: Merolla et al.'s *weight* distortions (AddNorm σ, MultUnif γ, scored with
batch norm re-estimated per draw) and Walking Noise's *activation* noise at every site at
once (additive or multiplicative σ). Each column's grid is long enough for a robust
network to cross halfway to chance, and :attr:`Perturbation.worse` says which way along the
grid is "more perturbation" (γ falls, σ rises).
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import robustness
from ..errors import UserError

__all__ = ["Perturbation", "default_perturbations"]


@dataclass(frozen=True)
class Perturbation:
    """One test perturbation swept over a grid (a column of the table).

    name     column key: ``"addnorm"``, ``"multunif"``, ``"act-additive"``, ...
    family   ``"weight"`` (a Merolla distortion) or ``"activation"`` (Walking Noise)
    kind     the distortion (``"addnorm"``, ``"multunif"``) or noise kind
             (``"additive"``, ``"multiplicative"``, ``"combined"``)
    levels   the grid (σ, or γ for MultUnif)
    label    the column heading
    symbol   ``"σ"`` or ``"γ"``
    worse    ``"up"`` when more perturbation is a larger level, ``"down"`` when smaller (γ)
    """

    name: str
    family: str
    kind: str
    levels: tuple
    label: str = ""
    symbol: str = "σ"
    worse: str = "up"

    def __post_init__(self):
        if self.family not in ("weight", "activation"):
            raise UserError(f"perturbation {self.name!r}: family must be 'weight' or "
                            f"'activation'; got {self.family!r}")
        if self.family == "weight":
            robustness.get_distortion(self.kind)            # raises for an unknown name
        if not self.levels:
            raise UserError(f"perturbation {self.name!r}: no levels to sweep")
        object.__setattr__(self, "levels", tuple(float(v) for v in self.levels))
        if not self.label:
            object.__setattr__(self, "label", self.name)

    @property
    def grid_edge(self) -> float:
        """The grid's most perturbing level: max σ (or min γ for a "down" perturbation)."""
        return max(self.levels) if self.worse == "up" else min(self.levels)


def _log_grid(lo_exp: int, hi_exp: int, per_decade: int) -> tuple:
    n = (hi_exp - lo_exp) * per_decade
    return tuple(float(f"{10 ** (lo_exp + k / per_decade):.4g}") for k in range(n + 1))


def default_perturbations(quick: bool = False) -> list:
    """The table's four columns with their grids (shorter grids in quick mode).

    AddNorm σ 0 … 2 and MultUnif γ 1 … 0.02 (Merolla's grids, extended so that robust
    networks still cross), additive and multiplicative activation noise σ on a log grid
    10^-2 … 10^3 (Walking Noise sweeps from 10^-2; an MNIST MLP breaks long before 10^10).
    """
    if quick:
        addnorm = (0.0, 0.25, 0.5, 1.0, 2.0)
        multunif = (1.0, 0.5, 0.2, 0.05)
        acts = _log_grid(-2, 3, 1)
    else:
        addnorm = (0.0, 0.1, 0.2, 0.3, 0.4, 0.55, 0.7, 0.85, 1.0, 1.5, 2.0)
        multunif = (1.0, 0.9, 0.75, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02)
        acts = _log_grid(-2, 3, 3)
    return [
        Perturbation("addnorm", "weight", "addnorm", addnorm, "weights: AddNorm σ", "σ", "up"),
        Perturbation("multunif", "weight", "multunif", multunif, "weights: MultUnif γ", "γ",
                     "down"),
        Perturbation("act-additive", "activation", "additive", acts,
                     "activations: additive σ", "σ", "up"),
        Perturbation("act-multiplicative", "activation", "multiplicative", acts,
                     "activations: multiplicative σ", "σ", "up"),
    ]

