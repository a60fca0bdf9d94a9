"""The paper's figures with matplotlib (Merolla et al. 2016, Figures 1B–D and 2A–D).

Each function takes plain data (dicts of numbers or result rows) and a path, draws one
figure in the house style (:mod:`tinyproj.reporting.style`: no pyplot, Agg canvas, atomic
PNG) and returns the path written::

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

Errors are plotted in %, on a logarithmic y axis for the sweeps as in the paper's Figure 2
("note the semi-log scale"), with error bars of ± one standard deviation over the random
draws (``error_std`` of the sweep rows).
"""
from __future__ import annotations

import math

from .style import colors, figure, percent, save

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
def training_curves(runs: dict, path, tests=("none", "sign")):
    """Figure 1B: test error (%) against epoch, one colour per run.

    runs: ``{label: metrics rows}`` (rows of ``metrics.jsonl``: ``epoch`` and
    ``test_error`` {"none": fraction, "sign": …}). Te-None is drawn solid, Te-Sign dashed
    (other test projections in ``tests`` dotted).
    """
    fig, (ax,) = figure()
    styles = {"none": "-", "sign": "--"}
    for color, (label, rows) in zip(colors(len(runs)), runs.items()):
        for test in tests:
            pts = [(r["epoch"], percent(r.get("test_error", {}).get(test))) for r in rows]
            pts = [(e, v) for e, v in pts if v is not None]
            if not pts:
                continue
            xs, ys = zip(*pts)
            ax.plot(xs, ys, styles.get(test, ":"), color=color, marker="o", markersize=3,
                    label=f"{label}, Te-{test.capitalize()}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test error (%)")
    ax.set_title("Test error during training\n(solid: full-precision weights W; "
                 "dashed: binarized weights Sign(W))")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


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


def sign_distance_plot(distances: dict, path, normalized: dict | None = None):
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
    return save(fig, path)


def correlation_plot(correlations: dict, path):
    """Figure 1D: correlation of each layer's activity between a pass with W and one with
    Sign(W) (``analysis.activation_correlation``), one line per run."""
    fig, (ax,) = figure()
    _per_layer(ax, correlations)
    ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    lows = [v for vals in correlations.values() for v in vals.values() if math.isfinite(v)]
    ax.set_ylim(min(0.0, min(lows, default=0.0)) - 0.02, 1.02)
    ax.set_ylabel("correlation coefficient of the activity")
    ax.set_title("Does the network compute the same thing with binarized weights?\n"
                 "(same minibatch through W and through Sign(W); 1 = identical activity)")
    return save(fig, path)


# ---------------------------------------------------------------------------
# Figures 2A–2C and per-layer sweeps
# ---------------------------------------------------------------------------
def _errorbar(ax, rows, color, label, x_key="level", marker="o"):
    pts = [(r.get(x_key), percent(r.get("error_mean")), percent(r.get("error_std")) or 0.0)
           for r in rows]
    pts = sorted((x, y, s) for x, y, s in pts if x is not None and y is not None)
    if not pts:
        return False
    xs, ys, ss = zip(*pts)
    ax.errorbar(xs, ys, yerr=ss, linestyle="-", marker=marker, color=color, markersize=4,
                capsize=3, label=label)
    return True


def _plain_log_axis(axis, ax, which: str, subs):
    """A log-scale axis labelled with plain numbers (0.2, 0.5, 1, 2 …), not 2×10^-1."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    (ax.set_yscale if which == "y" else ax.set_xscale)("log", nonpositive="clip")
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _log_error_axis(ax, chance):
    _plain_log_axis(ax.yaxis, ax, "y", subs=(1.0, 2.0, 3.0, 5.0, 7.0))
    ax.set_ylabel("test error (%)  [log scale]")
    if chance:
        ax.axhline(chance, color="grey", ls=":", lw=1, label=f"chance ({chance:g} %)")
    ax.grid(True, which="both", alpha=0.3)


def sweep_plot(curves: dict, distortion: str, path, chance: float | None = 90.0):
    """Figures 2A–2C: test error (%) against the distortion level, one line per run.

    curves: ``{label: sweep rows}`` with ``level``, ``error_mean``, ``error_std`` (fractions)
    and, for AddNorm, ``bits_per_weight``; only rows for all layers (``layer`` None) are
    drawn. distortion: ``"addnorm"``, ``"multunif"`` or ``"power"``. The y axis is
    logarithmic (semi-log, as in the paper); error bars are ± one std over the draws.
    AddNorm gets a second panel: the same errors against bits per weight,
    ½·log2(1 + Q_w/Q_n) (Q_w, Q_n: second moments of weights and noise).
    """
    if distortion not in DISTORTIONS:
        raise ValueError(f"unknown distortion {distortion!r}; valid: {', '.join(DISTORTIONS)}")
    meta = DISTORTIONS[distortion]
    bits = distortion == "addnorm"
    fig, axes = figure(ncols=2 if bits else 1)
    ax = axes[0]
    for color, (label, rows) in zip(colors(len(curves)), curves.items()):
        rows = [r for r in rows if r.get("layer") is None]
        _errorbar(ax, rows, color, label)
        if bits:
            with_bits = [dict(r, bits=r["bits_per_weight"]) for r in rows
                         if r.get("bits_per_weight") is not None]
            _errorbar(axes[1], with_bits, color, label, x_key="bits")
    _log_error_axis(ax, chance)
    ax.set_xlabel(meta["xlabel"])
    ax.set_title(meta["title"])
    if distortion == "power":
        ax.axvline(1.0, color="grey", lw=0.8, ls="--")
        ax.axvline(0.0, color="grey", lw=0.8, ls="--")
    if bits:
        p = _PAPER_POINT
        ax.plot([p["sigma"]], [p["error"]], "k*", markersize=11,
                label=f"paper: Tr-Stoch-C, {p['error']:g} % at σ = {p['sigma']}")
        axes[1].plot([p["bits"]], [p["error"]], "k*", markersize=11,
                     label=f"paper: Tr-Stoch-C, {p['bits']} bits")
        _log_error_axis(axes[1], chance)
        _plain_log_axis(axes[1].xaxis, axes[1], "x", subs=(1.0, 2.0, 5.0))
        axes[1].set_xlabel("bits per weight, ½·log2(1 + Q_w/Q_n)  [log scale]")
        axes[1].set_title("The same noise as information per weight\n(fewer bits = more noise)")
        axes[1].legend(fontsize=8)
    ax.legend(fontsize=8)
    return save(fig, path)


def per_layer_plot(sweeps: dict, distortion: str, path, baseline: dict | None = None,
                   chance: float | None = 90.0):
    """Error against distortion level with the distortion on one layer at a time.

    Shows which layer is the network's weak spot: each coloured line distorts only one
    layer's weights (all others intact), the black line all layers at once.

    sweeps: ``{run label: per-layer sweep rows}`` (rows with ``layer`` set to a weight
    name: a per-layer sweep of ``robustness.run_sweep``); one panel per run, one line
    per layer. baseline: ``{run label: sweep rows}``; its all-layers curve (``layer``
    None) is drawn in black for comparison.
    """
    meta = DISTORTIONS.get(distortion, dict(name=distortion, xlabel="level", title=distortion))
    fig, axes = figure(ncols=len(sweeps), width=6.0)
    for ax, (label, rows) in zip(axes, sweeps.items()):
        layers = []
        for r in rows:
            if r.get("layer") is not None and r["layer"] not in layers:
                layers.append(r["layer"])
        for color, layer in zip(colors(len(layers)), layers):
            _errorbar(ax, [r for r in rows if r.get("layer") == layer], color,
                      layer.removesuffix(".weight"), marker=".")
        if baseline and label in baseline:
            _errorbar(ax, [r for r in baseline[label] if r.get("layer") is None], "black",
                      "all layers at once", marker="s")
        _log_error_axis(ax, chance)
        ax.set_xlabel(meta["xlabel"])
        ax.set_title(f"{label}: {meta['name']} on one layer at a time")
        ax.legend(fontsize=7, ncol=2)
    return save(fig, path)


# ---------------------------------------------------------------------------
# Figure 2D
# ---------------------------------------------------------------------------
def power_histogram_plot(hist: dict, path, run_label: str = ""):
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
    return save(fig, path)
