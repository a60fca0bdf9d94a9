"""`tinyproj report`: Table 2 and Figures 1B–D, 2A–D from run folders, in one Markdown page.

    from tinyproj.reporting import make_report
    rep = make_report(["runs/tr-none-nc", "runs/tr-sign-c"], "report/")
    rep.figures      # {"fig1b": Path("report/fig1b.png"), ...}
    rep.skipped      # {"fig2a": "no sweeps/addnorm.jsonl in any run ...", ...}

What it reads from each run folder (``RUN_DIR``):

* ``config.json`` and ``metrics.jsonl`` (written by ``tinyproj train``) → Table 2 and
  Figure 1B. Nothing else is needed for those. Every error read there is one evaluation, so
  it is shown with a bar (:mod:`tinyproj.reporting.single_eval`): mean ± std over the seeds
  for runs that differ only in seed, else the binomial SE of the test set, labelled "SE".
  ``curve_dirs`` (``--curves``): Figure 1B from these run folders instead (e.g. the same
  configs retrained with ``--eval-every-steps``, when the report's runs were evaluated once);
  the caption says that it shows other runs, and whether they are the same networks.
* ``checkpoint.npz`` plus the run's data (``--data-dir`` overrides where it is) → the
  layer-wise analyses of :mod:`tinyproj.robustness.analysis`: Figure 1C (mean |W − Sign(W)|
  per layer), 1D (activity correlation, W vs Sign(W), on one test minibatch, batch norm
  re-estimated for each pass as ``tinyproj sweep`` does: exact over every training image by
  default, ``bn=`` / ``--bn-images``, ``--bn-pass-size``, or the old ``--bn-batches 20``) and 2D
  (one layer's weights under Power(β)). ``analyses=False`` (``--no-analyses``) skips them.
* the sweep files written by ``tinyproj sweep`` (``sweeps/<distortion>.jsonl`` and its
  shards, read through :func:`tinyproj.robustness.merge_sweep_files`) → Figures 2A
  (addnorm), 2B (multunif), 2C (power); and the per-layer sweeps
  (``robustness.sweep_name(distortion, per_layer=True)``) → one figure each, named like
  the sweep, with the distortion on one layer at a time.

* ``sweeps/table2.jsonl`` (``tinyproj sweep RUN_DIR --distortion table2 --draws K``) →
  "Table 2 with error bars": Te-None/Sign/Round, mean ± std over K draws of the batch-norm
  re-estimation, and over seeds for runs that differ only in seed
  (:mod:`tinyproj.reporting.errorbar_tables`). Every sweep level is also listed as a table,
  mean ± std (n), below the figures.

What it writes into ``out``: ``table2.md``, ``table2.csv``, the PNGs it has data for, and
``report.md``, which embeds the table and the figures with a caption each and lists the
figures it skipped and why. A missing sweep or checkpoint never stops the report; a folder
that is not a run folder does (``FileNotFoundError`` naming it), and so does an ``out``
that is a file, or a folder holding files of those names that a report did not write
(:class:`~tinyproj.errors.UserError`), all before anything is written. A report marks its
folder with :data:`REPORT_MARKER`, so the next report may rewrite it.

Which errors go in Table 2: the **last** evaluation of each run (``last`` columns) and,
when the run has a validation set, the evaluation at the epoch of **best validation error**
(``at best val`` columns; the paper's protocol, from BinaryConnect). Errors in %.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import robustness
from ..robustness import analysis
from ..algorithm1 import weight_params
from ..errors import UserError
from ..runs.files import atomic_write_text
from ..runs.grid import NETWORK_FIELD
from ..runs.training import load_run
from ..robustness.bn_estimate import BNProtocol
from ..robustness.te_scores import read_test_scores
from . import figures
from .errorbar_tables import sweep_table_markdown, table2_errorbars_markdown
from .errorbars import average_rows, seed_groups
from .single_eval import SE_NOTE, curve_with_bars
from .table2 import (PAPER_EPOCHS, TABLE_NOTE, describe_setup, format_value, label_runs,
                     read_run, read_sweep, table2, table2_markdown, write_table2)

__all__ = ["Report", "CAPTIONS", "REPORT_MARKER", "make_report"]

# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------
@dataclass
class Report:
    """What :func:`make_report` wrote: paths of the tables, figures and skipped figures."""

    folder: Path
    runs: list
    tables: tuple = ()
    figures: dict = field(default_factory=dict)      # {figure name: path}
    skipped: dict = field(default_factory=dict)      # {figure name: why}
    notes: list = field(default_factory=list)        # problems with single runs
    markdown: Path | None = None
    fig1b_curves: bool = True                         # False: one evaluation per run (dots)
    sweeps: dict = field(default_factory=dict)       # {distortion: {label: rows}} as drawn
    table2_scores: dict = field(default_factory=dict)  # {run label: {test: table2 row}}
    fig1d_bn: dict = field(default_factory=dict)     # {run label: how 1D re-estimated}
    fig1b_bars: set = field(default_factory=set)     # {"SE", "seeds"}: the bars drawn in 1B
    curve_runs: list = field(default_factory=list)   # the runs 1B is drawn from, if others


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
        "**Figure 2A — additive Gaussian noise on every weight.** Test error (log scale) "
        "against σ, the noise std relative to each layer's α; error bars: ± one std over the "
        "random noise draws, batch norm re-estimated for each. A robust network stays flat "
        "(near its σ = 0 error) to larger σ. The right panel converts σ to bits per weight, "
        "½·log2(1 + Q_w/Q_n): the information a weight still carries under that noise "
        "(the paper: Tr-Stoch-C keeps 11 % error at σ = 0.55, 0.68 bits)."),
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


def _run_analyses(run, data_dir, want_hist: bool, hist_layer: str, betas, log,
                  bn: BNProtocol):
    """``(sign distances, normalized distances, correlations, histogram or None, how 1D
    normalised)``."""
    loaded = load_run(run.folder, data_dir=data_dir)
    model, cfg = loaded.model, loaded.config
    raw = analysis.sign_distance(model)
    normalized = analysis.sign_distance(model, normalized=True)
    n = min(len(loaded.test), max(2, cfg.batch_size))
    x, _ = loaded.test.batch(range(n))
    if cfg.bn_reestimate and bn.kind != "none":    # the test protocol, as the sweeps score
        corr = analysis.activation_correlation(model, x, "sign", source=loaded.train,
                                               bn="reestimate", protocol=bn, seed=cfg.seed)
        how = bn.describe(len(loaded.train))
    else:          # a run evaluated without re-estimation: the minibatch's own statistics
        corr = analysis.activation_correlation(model, x, "sign", bn="batch")
        how = "the minibatch's own statistics (no re-estimation)"
    hist = None
    if want_hist:
        layers = list(weight_params(model))
        name = hist_layer if (hist_layer in layers or f"{hist_layer}.weight" in layers) \
            else layers[min(1, len(layers) - 1)]
        hist = analysis.power_histograms(model, name, betas)
    log(f"  analyses of {run.label}: {len(raw)} weight layers, correlation on {n} test images")
    return raw, normalized, corr, hist, how


def make_report(run_dirs, out, data_dir=None, analyses: bool = True, hist_layer: str = "conv2",
                betas=None, log=print, bn: BNProtocol | None = None,
                curve_dirs=None) -> Report:
    """Write Table 2, the figures that have data, and ``report.md`` into ``out``.

    run_dirs: run folders (each needs config.json; metrics.jsonl, checkpoint.npz and
    sweeps/ are used when present). data_dir: where the runs' data are, if not where they
    were trained (for the analyses). analyses: False skips Figures 1C, 1D and 2D (no model
    is loaded). hist_layer: the layer of Figure 2D (the paper: conv2 of Tr-Sign-C; the run
    shown is the first tr-sign-c run, else the first run). betas: the β of Figure 2D
    (default ``analysis.DEFAULT_BETAS``). bn: how Figure 1D re-estimates batch norm for each
    pass (a ``BNProtocol``; default exact over every training image, the sweeps' default;
    ``bn_estimate.protocol_from_settings`` reads the command line's words). curve_dirs: run
    folders Figure 1B is drawn from instead of ``run_dirs`` (None: the report's runs).
    Returns a :class:`Report`.
    """
    bn = BNProtocol() if bn is None else bn
    betas = analysis.DEFAULT_BETAS if betas is None else tuple(betas)
    run_dirs = [run_dirs] if isinstance(run_dirs, (str, Path)) else list(run_dirs)
    if not run_dirs:
        raise UserError("make_report: give at least one run folder")
    out = Path(out)
    _check_out_folder(out)                       # all checks before anything is written
    runs = [read_run(d) for d in run_dirs]
    label_runs(runs)
    curve_runs = [read_run(d) for d in ([curve_dirs] if isinstance(curve_dirs, (str, Path))
                                        else list(curve_dirs or []))]
    label_runs(curve_runs)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / REPORT_MARKER, "This folder was written by `tinyproj report`: its "
                      "report.md, table2.* and figures are rewritten by the next report here.\n")
    rep = Report(out, runs)
    rep.tables = write_table2(runs, out)

    # -- Figure 1B: metrics, with a bar on every point ----------------------------------
    rep.curve_runs = curve_runs
    with_rows = {}
    for name, members in seed_groups(curve_runs or runs).items():
        rows, kind = curve_with_bars([(r.rows, r.config) for r in members])
        if rows:
            have = [r for r in members if r.rows]
            with_rows[name if len(have) == 1 and name == have[0].label else
                      f"{name} ({len(have)} seed{'s' if len(have) > 1 else ''})"] = rows
            rep.fig1b_bars.add(kind)
    if with_rows:
        figures.training_curves(with_rows, out / "fig1b.png")
        rep.figures["fig1b"] = out / "fig1b.png"
        rep.fig1b_curves = any(len({row.get("step") for row in rows}) > 1
                               for rows in with_rows.values())
    else:
        rep.skipped["fig1b"] = "no run has a metrics.jsonl row yet (no evaluation has finished)"

    # -- Figures 1C, 1D, 2D: the layer-wise analyses -------------------------------------
    analysis_figs = ("fig1c", "fig1d", "fig2d")
    if not analyses:
        for name in analysis_figs:
            rep.skipped[name] = "the analyses were turned off (--no-analyses)"
    else:
        hist_run = next((r for r in runs if (r.preset or "") == "tr-sign-c"), runs[0])
        dist, dist_n, corr, hist = {}, {}, {}, None
        for run in runs:
            try:
                raw, normalized, c, h, how = _run_analyses(
                    run, data_dir, run is hist_run, hist_layer, betas, log, bn)
            except (FileNotFoundError, ValueError, KeyError, OSError, RuntimeError) as err:
                rep.notes.append(f"{run.label}: analyses skipped ({err})")
                if run is hist_run:   # show another run's histograms instead
                    rest = runs[runs.index(run) + 1:]
                    hist_run = rest[0] if rest else None
                continue
            dist[run.label], dist_n[run.label], corr[run.label] = raw, normalized, c
            rep.fig1d_bn[run.label] = how
            if h is not None:
                hist = (run.label, h)
                if h["layer"] not in (hist_layer, f"{hist_layer}.weight"):   # say so, not silently
                    names = ", ".join(k.removesuffix(".weight") for k in raw)
                    rep.notes.append(f"fig2d: {run.label} has no layer {hist_layer!r}; it shows "
                                     f"{h['layer'].removesuffix('.weight')} instead "
                                     f"(--hist-layer picks one of: {names})")
        why = ("no run could be loaded (checkpoint.npz and the run's data are needed; see the "
               "notes below, or pass --data-dir)")
        if dist:
            figures.sign_distance_plot(dist, out / "fig1c.png", dist_n)
            figures.correlation_plot(corr, out / "fig1d.png")
            rep.figures["fig1c"], rep.figures["fig1d"] = out / "fig1c.png", out / "fig1d.png"
        else:
            rep.skipped["fig1c"] = rep.skipped["fig1d"] = why
        if hist is not None:
            figures.power_histogram_plot(hist[1], out / "fig2d.png", hist[0])
            rep.figures["fig2d"] = out / "fig2d.png"
        else:
            rep.skipped["fig2d"] = why

    # -- Figures 2A–2C and the per-layer sweeps: sweep files -----------------------------
    chance = runs[0].chance
    for distortion, meta in figures.DISTORTIONS.items():
        name = meta["figure"]
        layers_name = robustness.sweep_name(distortion, per_layer=True)
        curves, per_layer, refused = {}, {}, []
        for run in runs:
            rows = _read_sweep_or_note(rep, run, distortion)
            layer_rows = _read_sweep_or_note(rep, run, layers_name)
            if rows is None:
                refused.append(run.label)
            elif any(r.get("layer") is None for r in rows):
                curves[run.label] = [r for r in rows if r.get("layer") is None]
            if layer_rows:
                per_layer[run.label] = layer_rows
        curves = _average_seeds(curves, runs)
        if curves:
            rep.sweeps[distortion] = curves
            figures.sweep_plot(curves, distortion, out / f"{name}.png", chance=chance)
            rep.figures[name] = out / f"{name}.png"
        elif refused:
            rep.skipped[name] = (f"the {distortion} sweep files of {', '.join(refused)} could "
                                 "not be used (see the notes)")
        else:
            rep.skipped[name] = (f"no run has sweeps/{distortion}.jsonl (or its shards); make "
                                 f"it with `tinyproj sweep RUN_DIR --distortion {distortion}`")
        if per_layer:      # the figure is named like its sweep file
            figures.per_layer_plot(per_layer, distortion, out / f"{layers_name}.png",
                                   baseline=curves, chance=chance)
            rep.figures[layers_name] = out / f"{layers_name}.png"

    for run in runs:                   # Table 2 over draws: sweeps/table2.jsonl
        try:
            has_checkpoint = (run.folder / "checkpoint.npz").is_file()
            scores = read_test_scores(run.folder, "checkpoint" if has_checkpoint else None)
        except ValueError as err:
            rep.notes.append(f"{run.label}: {err}")
            continue
        if scores:
            rep.table2_scores[run.label] = scores

    rep.markdown = _write_markdown(rep)
    log(f"report written to {rep.markdown} ({len(rep.figures)} figures, "
        f"{len(rep.skipped)} skipped)")
    return rep


_ORDER = ("fig1b", "fig1c", "fig1d", "fig2a", "fig2b", "fig2c", "fig2d")


def _average_seeds(curves: dict, runs: list) -> dict:
    """Curves of networks that differ only in seed, averaged into one (± std over seeds)."""
    out, done = {}, set()
    for name, members in seed_groups(runs).items():
        have = [r.label for r in members if r.label in curves]
        if len(have) > 1:
            out[f"{name} ({len(have)} seeds)"] = average_rows([curves[lab] for lab in have])
            done.update(have)
    for label, rows in curves.items():
        if label not in done:
            out[label] = rows
    return out


def _read_sweep_or_note(rep: Report, run, name: str):
    """The rows of one sweep of ``run``, or None with a note saying why they were refused
    (a corrupt line, rows of another network or of other settings): one bad file never
    stops the report, and a stale row is never drawn.

    A folder without ``checkpoint.npz`` (a results folder in the repository, where
    checkpoints are never committed) cannot be checked against its network; its rows are
    used when they all carry one and the same network fingerprint, with a note saying so."""
    try:
        if (run.folder / "checkpoint.npz").is_file():
            return read_sweep(run.folder, name)
        rows = robustness.merge_sweep_files(run.folder, name, network=None)
    except ValueError as err:
        rep.notes.append(f"{run.label}: {err}")
        return None
    networks = sorted({str(r.get(NETWORK_FIELD)) for r in rows})
    if len(networks) > 1 or "None" in networks:
        rep.notes.append(f"{run.label}: sweeps/{name}.jsonl has rows of {len(networks)} "
                         f"networks ({', '.join(networks)}) and no checkpoint.npz tells which "
                         "is this run's; not drawn (put the checkpoint back)")
        return None
    if rows:
        rep.notes.append(f"{run.label}: no checkpoint.npz, so sweeps/{name}.jsonl was checked "
                         f"among its rows only (one network, {networks[0]})")
    return rows


REPORT_MARKER = ".tinyproj-report"
"""The file that marks a folder as a report folder of ``tinyproj report`` (written first):
its report.md, table2.* and figures may be rewritten by the next report there."""

_TITLE = "# Robustness report"


def _output_names() -> list:
    """Every file name a report may write into its folder."""
    per_layer = [robustness.sweep_name(d, per_layer=True) for d in figures.DISTORTIONS]
    return (["report.md", "table2.md", "table2.csv"]
            + [f"{name}.png" for name in (*_ORDER, *per_layer)])


def _is_report_folder(out: Path) -> bool:
    """True when a report wrote ``out`` before: the marker, or (reports made before the
    marker existed) a report.md that starts with the report's title."""
    if (out / REPORT_MARKER).is_file():
        return True
    try:
        with open(out / "report.md", encoding="utf-8") as f:
            return f.readline().rstrip("\n") == _TITLE
    except (OSError, UnicodeDecodeError):
        return False


def _check_out_folder(out: Path) -> None:
    """``out`` must be a folder or not exist yet (then it is created), and so must the
    folders above it; and a report overwrites only files that a report wrote. Mistakes the
    user can fix, said before any work."""
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "" if folder == out else f" ({folder} is a file)"
                raise UserError(f"report --out {out}: not a folder{what}; give a folder for "
                                "report.md, table2.* and the figures (it is created if it "
                                "does not exist)", flag="--out")
            break
    if out.is_dir() and not _is_report_folder(out):
        taken = [name for name in _output_names() if (out / name).exists()]
        if taken:
            raise UserError(f"report --out {out}: the folder already holds {', '.join(taken)}, "
                            "which tinyproj report did not write (the folder is not a report "
                            "folder), and a report would overwrite them; give another --out "
                            "folder, or move those files away", flag="--out")


def _fig1b_bars(rep: Report) -> str:
    """What Figure 1B's bars are, and which runs it shows (when not the report's own)."""
    said = []
    if "seeds" in rep.fig1b_bars:
        said.append("for runs that differ only in seed, the mean over the seeds ± their std")
    if "SE" in rep.fig1b_bars:
        said.append("for a single run, ± the binomial standard error of one evaluation on the "
                    "test set, sqrt(p(1 − p)/n_test) — the test set's sampling error, not a "
                    "spread over seeds or over batch-norm re-estimations (each point "
                    "re-estimated batch norm once, with the run's own --bn-batches protocol; "
                    "\"Table 2 with error bars\" measures that spread)")
    text = ("Error bars: " + "; ".join(said) + ".") if said else ""
    if rep.curve_runs:
        same = _same_networks(rep)
        text += (" **These curves come from separate runs** (" + ", ".join(
            f"`{r.folder}`" for r in rep.curve_runs) + "): the same configurations retrained "
            "with evaluations inside the epoch. " + same)
    return text


def _same_networks(rep: Report) -> str:
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


def _per_layer_figures(rep: Report) -> dict:
    """``{figure name: distortion}`` of the per-layer figures the report drew."""
    names = {robustness.sweep_name(d, per_layer=True): d for d in figures.DISTORTIONS}
    return {n: d for n, d in names.items() if n in rep.figures}


def _write_markdown(rep: Report) -> Path:
    table = table2(rep.runs)
    lines = [_TITLE, "",
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
    for name in list(_ORDER) + list(per_layer):
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
        for name in _ORDER:
            if name in rep.skipped:
                lines.append(f"- {name} skipped: {rep.skipped[name]}")
        lines.append("")
    if rep.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in rep.notes] + [""]
    return atomic_write_text(rep.folder / "report.md", "\n".join(lines))
