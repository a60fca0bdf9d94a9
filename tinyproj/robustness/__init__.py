"""Robustness to weight distortions: Merolla et al.'s test protocol, sweeps, bits per weight.

One idea per file:

- ``scoring.py``   score a trained model under a distortion, K random draws, batch norm
                   re-estimated per draw, weights and statistics restored bitwise;
                   optionally only some layers distorted (``distorted_weights``)
- ``bits.py``      bits per weight ½·log2(1 + Q_w/Q_n), per layer and for the network
- ``sweeps.py``    error against AddNorm σ / MultUnif γ / Power β (Figures 2A-C), the
                   default grids, resumable sweep files, layer-by-layer walks
- ``shards.py``    sweep file names, ``--shard i/n``, merging shard files
- ``jobs.py``      the shards of a sweep in parallel local processes (``--jobs N``)
- ``midpoint.py``  per layer, the level where the error is halfway from clean to chance

Example::

    from tinyproj import robustness
    from tinyproj.runs.training import load_run

    run = load_run("runs/tr-sign-c")
    s = robustness.score_distortion(run.model, run.train, run.test, "addnorm:sigma=0.55",
                                    draws=5)
    s.mean, s.std, s.errors
    rows = robustness.run_sweep(run, "addnorm", draws=5)       # .../sweeps/addnorm.jsonl
    walk = robustness.run_sweep(run, "addnorm", walk=True)     # .../walk-addnorm.jsonl
    robustness.midpoints(walk)                                 # {layer: Midpoint}
    robustness.merge_sweep_files("runs/tr-sign-c", "addnorm")  # all shards together

From the shell: ``tinyproj sweep RUN_DIR --distortion addnorm [--walk] [--shard i/n | --jobs N]``.
"""
from .bits import (BitsReport, addnorm_bits, bits_report, empirical_noise_power, finite_or_none,
                   multunif_bits, snr_bits)
from .jobs import run_sweep_jobs
from .midpoint import Midpoint, midpoint_level, midpoints
from .scoring import (DEFAULT_DRAWS, Score, distorted_weights, draw_generators, score_distortion,
                      select_weights)
from .shards import merge_sweep_files, parse_shard, shard_points, sweep_files, sweep_path
from .sweeps import (DISTORTIONS, Distortion, check_levels, get_distortion, grid_points,
                     run_sweep, sweep_name)

__all__ = [
    "Score", "score_distortion", "distorted_weights", "select_weights", "draw_generators",
    "DEFAULT_DRAWS",
    "BitsReport", "snr_bits", "bits_report", "addnorm_bits", "multunif_bits",
    "empirical_noise_power", "finite_or_none",
    "Distortion", "DISTORTIONS", "get_distortion", "check_levels", "sweep_name", "grid_points",
    "run_sweep", "run_sweep_jobs",
    "merge_sweep_files", "parse_shard", "shard_points", "sweep_files", "sweep_path",
    "Midpoint", "midpoint_level", "midpoints",
]
