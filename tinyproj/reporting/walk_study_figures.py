"""The two figures of a Walking Noise study (``tinyproj walk``, ``walking_noise.study``).

    walk-accuracy.png    test accuracy against σ, one line per site (mean over seeds, a dot
                         at each site's μ)
    walk-midpoints.png   μ per site, input to logits (drawn when some site has a μ)

Drawn from a study's rows and midpoint table (``StudyResult.rows`` / ``.table``) into its
folder, and rewritten by every run of the study. Here, not in ``walking_noise``, because the
library's layers put ``reporting`` above ``walking_noise`` (docs/design.md).
"""
from __future__ import annotations

from pathlib import Path

from ..walking_noise.study_folder import FIGURES
from ..walking_noise.study_tables import mean_over_seeds
from .walking_noise_figures import accuracy_vs_sigma, midpoints_plot

__all__ = ["write_study_figures"]


def write_study_figures(rows, table, out) -> list:
    """Draw the study's figures into folder ``out``; the paths written (none without rows).

    rows: the walk's points (one dict per site, σ and seed); table: its midpoint rows."""
    out = Path(out)
    if not rows:
        return []
    chance = rows[0].get("chance")
    title = None
    if any(r.get("protocol") == "train-at-sigma" for r in rows):
        kind = str(rows[0].get("noise"))
        title = (f"{kind} noise: a network per (site, σ), trained and tested at σ"
                 + (" (mean ± sd over seeds)" if len({r.get("seed") for r in rows}) > 1
                    else ""))
    accuracy_vs_sigma(mean_over_seeds(rows), out / FIGURES[0], title=title,
                      chance=chance if chance is not None else 0.1)
    written = [out / FIGURES[0]]
    if any(e.get("midpoint_sigma") is not None or e.get("beyond_grid") for e in table):
        edge = max(float(r["sigma"]) for r in rows)
        midpoints_plot(table, out / FIGURES[1], grid_max=edge)
        written.append(out / FIGURES[1])
    return written
