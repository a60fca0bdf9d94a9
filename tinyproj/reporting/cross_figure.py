"""The cross-robustness table as a heat map (:mod:`tinyproj.experiments`), with matplotlib.

Rows are training regimes, columns test perturbations, each cell one midpoint. The colour
says how robust a regime is against a perturbation, the text gives the midpoint itself::

    from tinyproj import experiments, reporting
    table = experiments.cross_robustness(models, experiments.default_perturbations(), data)
    reporting.cross_heatmap(table, "cross.png")
    reporting.cross_heatmap(table, "relative.png", relative_to="tr-none-nc")
"""
from __future__ import annotations

import math

from ..experiments import format_cell
from .style import DIVERGING_CMAP, SEQUENTIAL_CMAP, figure, finish

__all__ = ["cross_heatmap"]


def cross_heatmap(table, path=None, title: str | None = None, relative_to: str | None = None,
                  cmap: str | None = None):
    """The cross-robustness table as a heat map: rows = training regimes, columns = tests.

    table: a :class:`~tinyproj.experiments.CrossTable` (``cross_robustness(...)``).
    Colour: log10 of the midpoint measured in the direction of *more* perturbation — σ for
    AddNorm and activation noise, 1/γ for MultUnif (γ below 1 is more noise) — so brighter
    always means more robust. Each cell is annotated with the midpoint itself (σ or γ).
    Cells beyond the grid show "> max σ" (or "< min γ"), are hatched and take the top
    colour (the colour scale spans the cells that have a midpoint, so one column that never
    breaks does not wash the others out); cells with no midpoint (the clean network
    already at chance) are grey.

    relative_to: a regime name (e.g. the baseline ``"tr-none-nc"``): colour each cell by
    log10(midpoint / that regime's midpoint in the same column) instead, on a diverging
    scale (red: less robust than the baseline, blue: more). This makes columns with
    different units comparable: "how many decades did this training buy against that
    perturbation?" Beyond-grid cells count as their grid edge.
    """
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    regimes = list(table.regimes)
    perts = list(table.perturbations)
    if not regimes or not perts:
        raise ValueError("cross_heatmap: the table is empty")
    if relative_to is not None and relative_to not in regimes:
        raise ValueError(f"cross_heatmap: relative_to={relative_to!r} is not a regime of the "
                         f"table; the regimes are: {', '.join(regimes)}")

    def score(regime, p):
        """log10 of the midpoint towards more perturbation (None when there is none)."""
        cell = table.cell(regime, p.name)
        level = cell.level if cell.level is not None else (
            cell.grid_edge if cell.beyond_grid else None)
        if level is None or not level > 0:
            return None
        return math.log10(level) if p.worse == "up" else -math.log10(level)

    values = [[float("nan")] * len(perts) for _ in regimes]
    for i, regime in enumerate(regimes):
        for j, p in enumerate(perts):
            v = score(regime, p)
            if v is not None and relative_to is not None:
                base = score(relative_to, p)
                v = None if base is None else v - base
            if v is not None:
                values[i][j] = v
    crossed = [values[i][j] for i, r in enumerate(regimes) for j, p in enumerate(perts)
               if math.isfinite(values[i][j]) and table.cell(r, p.name).level is not None]
    finite = crossed or [v for row in values for v in row if math.isfinite(v)] or [0.0]
    if relative_to is None:
        lo, hi = min(finite), max(finite)
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        colormap = colormaps[cmap or SEQUENTIAL_CMAP]
        label = "log10 midpoint (σ; 1/γ for MultUnif)\nhigher = more robust"
    else:
        m = max(0.1, max(abs(v) for v in finite))
        lo, hi = -m, m
        colormap = colormaps[cmap or DIVERGING_CMAP]
        label = (f"log10(midpoint / midpoint of {relative_to})\n"
                 "> 0: more robust than it, < 0: less")
    colormap = colormap.with_extremes(bad="lightgrey", over=colormap(1.0), under=colormap(0.0))
    norm = Normalize(lo, hi)
    fig, (ax,) = figure(width=max(6.4, 1.9 * len(perts) + 3.5),
                         height=max(3.4, 0.7 * len(regimes) + 2.2))
    image = ax.imshow(values, cmap=colormap, norm=norm, aspect="auto")   # NaN: grey
    for i, regime in enumerate(regimes):
        for j, p in enumerate(perts):
            cell = table.cell(regime, p.name)
            v = values[i][j]
            if cell.beyond_grid:
                ax.add_patch(_hatch(j, i))
            if not math.isfinite(v):
                color = "black"
            else:       # dark text on light colours, light text on dark ones
                r, g, b, _ = colormap(norm(v))
                color = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
            ax.text(j, i, format_cell(cell, p), ha="center", va="center", fontsize=9,
                    color=color, fontweight="bold" if cell.beyond_grid else "normal")
    ax.set_xticks(range(len(perts)))
    ax.set_xticklabels([p.label for p in perts], rotation=20, ha="right")
    ax.set_yticks(range(len(regimes)))
    ax.set_yticklabels([table.regime_labels.get(r, r) for r in regimes])
    ax.set_xlabel("test perturbation (midpoint: halfway from clean accuracy to chance)")
    ax.set_ylabel("training regime")
    bar = fig.colorbar(image, ax=ax, extend="both" if relative_to else "max")
    bar.set_label(label)
    what = (f"colour: midpoint relative to {relative_to}, per column" if relative_to
            else "hatched: accuracy never fell halfway on the grid")
    ax.set_title(title or "Cross-robustness: does robustness learned against one perturbation "
                 f"carry over?\n({what})", fontsize=10)
    return finish(fig, path)


def _hatch(x, y):
    from matplotlib.patches import Rectangle
    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, hatch="//", edgecolor="grey",
                     lw=0)
