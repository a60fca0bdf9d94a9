"""Walking Noise (Borras, Klein, Fröning; docs/papers.md part 2): noise on activations, site by site.

One idea per file:

- ``noise.py``          NoiseSpec (additive / multiplicative / combined in either order,
                        when on, repeats at the network or per site), parse_noise,
                        apply_noise, the differentiable Noise op
- ``sites.py``          NoisyModel: a noise site after every operation of a flat Sequential
                        (mlp_tfc 8 sites, 11 with BN; lenet5 12, 16 with BN)
- ``walk.py``           walk(): accuracy per (site, σ) with evaluation noise, batch-norm
                        protocols, every row stamped with its network
- ``walk_points.py``    the grid points: σ lists, sites, one generator per point
- ``walk_store.py``     the rows' files: a result grid of ``runs/grid.py`` (keys, resume,
                        shards, another network's rows refused)
- ``tables.py``         μ per site and accuracy per point over seeds, as CSV
- ``grids.py``          the authors' σ grids as named presets (quarter decades, linear
                        multiplicative with σ = 0, log to 1e10/1e16): grid_sigmas(name)
- ``protocol.py``       train_at_sigma(): the authors' noisy training, one network per
                        (site, σ, seed) trained and tested at that σ; spread over seeds
- ``midpoint.py``       the midpoint noise level μ (halfway from max accuracy to chance,
                        interpolated on log σ; the rule: ``runs/midpoint.py``) and its
                        spread over seeds
- ``noisy_training.py`` train_noisy(): a training set-up with noise at sites, optional
                        weight clamp, dynamics per epoch
- ``setups.py``         the training set-ups by name: "authors" (default, resolved per
                        model and dataset) and "legacy" (tinyproj's earlier one)
- ``dynamics.py``       weight statistics and self-binarization measures
- ``study.py``          a study in a folder of its own, as ``tinyproj walk`` runs it:
                        clean_study, noisy_study, train_at_sigma_study (Training, Scoring
                        explicit), the tables written, a StudyResult returned
- ``study_folder.py``   the study folder: checked (walk's own files only), marked
                        (``.tinyproj-walk``), the names walk writes there
- ``study_networks.py`` Training; the clean network per seed (OUT/model...), trained or read
                        back; the sites without data (skeleton, run_skeleton)
- ``study_noisy_networks.py`` the network per (seed, site) trained with noise there, its
                        dynamics rows stamped with its fingerprint
- ``study_tables.py``   OUT/midpoints.csv and OUT/walk-points.csv from a study's rows

Example::

    from tinyproj import walking_noise as wn
    from tinyproj.runs.training import load_run

    run = load_run("runs/mlp")                                   # a trained mlp_tfc
    rows = wn.walk(run.model, run.train, run.test, "additive", [0.01, 0.1, 1, 10],
                   sites="each", out_file="runs/mlp/walk.jsonl")
    table = wn.midpoints_table(rows)                             # μ per site
    wn.write_midpoints_csv("runs/mlp/midpoints.csv", table)

The whole study of ``tinyproj walk`` (networks trained, resumable, shardable, its folder
checked and marked, midpoints.csv and walk-points.csv written)::

    from tinyproj import reporting
    done = wn.clean_study("runs/wn", "additive", [0.01, 0.1, 1, 10],
                          training=wn.Training(model="mlp_tfc", dataset="mnist", epochs=5))
    reporting.write_study_figures(done.rows, done.table, "runs/wn")   # its two PNGs

From the shell: ``tinyproj walk --model mlp_tfc --dataset mnist --out RUN_DIR``.
"""
from .dynamics import (binarization, bimodality_coefficient, dynamics_row, layer_weights,
                       share_near_max, weight_stats)
from .midpoint import Midpoint, MidpointSummary, midpoint_sigma, summarize_midpoints
from .noise import (KINDS, ORDERS, REPEAT_AT, Noise, NoiseSpec, apply_noise, draw_noise, noise,
                    noise_mean, parse_noise)
from .noisy_training import build_walk_model, clamp_weights, train_noisy
from .setups import DEFAULT_SETUP, SETUPS, setup_settings
from .sites import NoisyModel, Site, model_sites
from .grids import GRIDS, grid_sigmas
from .protocol import PROTOCOLS, train_at_sigma
from .tables import (MIDPOINT_COLUMNS, SAME_SIGMA, midpoints_table, point_spread,
                     write_midpoints_csv, write_point_spread_csv)
from .walk import BN_PROTOCOLS, point_settings, walk
from .walk_points import check_sigmas, default_sigmas, point_generators, walk_sites
from .walk_store import read_walk, row_key, walk_files, walk_grid, walk_path
from .study_folder import WALK_MARK, check_out_folder, is_walk_folder
from .study_networks import Training
from .study_tables import write_study_tables
from .study import Scoring, StudyResult, clean_study, noisy_study, train_at_sigma_study

__all__ = [
    "KINDS", "ORDERS", "REPEAT_AT", "NoiseSpec", "parse_noise", "apply_noise", "draw_noise",
    "Noise", "noise", "noise_mean",
    "Site", "NoisyModel", "model_sites",
    "Midpoint", "MidpointSummary", "midpoint_sigma", "summarize_midpoints",
    "walk", "BN_PROTOCOLS", "check_sigmas", "default_sigmas", "walk_sites", "point_generators",
    "row_key", "walk_path", "walk_files", "walk_grid", "read_walk", "midpoints_table",
    "write_midpoints_csv", "MIDPOINT_COLUMNS",
    "train_noisy", "clamp_weights", "build_walk_model", "SETUPS", "DEFAULT_SETUP",
    "setup_settings",
    "weight_stats", "binarization", "share_near_max", "bimodality_coefficient",
    "layer_weights", "dynamics_row",
    "GRIDS", "grid_sigmas", "PROTOCOLS", "train_at_sigma", "point_spread",
    "write_point_spread_csv", "SAME_SIGMA", "point_settings",
    "Training", "Scoring", "StudyResult", "clean_study", "noisy_study", "train_at_sigma_study",
    "WALK_MARK", "check_out_folder", "is_walk_folder", "write_study_tables",
]
