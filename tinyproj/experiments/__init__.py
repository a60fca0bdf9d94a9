"""Experiments built on the runs, robustness and Walking Noise: the cross-robustness table
(both papers in one table) and the demo.

Does robustness learned against one perturbation carry over to another? Rows are training
regimes of Merolla et al. (Algorithm 1 with a projection and clipping) and of Walking Noise
(noisy training); columns are test perturbations of both (weight distortions, activation
noise); each cell is a midpoint. This package stands on ``runs``, ``robustness`` and
``walking_noise`` and only uses their public names; neither paper's core imports it.

One idea per file:

- ``cross_data.py``     CrossData: the images every regime is trained and tested on
- ``regimes.py``        Regime (a row), DEFAULT_REGIMES, train_regime(s)
- ``perturbations.py``  Perturbation (a column), default_perturbations
- ``cells.py``          Cell: one midpoint, measured with each paper's protocol
- ``cross_table.py``    CrossTable and cross_robustness: every regime under every perturbation
- ``cross_files.py``    the table as CSV and Markdown
- ``demo.py``           ``tinyproj demo``: a few CIFAR-10 presets trained briefly, side by
                        side (``from tinyproj.experiments.demo import run_demo``)

Example::

    from tinyproj import experiments as ex
    data = ex.load_data("mnist", data_dir="/path/to/datasets")
    models = ex.train_regimes(ex.DEFAULT_REGIMES, data, epochs=5, out_dir="runs/cross")
    table = ex.cross_robustness(models, ex.default_perturbations(), data)
    ex.write_cross_table(table, "runs/cross")      # cross_robustness.csv and .md

Its heat map is :func:`tinyproj.reporting.cross_heatmap`.
"""
from .cells import Cell, format_cell, measure_cell
from .cross_data import CrossData, load_data
from .cross_files import CROSS_FILES, cross_csv, cross_markdown, cross_rows, write_cross_table
from .cross_table import CrossTable, cross_robustness
from .perturbations import Perturbation, default_perturbations
from .regimes import DEFAULT_REGIMES, REGIME_MARKER, Regime, train_regime, train_regimes

__all__ = [
    "CrossData", "load_data",
    "Regime", "DEFAULT_REGIMES", "REGIME_MARKER", "train_regime", "train_regimes",
    "Perturbation", "default_perturbations",
    "Cell", "measure_cell", "format_cell",
    "CrossTable", "cross_robustness",
    "CROSS_FILES", "cross_rows", "cross_csv", "cross_markdown", "write_cross_table",
]
