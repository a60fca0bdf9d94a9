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

The page's words (captions, notes, ``report.md``) are in ``report_page.py``; the output
folder's rules (what a report may overwrite, its marker) in ``report_folder.py``.

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
from .errorbars import average_rows, seed_groups
from .report_folder import REPORT_MARKER, check_out_folder
from .report_page import CAPTIONS, write_markdown
from .single_eval import curve_with_bars
from .table2 import label_runs, read_run, read_sweep, write_table2

__all__ = ["Report", "CAPTIONS", "REPORT_MARKER", "make_report", "figure_2d_run"]


def figure_2d_run(presets) -> int:
    """Which run Figure 2D's histograms show, by position: the first Tr-Sign-C run (the
    paper's choice), else the first run. ``presets``: each run's preset name or None."""
    return next((i for i, p in enumerate(presets) if (p or "") == "tr-sign-c"), 0)

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
    check_out_folder(out)                       # all checks before anything is written
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
        hist_run = runs[figure_2d_run([r.preset for r in runs])]
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

    rep.markdown = write_markdown(rep)
    log(f"report written to {rep.markdown} ({len(rep.figures)} figures, "
        f"{len(rep.skipped)} skipped)")
    return rep


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


