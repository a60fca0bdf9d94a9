"""Robustness to weight distortions: Merolla et al.'s test protocol, sweeps, bits per weight.

One idea per file:

- ``scoring.py``   score a trained model under a distortion, K random draws, batch norm
                   re-estimated per draw, weights and statistics restored bitwise;
                   optionally only some layers distorted (``distorted_weights``)
- ``bn_estimate.py`` batch-norm re-estimation per draw: exact float64 statistics of the
                   whole training set (or N images) in a few large passes (default), or the
                   old average of 20 batches of 50
- ``bits.py``      bits per weight ½·log2(1 + Q_w/Q_n), per layer and for the network
- ``sweeps.py``    error against AddNorm σ / MultUnif γ / Power β (Figures 2A-C), the
                   default grids, per-layer sweeps; sweep files (a result grid of
                   ``runs/grid.py``: resume, ``--shard i/n``, merging, network fingerprints)
- ``te_scores.py`` Table 2's Te-None/Sign/Round over K draws, mean ± std
                   (``RUN/sweeps/table2.jsonl``; ``tinyproj sweep RUN --distortion table2``)
- ``jobs.py``      the shards of a sweep in parallel local processes (``--jobs N``)
- ``midpoint.py``  per layer, the level where the error is halfway from clean to chance
                   (the crossing rule itself: ``runs/midpoint.py``)
- ``analysis.py``  layer-wise analyses: distance to Sign, activity correlation, Power
                   histograms (Figures 1C, 1D, 2D)

Example::

    from tinyproj import robustness
    from tinyproj.runs.training import load_run

    run = load_run("runs/tr-sign-c")
    s = robustness.score_distortion(run.model, run.train, run.test, "addnorm:sigma=0.55",
                                    draws=5)
    s.mean, s.std, s.errors
    rows = robustness.run_sweep(run, "addnorm", draws=5)       # .../sweeps/addnorm.jsonl
    layers = robustness.run_sweep(run, "addnorm", per_layer=True)  # .../layers-addnorm.jsonl
    robustness.midpoints(layers)                               # {layer: Midpoint}
    robustness.merge_sweep_files("runs/tr-sign-c", "addnorm")  # all shards together

From the shell:
``tinyproj sweep RUN_DIR --distortion addnorm [--per-layer] [--shard i/n | --jobs N]``.
"""
from ..runs.grid import parse_shard, shard_points
from . import analysis
from .bits import (BitsReport, addnorm_bits, bits_report, empirical_noise_power, finite_or_none,
                   multunif_bits, snr_bits)
from .bn_estimate import BNProtocol, reestimate_exact
from .jobs import run_sweep_jobs
from .midpoint import Midpoint, midpoint_level, midpoints
from .scoring import (DEFAULT_DRAWS, Score, distorted_weights, draw_generators, score_distortion,
                      select_weights)
from .sweeps import (DISTORTIONS, SETTINGS_KEYS, Distortion, check_levels, get_distortion,
                     grid_points, merge_sweep_files, run_sweep, sweep_files, sweep_grid,
                     sweep_name, sweep_path)

__all__ = [
    "analysis", "BNProtocol", "reestimate_exact",
    "Score", "score_distortion", "distorted_weights", "select_weights", "draw_generators",
    "DEFAULT_DRAWS",
    "BitsReport", "snr_bits", "bits_report", "addnorm_bits", "multunif_bits",
    "empirical_noise_power", "finite_or_none",
    "Distortion", "DISTORTIONS", "get_distortion", "check_levels", "sweep_name", "grid_points",
    "run_sweep", "run_sweep_jobs",
    "merge_sweep_files", "parse_shard", "shard_points", "sweep_files", "sweep_path",
    "sweep_grid", "SETTINGS_KEYS",
    "Midpoint", "midpoint_level", "midpoints",
]
