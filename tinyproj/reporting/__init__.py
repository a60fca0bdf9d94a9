"""Reporting: Table 2, the papers' figures and ``report.md`` (the top floor below the CLI).

One idea per file:

- ``style.py``                  the one plot style: colours, a bare Agg figure, atomic PNGs
- ``table2.py``                 Table 2 of Merolla et al. from run folders (md and csv)
- ``figures.py``                Merolla et al.'s Figures 1B–D and 2A–D, per-layer sweeps
- ``walking_noise_figures.py``  Walking Noise: accuracy against σ, μ per site, activations,
                                weight statistics during noisy training
- ``walk_study_figures.py``     a Walking Noise study's two figures, into its folder
- ``cross_figure.py``           the cross-robustness table as a heat map
- ``errorbars.py``              mean ± std with a precision that follows the spread; runs that
                                differ only in their seed, grouped and averaged
- ``errorbar_tables.py``        Table 2 with error bars and the per-level sweep tables
- ``report.py``                 ``make_report``: all of the above from run folders, with
                                ``report.md`` embedding them (``tinyproj report``)
- ``report_page.py``            the words of ``report.md``: captions, notes, the page
- ``report_folder.py``          the report's folder: what it may overwrite, its marker

Example::

    from tinyproj import reporting
    rep = reporting.make_report(["runs/tr-none-nc", "runs/tr-sign-c"], "report/")
    reporting.sweep_plot({"tr-sign-c": rows}, "addnorm", "fig2a.png")

Every figure function takes plain data and optionally a path, saves the PNG there when
given one, and returns the matplotlib Figure (shown inline when a notebook cell ends with it).
Files here import each other's public names only.
"""
from . import style
from .cross_figure import cross_heatmap
from .figures import (DISTORTIONS, correlation_plot, per_layer_plot, power_histogram_plot,
                      sign_distance_plot, sweep_plot, training_curves)
from .report import CAPTIONS, REPORT_MARKER, Report, make_report
from .style import colors, figure, save
from .table2 import (PAPER_EPOCHS, PAPER_TABLE2, TABLE_NOTE, TESTS, RunSummary, describe_setup,
                     format_value, label_runs, read_run, read_sweep, table2, table2_markdown,
                     write_table2)
from .walk_study_figures import write_study_figures
from .walking_noise_figures import (NOISE_NAMES, accuracy_vs_sigma, activation_histogram,
                                    midpoints_plot, weight_stats_plot)

__all__ = [
    "style", "colors", "figure", "save",
    "PAPER_TABLE2", "PAPER_EPOCHS", "TESTS", "TABLE_NOTE", "RunSummary", "read_run",
    "read_sweep", "label_runs", "table2", "table2_markdown", "write_table2", "format_value",
    "describe_setup",
    "DISTORTIONS", "training_curves", "sign_distance_plot", "correlation_plot", "sweep_plot",
    "power_histogram_plot", "per_layer_plot",
    "write_study_figures",
    "NOISE_NAMES", "accuracy_vs_sigma", "midpoints_plot", "activation_histogram",
    "weight_stats_plot",
    "cross_heatmap",
    "Report", "CAPTIONS", "REPORT_MARKER", "make_report",
]
