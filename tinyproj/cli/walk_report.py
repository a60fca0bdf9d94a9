"""What `tinyproj walk` shows: the midpoint table on the terminal, and two figures drawn by
``reporting.write_study_figures`` (walk-accuracy.png, walk-midpoints.png)."""
from __future__ import annotations

from ..reporting.walk_study_figures import write_study_figures as write_figures
from ..walking_noise.study_folder import FIGURES

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
