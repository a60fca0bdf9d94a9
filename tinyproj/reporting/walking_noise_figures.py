"""The figures of Walking Noise (Borras et al.), with matplotlib.

Each function takes plain data (result rows, dicts of numbers) and optionally a path, draws
one figure in the house style (:mod:`tinyproj.reporting.style`: no pyplot, Agg canvas,
atomic PNG), saves it when given the path and returns the matplotlib Figure::

    from tinyproj import reporting
    reporting.accuracy_vs_sigma(rows, "walk.png")              # rows of walk(...)
    reporting.midpoints_plot({"clean": table}, "mu.png")       # midpoints_table(rows)
    reporting.weight_stats_plot(dynamics, "weights.png")       # train_noisy(...) dynamics

=======================  =============================================================
function                 figure
=======================  =============================================================
accuracy_vs_sigma        test accuracy against the noise level σ (log x; linear x for a
                         grid holding σ = 0), one line per site (or per any other field:
                         repeats, bn_protocol, ...), one panel per noise kind; chance and
                         each line's midpoint marked; the spread over seeds as error bars
                         when rows carry ``accuracy_std``
midpoints_plot           the walk: midpoint noise level μ per site (log y), site names
                         as tick labels, beyond-grid sites as a triangle at the grid edge
activation_histogram     one site's activations without and with noise
weight_stats_plot        mean |w|, max |w| and a binarization measure per layer, per epoch
=======================  =============================================================

The cross-robustness heat map is in :mod:`tinyproj.reporting.cross_figure`. Accuracies are
plotted in %, noise levels on a logarithmic axis (Walking Noise sweeps σ over many decades).
"""
from __future__ import annotations

import math

from .. import backend
from ..runs.midpoint import midpoint
from .style import colors, figure, finish, percent

__all__ = ["accuracy_vs_sigma", "midpoints_plot", "activation_histogram",
           "weight_stats_plot", "NOISE_NAMES"]

NOISE_NAMES = {
    "additive": "additive noise  y = x + N(0, σ²)",
    "multiplicative": "multiplicative noise  y = x · N(1, σ²)",
    "combined": "combined noise  (σ_mul = A·(1−r), then σ_add = A·r)",
}
"""Titles of the three noise kinds (keys: the ``noise`` field of walk rows)."""


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(float(v))


def _noise_kind(row) -> str:
    """The noise kind of a row: ``noise`` may be a kind name or a spec text."""
    noise = row.get("noise", "")
    text = str(noise.get("kind", "")) if isinstance(noise, dict) else str(noise)
    return text.split(":")[0].strip() or "noise"


def _site_label(row) -> str:
    name, site = row.get("site_name"), row.get("site")
    if site in (None, -1, "all", "global") or name in ("all", "global"):
        return "all sites at once"
    if name is None:
        return f"site {site}"
    return f"{site}: {name}" if site is not None else str(name)


def _log_sigma_axis(ax, xlabel="noise level σ  [log scale]"):
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.grid(True, which="major", alpha=0.3)


# ---------------------------------------------------------------------------
# Accuracy against σ
# ---------------------------------------------------------------------------
def accuracy_vs_sigma(rows, path=None, lines_by: str = "site", chance: float | None = 0.1,
                      title: str | None = None, mark_midpoints: bool = True,
                      label_format=None):
    """Test accuracy (%) against σ on a log axis: one line per site, one panel per noise kind.

    rows: the rows of ``walk(...)`` (fields ``site``, ``site_name``, ``noise``, ``sigma``,
    ``accuracy``, ...), or ``{label: rows}`` to put several walks side by side (one panel
    each). lines_by: the field that tells lines apart (``"site"``; ``"repeats"`` or
    ``"bn_protocol"`` to compare those). chance: accuracy by guessing (a fraction; dotted
    line), None for none. mark_midpoints: a dot where each line crosses halfway between its
    best accuracy and chance (the midpoint noise level μ). label_format: a function
    ``(key, first row) -> legend text``. A panel whose rows hold σ = 0 (the authors' linear
    multiplicative grids 0…2, 0…6) gets a linear σ axis; otherwise rows with σ <= 0 are left
    out (log axis). Several rows of a line at one σ (seeds) are averaged, with their standard
    deviation as error bars; a row with ``accuracy_std`` (a fraction: the spread over seeds,
    as ``point_spread`` gives it) gets error bars of ±1 standard deviation.
    """
    if isinstance(rows, dict):
        panels = [(label, list(r)) for label, r in rows.items()]
    else:
        rows = list(rows)
        kinds = list(dict.fromkeys(_noise_kind(r) for r in rows))
        panels = [(NOISE_NAMES.get(k, k), [r for r in rows if _noise_kind(r) == k])
                  for k in kinds]
    if not panels:
        raise ValueError("accuracy_vs_sigma: no rows to plot (run walk(...) first)")
    fig, axes = figure(ncols=len(panels), width=6.4)
    for ax, (panel_title, panel_rows) in zip(axes, panels):
        keys = list(dict.fromkeys(str(r.get(lines_by)) for r in panel_rows))
        linear = any(_finite(r.get("sigma")) and float(r["sigma"]) == 0 for r in panel_rows)
        for i, (color, key) in enumerate(zip(colors(len(keys)), keys)):
            line = [r for r in panel_rows if str(r.get(lines_by)) == key]
            pts = _points(r for r in line
                          if _finite(r.get("sigma")) and (float(r["sigma"]) > 0 or linear)
                          and _finite(r.get("accuracy")))
            if not pts:
                continue
            if label_format is not None:
                label = label_format(key, line[0])
            elif lines_by == "site":
                label = _site_label(line[0])
            else:
                label = f"{lines_by} = {key}"
            xs, ys, spread = zip(*pts)
            style = "-" if i < 10 else "--"        # tab10 repeats after 10 colours
            ax.plot(xs, ys, style, marker=".", color=color, label=label)
            if any(spread):
                ax.errorbar(xs, ys, yerr=spread, fmt="none", ecolor=color, capsize=2, lw=0.8)
            if mark_midpoints and chance is not None:
                mu = _crossing(xs, ys, 100.0 * chance, log=not linear)
                if mu is not None:
                    ax.plot([mu[0]], [mu[1]], "o", color=color, markersize=7,
                            markeredgecolor="black", zorder=5)
        if chance is not None:
            ax.axhline(100.0 * chance, color="grey", ls=":", lw=1,
                       label=f"chance ({100 * chance:g} %)")
        if linear:
            ax.set_xlabel("noise level σ  [linear scale]")
            ax.grid(True, which="major", alpha=0.3)
        else:
            _log_sigma_axis(ax)
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 102)
        ax.set_title(title or panel_title)
        ax.legend(fontsize=7, ncol=2 if len(keys) > 6 else 1)
    if mark_midpoints and chance is not None:
        fig.suptitle("Accuracy as noise grows (dots: the midpoint μ, halfway from the best "
                     "accuracy down to chance)", fontsize=10)
    return finish(fig, path)


def _points(rows) -> list:
    """``[(σ, accuracy %, ±spread %)]`` sorted by σ, one point per σ: several rows at one σ
    (the seeds of the train-at-σ protocol, say) are averaged, with their standard deviation
    (ddof 1) as the spread; a single row keeps its own ``accuracy_std`` (0 without one)."""
    by_sigma = {}
    for r in rows:
        by_sigma.setdefault(float(r["sigma"]), []).append(r)
    pts = []
    for sigma, rs in sorted(by_sigma.items()):
        acc = [percent(r["accuracy"]) for r in rs]
        mean = math.fsum(acc) / len(acc)
        if len(rs) > 1:
            spread = math.sqrt(math.fsum((a - mean) ** 2 for a in acc) / (len(acc) - 1))
        else:
            spread = percent(rs[0]["accuracy_std"]) if _finite(rs[0].get("accuracy_std")) else 0.0
        pts.append((sigma, mean, spread))
    return pts


def _crossing(xs, ys, chance_pct, log: bool = True):
    """``(σ, accuracy)`` where the curve first falls to halfway between its max and chance.

    The table's rule (:func:`tinyproj.runs.midpoint.midpoint`, as ``midpoint_sigma`` uses
    it): start at the first maximum, walk up in σ, interpolate linearly in log σ (in σ with
    ``log=False``), so a dot sits exactly at the tabulated μ. None when the curve never
    gets there (or never rises above chance).
    """
    top = max(ys)
    if top <= chance_pct:
        return None
    c = midpoint(xs, ys, clean=top, chance=chance_pct, start=xs[ys.index(top)], side="up",
                 kind="accuracy", scale="log" if log else "linear")
    return None if c.level is None else (c.level, c.threshold)


# ---------------------------------------------------------------------------
# The walk: μ per site
# ---------------------------------------------------------------------------
def _mu(row):
    for key in ("midpoint_sigma", "mu", "midpoint", "sigma"):
        if key in row:
            return row[key]
    return None


def _grid_edge(row):
    for key in ("sigma_max", "grid_max", "max_sigma"):
        if _finite(row.get(key)):
            return float(row[key])
    return None


def midpoints_plot(tables, path=None, title: str | None = None, grid_max: float | None = None,
                   ylabel: str = "midpoint noise level μ  [log scale]"):
    """The walk: μ of every site, input on the left, logits on the right.

    tables: the rows of ``midpoints_table(rows, chance)`` (per site: ``site``,
    ``site_name``, μ as ``sigma`` (or ``mu``), ``beyond_grid``), or ``{label: rows}`` for
    several networks / noise kinds / protocols, one line each (μ over seeds: the geometric
    mean, each seed's μ as a short dash beside it). Sites where accuracy never
    fell to the threshold on the grid have no μ: they are drawn as an upward triangle at
    the grid's top edge (``grid_max``, or the row's ``sigma_max``, or the largest μ seen)
    with an arrow, meaning "μ is larger than this". A site whose clean accuracy is already
    at chance (no μ and not beyond the grid) is left out. The grid's top is marked (and the
    axis reaches it) only when some site went beyond it; otherwise the axis spans the μ
    drawn. Returns the Figure (saved at ``path`` when given).
    """
    if not isinstance(tables, dict):
        tables = {"": tables}
    tables = {label: [r for r in rows if r.get("site") not in (-1, -2, "all", "all-no-bn",
                                                               "global", None)]
              or list(rows) for label, rows in tables.items()}
    if not any(tables.values()):
        raise ValueError("midpoints_plot: no rows to plot (run midpoints_table(rows) first)")
    order = []                                  # (site, name) in site order, over all tables
    for rows in tables.values():
        for r in rows:
            key = (r.get("site"), r.get("site_name"))
            if key not in order:
                order.append(key)
    try:
        order.sort(key=lambda k: (float(k[0]), str(k[1])))
    except (TypeError, ValueError):
        pass
    position = {k: i for i, k in enumerate(order)}
    values = [float(_mu(r)) for rows in tables.values() for r in rows
              if _finite(_mu(r)) and float(_mu(r)) > 0]
    edges = [e for rows in tables.values() for r in rows if (e := _grid_edge(r)) is not None]
    edge = grid_max or (max(edges) if edges else (max(values) if values else 1.0))
    fig, (ax,) = figure(width=max(6.4, 0.55 * len(order) + 2.5))
    beyond_drawn = False
    for color, (label, rows) in zip(colors(len(tables)), tables.items()):
        pts, beyond = [], []
        for r in rows:
            x = position[(r.get("site"), r.get("site_name"))]
            mu = _mu(r)
            if r.get("beyond_grid"):
                beyond.append(x)
            elif _finite(mu) and float(mu) > 0:
                pts.append((x, float(mu)))
        pts.sort()
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, "-o", color=color, label=label or "μ per site")
        seeds = [(position[(r.get("site"), r.get("site_name"))], float(m)) for r in rows
                 if len(r.get("midpoints_per_seed") or []) > 1
                 for m in r["midpoints_per_seed"] if _finite(m) and float(m) > 0]
        if seeds:                 # every seed's μ, small, beside their geometric mean
            ax.plot(*zip(*seeds), "_", color=color, markersize=9, alpha=0.8)
        if beyond:
            ax.plot(beyond, [edge] * len(beyond), "^", color=color, markersize=11,
                    markeredgecolor="black",
                    label=None if beyond_drawn else "beyond the grid (μ > top of the grid)")
            for x in beyond:
                ax.annotate("", xy=(x, edge * 2.2), xytext=(x, edge * 1.15),
                            arrowprops=dict(arrowstyle="->", color=color, lw=1.5))
            beyond_drawn = True
    ax.set_yscale("log")
    if beyond_drawn:              # the grid's top matters only when a site went beyond it
        ax.axhline(edge, color="grey", ls="--", lw=0.8, label=f"top of the σ grid ({edge:g})")
        ax.set_ylim(top=edge * 4)
    elif values:                  # else the axis spans the μ drawn (a decade either side at most)
        lo, hi = min(values), max(values)
        ax.set_ylim(lo / min(10.0, max(2.0, (hi / lo) ** 0.15)),
                    hi * min(10.0, max(2.0, (hi / lo) ** 0.15)))
        if hi / lo < 30:          # few decades: plain numbers (0.3, 0.5), not 3×10^-1
            from matplotlib.ticker import FuncFormatter
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(FuncFormatter(      # 2, 3 and 5 of each decade only
                lambda v, _: f"{v:g}" if v > 0 and round(v / 10 ** math.floor(math.log10(v)),
                                                         6) in (2.0, 3.0, 5.0) else ""))
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([f"{s}: {n}" if n is not None else str(s) for s, n in order],
                       rotation=45, ha="right")
    ax.set_xlabel("noise site (input → logits)")
    ax.set_ylabel(ylabel)
    ax.set_title(title or "Walking noise: how much noise each site tolerates\n"
                 "μ = the σ where accuracy is halfway from its best to chance "
                 "(higher = more robust)", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return finish(fig, path)


# ---------------------------------------------------------------------------
# Activations with and without noise
# ---------------------------------------------------------------------------
def activation_histogram(clean, noisy, path=None, site: str = "", noise: str = "", bins: int = 60):
    """Histograms of one site's activations without and with noise, and noisy vs clean.

    clean, noisy: arrays of the same shape (any backend; flattened here), the site's
    output for the same inputs without and with noise. site, noise: text for the title.
    """
    a = backend.to_numpy(clean).ravel()
    b = backend.to_numpy(noisy).ravel()
    if a.size == 0 or a.size != b.size:
        raise ValueError(f"activation_histogram: clean and noisy need the same non-zero size; "
                         f"got {a.size} and {b.size}")
    lo = float(min(a.min(), b.min()))
    hi = float(max(a.max(), b.max()))
    if hi <= lo:
        hi = lo + 1.0
    fig, (ax, ax2) = figure(ncols=2, width=5.6)
    ax.hist(a, bins=bins, range=(lo, hi), histtype="step", lw=1.5, color="tab:blue",
            label="without noise")
    ax.hist(b, bins=bins, range=(lo, hi), histtype="step", lw=1.5, color="tab:red",
            label="with noise")
    ax.set_xlabel("activation value")
    ax.set_ylabel("number of values")
    ax.set_yscale("log")
    ax.set_title(f"Values at site {site}" if site else "Activation values")
    ax.legend(fontsize=8)
    step = max(1, a.size // 4000)                # a few thousand points are enough
    ax2.plot(a[::step], b[::step], ".", markersize=2, alpha=0.5, color="tab:purple")
    ax2.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="no change (y = x)")
    ax2.set_xlabel("activation without noise")
    ax2.set_ylabel("the same activation with noise")
    ax2.set_title("Each value moved by the noise")
    ax2.legend(fontsize=8)
    fig.suptitle(f"What {noise or 'the noise'} does to the activations"
                 f"{' at ' + site if site else ''}", fontsize=11)
    return finish(fig, path)


# ---------------------------------------------------------------------------
# Weights during (noisy) training
# ---------------------------------------------------------------------------
_WEIGHT_STATS = (
    ("mean_abs", "mean |w|", "Mean weight magnitude"),
    ("max_abs", "max |w|", "Largest weight magnitude"),
    ("share_near_max", "share of weights with |w| > 0.9·max|w|",
     "Binarization: weights near ±max"),
    ("bimodality", "bimodality coefficient\n(1: two values ±a; 0.56: uniform)",
     "Binarization: bimodality"),
)


def _stats_series(rows) -> dict:
    """``{layer: [(epoch, {stat: value})]}`` from dynamics rows.

    Accepts per-epoch rows whose ``weights`` and ``binarization`` fields (``dynamics_row``)
    map a layer name to its stats, or flat rows (``epoch``, ``layer``, stat fields).
    """
    series = {}
    for r in rows:
        epoch = r.get("epoch")
        merged = {}
        for key in ("weights", "binarization", "layers", "weight_stats"):
            nested = r.get(key)
            if isinstance(nested, dict):
                for layer, stats in nested.items():
                    if isinstance(stats, dict):
                        merged.setdefault(layer, {}).update(stats)
        if merged:
            for layer, stats in merged.items():
                series.setdefault(layer, []).append((epoch, stats))
        elif r.get("layer") is not None:
            series.setdefault(r["layer"], []).append((epoch, r))
    return series


def weight_stats_plot(rows, path=None, title: str | None = None, stats=None):
    """Weight statistics per layer against the epoch (the dynamics of noisy training).

    rows: the dynamics rows of ``train_noisy`` (one per epoch, or one per epoch and layer)
    with ``mean_abs``, ``max_abs`` and the binarization measures ``share_near_max`` and
    ``bimodality``; or ``{label: rows}`` for several runs (one line style per run). One
    panel per statistic found, one colour per layer. stats: which of the four to draw
    (default: all present).
    """
    from matplotlib.ticker import MaxNLocator
    runs = rows if isinstance(rows, dict) else {"": rows}
    series = {label: _stats_series(list(r)) for label, r in runs.items()}
    wanted = [s for s in _WEIGHT_STATS if stats is None or s[0] in stats]
    present = [s for s in wanted
               if any(_finite(st.get(s[0])) for ser in series.values()
                      for pts in ser.values() for _, st in pts)]
    if not present:
        raise ValueError("weight_stats_plot: the rows hold none of "
                         f"{', '.join(s[0] for s in wanted)} (use the dynamics rows of "
                         "train_noisy(..., record_dynamics=True))")
    layers = list(dict.fromkeys(layer for ser in series.values() for layer in ser))
    layer_colors = dict(zip(layers, colors(len(layers))))
    styles = ["-", "--", ":", "-."]
    fig, axes = figure(ncols=len(present), width=4.6, height=4.2)
    for ax, (key, ylabel, panel_title) in zip(axes, present):
        for style, (run, ser) in zip(styles * 4, series.items()):
            for layer, pts in ser.items():
                pts = sorted((e, float(st[key])) for e, st in pts
                             if e is not None and _finite(st.get(key)))
                if not pts:
                    continue
                xs, ys = zip(*pts)
                name = layer.removesuffix(".weight")
                ax.plot(xs, ys, style, marker="o", markersize=3, color=layer_colors[layer],
                        label=f"{run}: {name}" if run else name)
        ax.set_xlabel("epoch (0 = before training)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.set_title(panel_title)
        ax.grid(True, alpha=0.3)
        if key in ("share_near_max", "bimodality"):
            ax.set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=7)
    fig.suptitle(title or "How the weights change during training (one colour per layer)",
                 fontsize=11)
    return finish(fig, path)
