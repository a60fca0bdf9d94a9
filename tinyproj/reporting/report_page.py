"""The words of ``report.md``: the figures' captions, the notes on error bars, and the page
itself, written from what :func:`tinyproj.reporting.make_report` gathered (a ``Report``)."""
from __future__ import annotations

from pathlib import Path

from .. import robustness
from ..runs.files import atomic_write_text
from . import figures
from .errorbar_tables import sweep_table_markdown, table2_errorbars_markdown
from .errorbars import seed_groups
from .report_folder import FIGURE_ORDER, TITLE
from .table2 import PAPER_EPOCHS, TABLE_NOTE, describe_setup, format_value, table2, table2_markdown

__all__ = ["CAPTIONS", "ERRORBAR_NOTE", "write_markdown"]

CAPTIONS = {
    "fig1b": (
        "**Figure 1B — test error during training.** One colour per run; solid lines score the "
        "network with its full-precision weights W (Te-None), dashed lines with every layer "
        "binarized to α·sign(W) (Te-Sign). Look for the gap between the two: a network "
        "trained with Sign (Tr-Sign-C) or with clipping keeps the dashed line close to the "
        "solid one, while a plain network without clipping (Tr-None-NC) loses much more when "
        "binarized."),
    "fig1b_points": (
        "**Figure 1B — test error at the end of training.** Every run was evaluated once, so "
        "there is no curve over training: one column per run, the filled dot scores the "
        "network with its full-precision weights W (Te-None), the open dot with every layer "
        "binarized to α·sign(W) (Te-Sign). Look for the gap between the two dots: a network "
        "trained with Sign (Tr-Sign-C) or with clipping keeps them close, while a plain "
        "network without clipping (Tr-None-NC) loses much more when binarized. Each dot is "
        "one evaluation (batch norm re-estimated once): the table with error bars below says "
        "how far such a number moves between re-estimations."),
    "fig1c": (
        "**Figure 1C — how far W is from Sign(W).** Left: the mean absolute difference "
        "between each layer's weights and their binarized version, the paper's quantity "
        "(units of the weights). Right: the same divided by the layer's α = max |W| "
        "(0 = the weights are already ±α). The distances are far from zero in every layer: "
        "the network does not simply learn binary weights."),
    "fig1d": (
        "**Figure 1D — same activity with W and with Sign(W).** One test minibatch goes "
        "through the network twice, with W and with Sign(W) (batch norm re-estimated on "
        "training data for each, as in the test protocol); each point is the correlation of "
        "one layer's activity (after its batch norm and ReLU) between the two passes. Close "
        "to 1 all the way to the output means the binarized network computes nearly the same "
        "thing, despite the large weight differences of 1C."),
    "fig2a": (
        "**Figure 2A — additive Gaussian noise on every weight.** Test error (on a log "
        "scale when the errors span more than a factor of 4, as the paper's semi-log plot) "
        "against σ, the noise std relative to each layer's α; error bars: ± one std over the "
        "random noise draws, batch norm re-estimated for each. A robust network stays flat "
        "(near its σ = 0 error) to larger σ. The right panel converts σ to bits per weight: "
        "½·log2(1 + Q_w,k/Q_n,k) per layer k (Q: second moments of its weights and of the "
        "noise), averaged over all weights — the information a weight still carries under "
        "that noise (the paper: Tr-Stoch-C keeps 11 % error at σ = 0.55, 0.68 bits)."),
    "fig2b": (
        "**Figure 2B — multiplicative noise on every weight.** Each weight is multiplied by "
        "its own factor from U(γ, 1/γ); γ = 1 is no noise and smaller γ is more noise, so "
        "read the curves from right to left. A robust network keeps a low error down to "
        "small γ."),
    "fig2c": (
        "**Figure 2C — the Power distortion.** Every weight becomes α·|w/α|^β·sign(w): β = 1 "
        "leaves it unchanged (dashed line), β → 0 turns it into Sign, β > 1 squeezes small "
        "weights towards zero. A robust network has a wide flat valley around β = 1; a "
        "fragile one has low error only near β = 1."),
    "fig2d": (
        "**Figure 2D — what Power(β) does to one layer.** Histograms of one layer's weights "
        "(x axis in units of α) after Power(β) for several β; the green panel (β = 1) is the "
        "layer as trained. Small β pushes the weights into two clumps near ±α — on the way to "
        "Sign — and large β piles them up near zero."),
    "per_layer": (
        "**{name} on one layer at a time.** Each coloured line distorts only the weights of "
        "one layer (all other layers intact); the black line distorts all layers at once. "
        "Layers whose line stays low tolerate the distortion; the layer that rises first is "
        "the network's weak spot."),
}


ERRORBAR_NOTE = (
    "Mean ± std over the draws (n) of each network: every draw re-estimates batch norm on "
    "its own training images (or order) and scores the test set; networks that differ only "
    "in seed are averaged, ± std over the seeds (n seeds). Precision follows the spread. "
    "Compare a gap between two columns with these bars: under the old protocol (20 batches "
    "of 50 images) one re-estimation moved test error by up to ~1.6 points, more than Table "
    "2's gaps in the paper (0.2–0.7 points).")


def _fig1b_bars(rep) -> str:
    """What Figure 1B's bars are, and which runs it shows (when not the report's own)."""
    said = []
    if "seeds" in rep.fig1b_bars:
        said.append("for runs that differ only in seed, the mean over the seeds ± their std")
    if "SE" in rep.fig1b_bars:
        said.append("for a single run, ± the binomial standard error of one evaluation on the "
                    "test set, sqrt(p(1 − p)/n_test) — the test set's sampling error, not a "
                    "spread over seeds or over batch-norm re-estimations (each point "
                    "re-estimated batch norm once, with the run's own protocol, train's "
                    "--bn-batches or --bn-images; "
                    "\"Table 2 with error bars\" measures that spread)")
    text = ("Error bars: " + "; ".join(said) + ".") if said else ""
    if rep.curve_runs:
        same = _same_networks(rep)
        text += (" **These curves come from separate runs** (" + ", ".join(
            f"`{r.folder}`" for r in rep.curve_runs) + "): the same configurations retrained "
            "with evaluations inside the epoch. " + same)
    return text


def _same_networks(rep) -> str:
    """Whether Figure 1B's separate runs hold the report's networks: their checkpoints'
    fingerprints compared (``runs.fingerprint``); said plainly when that cannot be checked."""
    from ..runs.fingerprint import checkpoint_fingerprint
    mine = {r.preset or r.label: r for r in rep.runs}
    same, differ, unknown = [], [], []
    for run in rep.curve_runs:
        other = mine.get(run.preset or run.label)
        a, b = run.folder / "checkpoint.npz", other.folder / "checkpoint.npz" if other else None
        if other is None or not a.is_file() or not b.is_file():
            unknown.append(run.label)
        elif checkpoint_fingerprint(a) == checkpoint_fingerprint(b):
            same.append(run.label)
        else:
            differ.append(run.label)
    said = []
    if differ:
        said.append(f"{', '.join(differ)}: **not the same networks** as those of Table 2 and "
                    "the sweeps (their weights differ: the retraining did not reproduce them), so "
                    "read their shapes over training, not their last values, against the "
                    "tables")
    if same:
        said.append(f"{', '.join(same)}: the same networks as Table 2's (equal weights)")
    if unknown:
        said.append(f"{', '.join(unknown)}: not checked against the report's networks (a "
                    "checkpoint is missing)")
    return "; ".join(said) + "."


def _fig1d_protocol(how: dict) -> str:
    """The sentence saying how Figure 1D's batch norm was re-estimated (per run if they differ)."""
    kinds = sorted(set(how.values()))
    if len(kinds) == 1:
        return f"Batch norm for each pass: {kinds[0]}."
    return "Batch norm for each pass: " + "; ".join(f"{label}: {h}" for label, h in how.items()) + "."


def _per_layer_figures(rep) -> dict:
    """``{figure name: distortion}`` of the per-layer figures the report drew."""
    names = {robustness.sweep_name(d, per_layer=True): d for d in figures.DISTORTIONS}
    return {n: d for n, d in names.items() if n in rep.figures}


def write_markdown(rep) -> Path:
    """``report.md`` for the report ``rep`` (a ``Report``): runs, Table 2 (with error bars
    when scored over draws), the figures with their captions, the sweep tables, what was
    skipped and why, and the notes."""
    table = table2(rep.runs)
    lines = [TITLE, "",
             "Reproducing Merolla et al. 2016, *Deep neural networks are robust to weight "
             "binarization and other non-linear distortions*, with tinyproj. Runs:", ""]
    for row in table:
        lines.append(f"- **{row['run']}** (`{row['folder']}`): {describe_setup(row)}; "
                     f"{format_value(row['epochs_trained'])} of "
                     f"{format_value(row['epochs_planned'])} epochs trained")
    if rep.curve_runs:
        lines += ["", "Figure 1B is drawn from separate runs, the same configurations with "
                  "evaluations inside the epoch:", ""]
        for run in rep.curve_runs:
            evals = len(run.rows)
            every = run.config.get("eval_every_steps")
            lines.append(f"- **{run.label}** (`{run.folder}`): {evals} evaluations"
                         + (f", every {every} steps" if every else ""))
    short = [r for r in table
             if not isinstance(r["epochs_trained"], int) or r["epochs_trained"] < PAPER_EPOCHS]
    if short:
        lines += ["", f"These runs are shorter (or smaller) than the paper's {PAPER_EPOCHS} "
                  "epochs on CIFAR-10 at full width: compare trends, not exact numbers."]
    lines += ["", "## Table 2 — test error (%)", "", table2_markdown(table), TABLE_NOTE, "",
              "(Also as [table2.md](table2.md) and [table2.csv](table2.csv).)", ""]
    lines += ["### Table 2 with error bars", ""]
    bars = table2_errorbars_markdown(seed_groups(rep.runs), rep.table2_scores)
    if bars:
        lines += [bars, ERRORBAR_NOTE, ""]
    else:
        lines += ["The numbers above are single evaluations (n = 1: one re-estimation of "
                  "batch norm each). Score them over several draws with `tinyproj sweep "
                  "RUN_DIR --distortion table2 --draws 5` (exact re-estimation over the whole "
                  "training set by default) to get mean ± std here.", ""]
    per_layer = _per_layer_figures(rep)
    lines += ["## Figures", ""]
    for name in list(FIGURE_ORDER) + list(per_layer):
        if name in rep.figures:
            if name in per_layer:
                distortion_name = figures.DISTORTIONS[per_layer[name]]["name"]
                caption = CAPTIONS["per_layer"].format(name=distortion_name)
            elif name == "fig1b":
                caption = CAPTIONS["fig1b" if rep.fig1b_curves else "fig1b_points"]
                caption += " " + _fig1b_bars(rep)
            else:
                caption = CAPTIONS[name]
            if name == "fig1d" and rep.fig1d_bn:
                caption += " " + _fig1d_protocol(rep.fig1d_bn)
            lines += [f"![{name}]({Path(rep.figures[name]).name})", "", caption, ""]
    if rep.sweeps:
        lines += ["## Sweeps — the numbers behind Figures 2A–2C", ""]
        for distortion, curves in rep.sweeps.items():
            meta = figures.DISTORTIONS[distortion]
            lines += [f"### {meta['name']}", "",
                      sweep_table_markdown(distortion, curves, meta["symbol"]), ""]
    if rep.skipped:
        lines += ["## Skipped figures", ""]
        for name in FIGURE_ORDER:
            if name in rep.skipped:
                lines.append(f"- {name} skipped: {rep.skipped[name]}")
        lines.append("")
    if rep.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in rep.notes] + [""]
    return atomic_write_text(rep.folder / "report.md", "\n".join(lines))
