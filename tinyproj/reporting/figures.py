"""The paper's figures with matplotlib (Merolla et al. 2016, Figures 1B–D and 2A–D).

Each function takes plain data (dicts of numbers or result rows) and optionally a path,
draws one figure in the house style (:mod:`tinyproj.reporting.style`: no pyplot, Agg canvas,
atomic PNG) and returns the Figure::

    from tinyproj import reporting
    reporting.training_curves({"tr-sign-c": rows}, "fig1b.png")
    reporting.sweep_plot({"tr-sign-c": sweep_rows}, "addnorm", "fig2a.png")

=========================  ==============================================================
function                   figure
=========================  ==============================================================
training_curves            1B  test error during training, Te-None solid, Te-Sign dashed
sign_distance_plot         1C  mean |W_k − Sign(W_k)| per layer (and the same over α_k)
correlation_plot           1D  correlation of each layer's activity, W vs Sign(W)
sweep_plot                 2A/2B/2C  test error vs AddNorm σ / MultUnif γ / Power β
power_histogram_plot       2D  one layer's weight histogram under Power(β)
per_layer_plot             error vs level with the distortion on one layer at a time
=========================  ==============================================================

Every function returns the matplotlib Figure (shown inline when a notebook cell ends with
it) and saves it as a PNG when given a path. Errors are plotted in %, with error bars and a
band of ± one standard deviation (``error_std`` of the sweep rows: over the draws of one
network, or over seeds when the report averaged networks); the
sweeps' error axis is logarithmic, as in the paper's Figure 2 ("note the semi-log scale"),
when the errors span more than a factor of 4, and linear when they do not (short runs),
so that the curves fill the panel; the paper's reference points never set the scale.
"""
from __future__ import annotations

import math

from .style import colors, figure, finish, percent

__all__ = ["DISTORTIONS", "training_curves", "sign_distance_plot", "correlation_plot",
           "sweep_plot", "power_histogram_plot", "per_layer_plot"]

DISTORTIONS = {
    "addnorm": dict(
        figure="fig2a", name="AddNorm(σ)", symbol="σ",
        title="Additive Gaussian weight noise: w + N(0, (σ·α)²)",
        xlabel="σ (noise std as a fraction of α = max |w| of each layer)"),
    "multunif": dict(
        figure="fig2b", name="MultUnif(γ)", symbol="γ",
        title="Multiplicative uniform weight noise: w · U(γ, 1/γ)",
        xlabel="γ (smaller γ = wider factor range U(γ, 1/γ) = more noise)"),
    "power": dict(
        figure="fig2c", name="Power(β)", symbol="β",
        title="Power distortion: α · |w/α|^β · sign(w)",
        xlabel="β (β = 1: weights unchanged; β = 0: Sign; β > 1: squeezed towards 0)"),
}
"""Display names of the three test distortions of Figure 2 (keys: the sweep file names)."""

_PAPER_POINT = dict(sigma=0.55, error=11.0, bits=0.68)   # Tr-Stoch-C, section 4.1.2


# ---------------------------------------------------------------------------
# Figure 1B
# ---------------------------------------------------------------------------
def training_curves(runs: dict, path=None, tests=("none", "sign")):
    """Figure 1B: test error (%) during training, one colour per run; returns the Figure.

    runs: ``{label: metrics rows}`` (rows of ``metrics.jsonl``, one per evaluation:
    ``epoch``, ``step``, ``test_error`` {"none": fraction, "sign": …}). Te-None is drawn
    solid with filled dots, Te-Sign dashed with open dots (other test projections dotted).

    A row may carry ``error_bar`` {"none": fraction, …}: drawn as a vertical bar at its point
    (the report puts there the std over seeds, or the binomial SE of the test set —
    :mod:`tinyproj.reporting.single_eval`; the caption says which).

    With two or more evaluations per run the curves are drawn against the epoch
    (``epoch_progress`` when the rows have it: evaluations inside an epoch sit at fractions
    of an epoch). When every
    run was evaluated only once (a short run: ``metrics.jsonl`` has one row per evaluation,
    and a 1-epoch run has one) there is no curve to draw: the figure then shows each run's
    errors side by side, one column per run, and says after how many epochs and steps they
    were measured, instead of stacking single dots on an axis with no extent.
    """
    fig, (ax,) = figure()
    styles = {"none": ("-", "o", None), "sign": ("--", "o", "white")}
    points = {label: sorted({int(r.get("step", 0)): r for r in rows}.values(),
                            key=lambda r: r.get("step", 0)) for label, rows in runs.items()}
    curves = any(len(rows) > 1 for rows in points.values())
    names = {test: f"Te-{test.capitalize()}" for test in tests}
    for i, (color, (label, rows)) in enumerate(zip(colors(len(runs)), points.items())):
        for test in tests:
            pts = [(r.get("epoch_progress", r.get("epoch")),
                    percent(r.get("test_error", {}).get(test)),
                    percent((r.get("error_bar") or {}).get(test))) for r in rows]
            pts = [(e, v, b) for e, v, b in pts if e is not None and v is not None]
            if not pts:
                continue
            line, marker, face = styles.get(test, (":", "s", None))
            xs, ys, bars = zip(*pts)
            if not curves:
                xs = [i + (-0.12 if test == "none" else 0.12 if test == "sign" else 0.0)]
            yerr = None if all(b is None for b in bars) else [b or 0.0 for b in bars]
            ax.errorbar(xs, ys, yerr=yerr, fmt=line if curves else "none", marker=marker,
                        color=color, markersize=5 if curves else 8,
                        markerfacecolor=face or color, capsize=2 if curves else 4,
                        elinewidth=1, label=f"{label}, {names[test]}" if curves else None)
    if curves:
        ax.set_xlabel("epoch")
        ax.set_title("Test error during training, measured with full-precision weights W "
                     "(solid, Te-None) and with binarized weights Sign(W) (dashed, Te-Sign)")
        ax.legend(fontsize=8, ncol=2 if len(runs) > 4 else 1)
    else:
        last = [rows[-1] for rows in points.values() if rows]
        epochs = sorted({r.get("epoch") for r in last if r.get("epoch") is not None})
        steps = sorted({r.get("step") for r in last if r.get("step") is not None})
        when = (f"after {', '.join(f'{e:g}' for e in epochs)} "
                f"epoch{'' if epochs == [1] else 's'}"
                + (f", {', '.join(str(s) for s in steps)} steps" if steps else ""))
        ax.set_xticks(range(len(points)))
        ax.set_xticklabels(list(points), rotation=30, ha="right")
        ax.set_xlim(-0.6, len(points) - 0.4)
        ax.set_xlabel("run (one evaluation each: no curve over training to draw)")
        ax.set_title(f"Test error {when}: filled dot = full-precision weights W (Te-None), "
                     "open dot = binarized weights Sign(W) (Te-Sign)")
        from matplotlib.lines import Line2D
        handles = [Line2D([], [], ls="none", marker=styles.get(t, (":", "s", None))[1],
                          color="grey", markerfacecolor=styles.get(t, (":", "s", None))[2]
                          or "grey", markersize=8, label=names[t]) for t in tests]
        ax.legend(handles=handles, fontsize=8)
    ax.set_ylabel("test error (%)")
    ax.grid(True, alpha=0.3)
    return finish(fig, path)


# ---------------------------------------------------------------------------
# Figures 1C and 1D
# ---------------------------------------------------------------------------
def _layer_order(series: dict) -> list:
    order = []
    for values in series.values():
        for k in values:
            if k not in order:
                order.append(k)
    return order


def _per_layer(ax, series: dict, strip_suffix=".weight"):
    order = _layer_order(series)
    for color, (label, values) in zip(colors(len(series)), series.items()):
        xs = [i for i, k in enumerate(order) if k in values]
        ys = [values[order[i]] for i in xs]
        ax.plot(xs, ys, "-o", color=color, label=label)
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([k[:-len(strip_suffix)] if k.endswith(strip_suffix) else k
                        for k in order], rotation=45)
    ax.set_xlabel("layer (input → output)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)


def sign_distance_plot(distances: dict, path=None, normalized: dict | None = None):
    """Figure 1C: mean |W_k − Sign(W_k)| per layer, one line per run.

    distances: ``{label: {weight name: value}}`` from ``analysis.sign_distance(model)``
    (the paper's quantity, in weight units). normalized: the same with
    ``normalized=True`` (divided by α_k, in [0, 1]); drawn in a second panel when given.
    """
    fig, axes = figure(ncols=2 if normalized else 1)
    _per_layer(axes[0], distances)
    axes[0].set_ylabel("mean |W − Sign(W)|  (weight units)")
    axes[0].set_title("How far the weights are from their binarized version\n"
                      "(Sign(W) = α·sign(W), α = max |W| of the layer)")
    if normalized:
        _per_layer(axes[1], normalized)
        axes[1].set_ylabel("mean |W/α − sign(W)|  (0: already ±α, 1: all zero)")
        axes[1].set_ylim(0, 1.02)
        axes[1].set_title("The same, divided by α of each layer\n(comparable across layers "
                          "and networks)")
    return finish(fig, path)


def correlation_plot(correlations: dict, path=None):
    """Figure 1D: correlation of each layer's activity between a pass with W and one with
    Sign(W) (``analysis.activation_correlation``), one line per run."""
    fig, (ax,) = figure()
    _per_layer(ax, correlations)
    ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    lows = [v for vals in correlations.values() for v in vals.values() if math.isfinite(v)]
    ax.set_ylim(min(0.0, min(lows, default=0.0)) - 0.02, 1.02)
    ax.set_ylabel("correlation coefficient of the activity")
    ax.set_title("Same activity with W and with Sign(W)?\n"
                 "one test minibatch through both; 1 = identical")
    return finish(fig, path)


# ---------------------------------------------------------------------------
# Figures 2A–2C and per-layer sweeps
# ---------------------------------------------------------------------------
def _errorbar(ax, rows, color, label, x_key="level", marker="o"):
    """Draw one curve with ± std bars; returns the errors drawn (%), as (low, high) pairs."""
    pts = [(r.get(x_key), percent(r.get("error_mean")), percent(r.get("error_std")) or 0.0)
           for r in rows]
    pts = sorted((x, y, s) for x, y, s in pts if x is not None and y is not None)
    if not pts:
        return []
    xs, ys, ss = zip(*pts)
    ax.errorbar(xs, ys, yerr=ss, linestyle="-", marker=marker, color=color, markersize=4,
                capsize=3, label=label)
    if any(ss):                     # the band makes a spread visible where bars are tiny
        ax.fill_between(xs, [y - s for y, s in zip(ys, ss)], [y + s for y, s in zip(ys, ss)],
                        color=color, alpha=0.15, linewidth=0)
    return [(y - s, y + s) for y, s in zip(ys, ss)]


def _plain_log_axis(axis, ax, which: str, subs):
    """A log-scale axis labelled with plain numbers (0.2, 0.5, 1, 2 …), not 2×10^-1."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    (ax.set_yscale if which == "y" else ax.set_xscale)("log", nonpositive="clip")
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _error_axis(ax, drawn, chance, refs=()):
    """The error axis, scaled to the errors drawn (``drawn``: (low, high) pairs, in %).

    Logarithmic (as the paper's "semi-log" Figure 2C) only when the errors span more than a
    factor of 4, so that both small and large errors can be read; linear otherwise. The
    chance line is shown when it lies near the data. refs: ``[(x, error %, text)]``
    reference points (the paper's numbers): drawn as black stars when they fall inside the
    data's range; otherwise as a black triangle on the edge of the axis at their x (pointing
    towards them), with their value written out in the legend, so that they never squeeze
    the data into a corner.
    """
    values = [v for pair in drawn for v in pair if v is not None and math.isfinite(v)]
    lo = max(min(values, default=1.0), 0.05)
    hi = max(max(values, default=100.0), lo * 1.01)
    if chance and chance <= 1.3 * hi:
        hi = max(hi, chance)
    log = hi / lo > 4.0
    if log:
        _plain_log_axis(ax.yaxis, ax, "y", subs=(1.0, 2.0, 3.0, 5.0, 7.0))
        low, high = lo / 1.15, hi * 1.15
        ax.set_ylabel("test error (%)  [log scale]")
    else:
        pad = max(0.5, 0.08 * (hi - lo))
        low, high = max(0.0, lo - pad), hi + pad
        ax.set_ylabel("test error (%)")
    ax.set_ylim(low, high)
    if chance and low <= chance <= high:
        ax.axhline(chance, color="grey", ls=":", lw=1, label=f"chance ({chance:g} %)")
    for x, err, text in refs:
        if low <= err <= high:
            ax.plot([x], [err], "k*", markersize=11, label=text)
            continue
        below = err < low             # out of the data's range: a triangle on the edge
        left, right = ax.get_xlim()   # (when x is on the axis) and the value in the legend
        marker = "v" if below else "^"
        inside = min(left, right) <= x <= max(left, right)
        where = "below" if below else "above"
        ax.plot([x] if inside else [], [low if below else high] if inside else [], marker,
                color="black", markersize=9, clip_on=not inside, zorder=6,
                label=f"{text}\n({where} this axis{', at the triangle' if inside else ''})")
    ax.grid(True, which="both", alpha=0.3)


def sweep_plot(curves: dict, distortion: str, path=None, chance: float | None = 90.0):
    """Figures 2A–2C: test error (%) against the distortion level, one line per run.

    curves: ``{label: sweep rows}`` with ``level``, ``error_mean``, ``error_std`` (fractions)
    and, for AddNorm, ``bits_per_weight``; only rows for all layers (``layer`` None) are
    drawn. distortion: ``"addnorm"``, ``"multunif"`` or ``"power"``. Error bars are ± one
    std over the draws. The error axis is logarithmic (semi-log, as in the paper) when the
    errors span more than a factor of 4, linear otherwise. AddNorm gets a second panel: the
    same errors against bits per weight, ½·log2(1 + Q_w/Q_n) (Q_w, Q_n: second moments of
    weights and noise); the paper's reference point (Tr-Stoch-C: 11 % at σ = 0.55, 0.68 bits)
    is a star when it lies within the data's range, else an arrow at the axis edge.
    Returns the Figure (saved at ``path`` when given).
    """
    if distortion not in DISTORTIONS:
        raise ValueError(f"unknown distortion {distortion!r}; valid: {', '.join(DISTORTIONS)}")
    meta = DISTORTIONS[distortion]
    bits = distortion == "addnorm"
    fig, axes = figure(ncols=2 if bits else 1)
    ax = axes[0]
    drawn, drawn_bits = [], []
    for color, (label, rows) in zip(colors(len(curves)), curves.items()):
        rows = [r for r in rows if r.get("layer") is None]
        drawn += _errorbar(ax, rows, color, label)
        if bits:
            with_bits = [dict(r, bits=r["bits_per_weight"]) for r in rows
                         if r.get("bits_per_weight") is not None]
            drawn_bits += _errorbar(axes[1], with_bits, color, label, x_key="bits")
    p = _PAPER_POINT
    _error_axis(ax, drawn, chance, [(p["sigma"], p["error"], f"paper: Tr-Stoch-C, "
                                     f"{p['error']:g} % at σ = {p['sigma']}")] if bits else [])
    ax.set_xlabel(meta["xlabel"])
    ax.set_title(meta["title"])
    if distortion == "power":
        ax.axvline(1.0, color="grey", lw=0.8, ls="--")
        ax.axvline(0.0, color="grey", lw=0.8, ls="--")
    if bits:
        _error_axis(axes[1], drawn_bits or drawn, chance,
                    [(p["bits"], p["error"], f"paper: Tr-Stoch-C, {p['error']:g} % "
                      f"at {p['bits']} bits")])
        _plain_log_axis(axes[1].xaxis, axes[1], "x", subs=(1.0, 2.0, 5.0))
        axes[1].set_xlabel("bits per weight: Σ_k n_k·½·log2(1 + Q_w,k/Q_n,k) / Σ_k n_k  "
                           "[log scale]")
        axes[1].set_title("The same noise as information per weight (fewer bits = more noise)")
        axes[1].legend(fontsize=8)
    ax.legend(fontsize=8)
    return finish(fig, path)


def per_layer_plot(sweeps: dict, distortion: str, path=None, baseline: dict | None = None,
                   chance: float | None = 90.0):
    """Error against distortion level with the distortion on one layer at a time.

    Shows which layer is the network's weak spot: each coloured line distorts only one
    layer's weights (all others intact), the black line all layers at once.

    sweeps: ``{run label: per-layer sweep rows}`` (rows with ``layer`` set to a weight
    name: a per-layer sweep of ``robustness.run_sweep``); one panel per run, one line
    per layer. baseline: ``{run label: sweep rows}``; its all-layers curve (``layer``
    None) is drawn in black for comparison. Returns the Figure (saved at ``path`` if given).
    """
    meta = DISTORTIONS.get(distortion, dict(name=distortion, xlabel="level", title=distortion))
    fig, axes = figure(ncols=len(sweeps), width=6.0)
    for ax, (label, rows) in zip(axes, sweeps.items()):
        layers = []
        for r in rows:
            if r.get("layer") is not None and r["layer"] not in layers:
                layers.append(r["layer"])
        drawn = []
        for color, layer in zip(colors(len(layers)), layers):
            drawn += _errorbar(ax, [r for r in rows if r.get("layer") == layer], color,
                               layer.removesuffix(".weight"), marker=".")
        if baseline and label in baseline:
            drawn += _errorbar(ax, [r for r in baseline[label] if r.get("layer") is None],
                               "black", "all layers at once", marker="s")
        _error_axis(ax, drawn, chance)
        ax.set_xlabel(meta["xlabel"])
        ax.set_title(f"{label}: {meta['name']} on one layer at a time")
        ax.legend(fontsize=7, ncol=2)
    return finish(fig, path)


# ---------------------------------------------------------------------------
# Figure 2D
# ---------------------------------------------------------------------------
def power_histogram_plot(hist: dict, path=None, run_label: str = ""):
    """Figure 2D: one panel per β, the histogram of one layer's weights under Power(β).

    hist: the dict of ``analysis.power_histograms`` (``edges``, ``counts`` {β: counts},
    ``layer``, ``alpha``). The x axis is w/α in [−1, 1].
    """
    counts = hist["counts"]
    edges = [float(e) / (hist["alpha"] or 1.0) for e in hist["edges"]]
    fig, axes = figure(ncols=len(counts), width=3.4, height=3.4)
    for ax, (beta, c) in zip(axes, counts.items()):
        widths = [b - a for a, b in zip(edges[:-1], edges[1:])]
        ax.bar(edges[:-1], [int(v) for v in c], width=widths, align="edge",
               color="tab:blue" if beta != 1.0 else "tab:green", edgecolor="none")
        note = {1.0: " (as trained)", 0.0: " (= Sign)"}.get(float(beta), "")
        ax.set_title(f"β = {beta:g}{note}")
        ax.set_xlabel("projected weight / α")
        ax.set_xlim(-1.05, 1.05)
    axes[0].set_ylabel("number of weights")
    layer = hist["layer"].removesuffix(".weight")
    fig.suptitle(f"{run_label + ': ' if run_label else ''}weights of {layer} under Power(β) "
                 "(β < 1 pushes them to ±α, β > 1 towards 0)")
    return finish(fig, path)
