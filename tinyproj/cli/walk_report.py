"""What `tinyproj walk` shows: the midpoint table on the terminal and two figures.

    walk-accuracy.png    test accuracy against σ, one line per site (mean over seeds, a dot
                         at each site's μ)
    walk-midpoints.png   μ per site, input to logits (drawn when some site has a μ)

Both are drawn by ``tinyproj.reporting`` from the points of this command and rewritten by
every run (the curves' means over seeds: ``walking_noise.study_tables.mean_over_seeds``).
"""
from __future__ import annotations

from pathlib import Path

from ..walking_noise.study_folder import FIGURES
from ..walking_noise.study_tables import mean_over_seeds

__all__ = ["FIGURES", "print_table", "write_figures"]


def print_table(table) -> None:
    if not table:
        return
    print(f"\n{'site':>4}  {'name':<9} {'noise':<26} {'midpoint σ':>12}  {'spread':>8}  "
          f"{'max acc':>7}  seeds (μ per seed)")
    for e in table:
        mu = ("beyond grid" if e["midpoint_sigma"] is None and e["beyond_grid"] else
              "-" if e["midpoint_sigma"] is None else f"{e['midpoint_sigma']:.4g}"
              + (" (+beyond)" if e["beyond_grid"] else ""))
        spread = "" if e.get("midpoint_log10_std") in (None, 0.0) or e["n_seeds"] == 1 else \
            f"±{e['midpoint_log10_std']:.2f} dec"
        noise = e["noise"] + ("" if e.get("ratio") is None else f" r={e['ratio']:g}")
        if e.get("train_sigma") == "sigma":
            noise += " trained at σ"
        elif e.get("train_sigma") is not None:
            noise += f" train σ {e['train_sigma']:g}"
        per_seed = e.get("midpoints_per_seed") or []
        seeds = str(e["n_seeds"]) if len(per_seed) < 2 else f"{e['n_seeds']}: " + ", ".join(
            "beyond" if m is None else f"{m:.3g}" for m in per_seed)
        print(f"{e['site']:>4}  {str(e['site_name']):<9} {noise:<26} {mu:>12}  {spread:>8}  "
              f"{100 * e['max_accuracy']:6.2f}%  {seeds}")


def write_figures(rows, table, out: Path) -> list:
    """Accuracy against σ per site (μ marked) and μ per site, drawn by tinyproj.reporting
    into ``out``; the paths written (none while no point is done)."""
    from .. import reporting
    if not rows:
        return []
    chance = rows[0].get("chance")
    title = None
    if any(r.get("protocol") == "train-at-sigma" for r in rows):
        kind = str(rows[0].get("noise"))
        title = (f"{kind} noise: a network per (site, σ), trained and tested at σ"
                 + (" (mean ± sd over seeds)" if len({r.get("seed") for r in rows}) > 1
                    else ""))
    reporting.accuracy_vs_sigma(mean_over_seeds(rows), out / FIGURES[0], title=title,
                                chance=chance if chance is not None else 0.1)
    written = [out / FIGURES[0]]
    if any(e.get("midpoint_sigma") is not None or e.get("beyond_grid") for e in table):
        edge = max(float(r["sigma"]) for r in rows)
        reporting.midpoints_plot(table, out / FIGURES[1], grid_max=edge)
        written.append(out / FIGURES[1])
    return written
