"""Walking the noise through a trained network: accuracy per (site, σ), resumable and shardable.

A walk evaluates a *trained* network with noise switched on at evaluation only::

    for each site k (one at a time: "each"; or every site at once: "all"):
        for each σ of a log grid (1e-2, 1e-1, ..., 1e10):
            accuracy on the test set with noise N(σ) at site k        -> one row

and the midpoint μ per site (``midpoint.py``) sums the walk up: the σ at which the site's
accuracy has fallen halfway to chance. Noisy *training* is ``noisy_training.py``; the
authors' noisy-training curve (one network per σ, trained and tested at that σ) is
``protocol.py``, whose rows are walk rows of one point each.

Batch norm under noise (``bn_protocol``). The activations' statistics change under noise.
``"running"`` (Walking Noise) keeps the running statistics of training as they are;
``"reestimate"`` (Merolla et al.'s protocol for weight distortions) recomputes them from
``bn_batches`` training batches *with the noise on*, scores the test set, and restores the
trained statistics exactly afterwards.

Rows (one JSON object per grid point)::

    site, site_name, site_kind   site index (-1 = "all": every site at once; -2 =
                                 "all-no-bn": every site but those after batch norm), name, kind
    noise, ratio, sigma          kind, combined ratio (null otherwise), σ (the amplitude)
    order                        combined add-then-multiply only: "add-mul"
    repeat_at, site_repeats      per-site averaging only: "site", and N per site if given
    accuracy, n_test, chance     fraction correct on the n_test first test images; 1/classes
    bn_protocol, bn_batches      "running" (bn_batches 0) or "reestimate"
    repeats, seed, test_subset   N noisy passes averaged; the seed of the draws
    ...tags                      extra fields given by the caller (e.g. train_sigma, setup)
    seconds                      time taken by the point

    network                      fingerprint of the network walked (runs.fingerprint)

Reproducible draws. Each grid point draws from its own generator, seeded from (seed, noise,
site, σ) only (``runs.grid.seed_words``), so a point gives the same accuracy whether it runs
alone, in a shard or in a full walk, and merged shards equal one unsharded walk number for
number.

One walk, one idea per file::

    walk.py          walk(): the loop above, one row per grid point
    walk_points.py   the grid points: σ lists, sites, each point's generators
    walk_store.py    the rows' files: keys, resume, shards, refusal of another network's rows
                     (a result grid of runs/grid.py); read_walk merges the files unchecked,
                     ``walk(..., compute=False)`` returns a call's points checked
    tables.py        μ per site and accuracy per point over seeds (midpoints.csv,
                     walk-points.csv)

The names of those files are importable from here too (``walk.row_key``, ...).
"""
from __future__ import annotations

import time

from ..errors import UserError
from ..runs.evaluation import error_rate, reestimate_batchnorm, saved_batchnorm_stats
from ..runs.fingerprint import network_fingerprint
from ..runs.grid import parse_shard, shard_points
from ..runs.progress import progress_bar
from ..tensor import no_grad
from .noise import NoiseSpec, parse_noise
from .sites import NoisyModel
from .tables import MIDPOINT_COLUMNS, SAME_SIGMA, midpoints_table, write_midpoints_csv
from .walk_points import check_sigmas, default_sigmas, point_generators, walk_sites
from .walk_store import MEASURED_FIELDS, read_walk, row_key, walk_files, walk_grid, walk_path

__all__ = ["walk", "point_settings", "SAME_SIGMA", "BN_PROTOCOLS", "check_sigmas",
           "default_sigmas", "walk_sites",
           "point_generators", "row_key", "walk_path", "walk_files", "walk_grid", "read_walk",
           "midpoints_table", "write_midpoints_csv", "MIDPOINT_COLUMNS", "MEASURED_FIELDS"]

BN_PROTOCOLS = ("running", "reestimate")
"""``bn_protocol``: keep the trained batch-norm statistics (Walking Noise), or re-estimate
them under the noise (Merolla et al.)."""


def point_settings(spec: NoiseSpec, site: int, sigma: float, *, bn_protocol="running",
                   bn_batches: int = 20, seed: int = 0, test_subset=None,
                   tags: dict | None = None) -> dict:
    """The settings of one grid point as its row holds them (the row's key: ``row_key``).

    spec: the walk's noise (kind, ratio, order, repeats, repeat_at, site_repeats; its σ is
    not used). The fields of a variant (order add-mul, repeat_at site, site_repeats) are
    there only when not the default, so that the rows of older walks keep their keys.
    """
    variant = {}
    if spec.kind == "combined" and spec.order != "mul-add":
        variant["order"] = spec.order
    if spec.repeat_at != "network":
        variant["repeat_at"] = spec.repeat_at
        if spec.site_repeats is not None:
            variant["site_repeats"] = list(spec.site_repeats)
    return {"site": site, "noise": spec.kind,
            "ratio": spec.ratio if spec.kind == "combined" else None, "sigma": sigma,
            "bn_protocol": bn_protocol,
            "bn_batches": bn_batches if bn_protocol == "reestimate" else 0,
            "repeats": spec.repeats, "seed": seed, "test_subset": test_subset, **variant,
            **(tags or {})}


def _check_int(value, name, low, hint=""):
    if value is None and name == "test_subset":
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}{hint}; got {value!r}")
    return value


def _num_classes(model, source) -> int:
    x, _ = source.batch([0])
    was = model.training
    model.eval()
    with no_grad():
        n = int(model(x).data.shape[1])
    model.train(was)
    return n


def walk(model_or_noisy, train_source, test_source, noise_kind, sigmas, sites="each",
         bn_protocol: str = "running", repeats: int = 1, seed: int = 0,
         test_subset: int | None = None, bn_batches: int = 20, out_file=None, shard=None,
         progress: bool = True, *, bn_batch_size: int = 50, eval_batch_size: int = 500,
         tags: dict | None = None, restart: bool = False, out_shard=None,
         compute: bool = True, repeat_at: str | None = None,
         site_repeats=None, allow_zero: bool = False) -> list:
    """Accuracy of a trained network with evaluation noise at each (site, σ); returns rows.

    model_or_noisy: a flat Sequential (``tinyproj.models``) or a :class:`NoisyModel` (its noise
    setting is restored afterwards). train_source: training data for ``bn_protocol=
    "reestimate"`` (may be None with "running"); test_source: what is scored (``len`` and
    ``.batch(idx)``). noise_kind: "additive" | "multiplicative" | "combined[:ratio=r]" or a
    NoiseSpec (its σ is replaced by each grid σ). sigmas: the grid (> 0). sites: "each" (every
    site, one at a time: the layer-wise walk), "all" (global noise at every site at once,
    row site -1) or a list of site names/indices (each one at a time; in a list, -1 or
    "all" is the global point, not the last site). bn_protocol:
    "running" | "reestimate" (module docstring). repeats: N noisy executions averaged per
    evaluation; repeat_at: "network" (rerun the network) or "site" (average N draws at each
    site, the authors' way; None: the spec's); site_repeats: one N per site (repeat_at
    "site"). allow_zero: σ = 0 may be on the grid (a linear grid; that point is clean).
    seed: of the per-point generators. test_subset: score the first N test images.
    bn_batches, bn_batch_size: the re-estimation's training batches. out_file: JSON lines
    file to append to and resume from (None: keep rows in memory only). shard: "i/n" — do grid
    points i, i+n, … of the (site, σ) grid (sites in model order, then σ as given), written
    to the shard's own file. tags: extra fields put into every row (they are part of a
    point's key). restart: move the walk's files (all shards) to ``replaced/<time>/`` first.
    out_shard: write to this shard's file, though doing every point of the call (for callers
    that shard over something else, e.g. the networks of noisy training). compute=False:
    measure nothing, return the points of the call that are on file.

    Every row is stamped with the fingerprint of the walked network; a point on file measured
    on another network is refused with a UserError (module docstring).

    Returns the rows of this call's grid points (those of the shard), in grid order, the
    ones found already done in the files included (compute=False: only those).
    """
    spec = parse_noise(noise_kind)
    sigmas = check_sigmas(sigmas, allow_zero=allow_zero)
    if bn_protocol not in BN_PROTOCOLS:
        raise ValueError(f"unknown bn_protocol {bn_protocol!r}; valid: 'running' (keep the "
                         "trained batch-norm statistics, Walking Noise) or 'reestimate' "
                         "(recompute them under the noise, Merolla et al.)")
    repeats = _check_int(repeats, "repeats", 1, " (noisy passes averaged)")
    seed = _check_int(seed, "seed", 0)
    test_subset = _check_int(test_subset, "test_subset", 1)
    bn_batches = _check_int(bn_batches, "bn_batches", 0)
    changes = {"repeat_at": repeat_at} if repeat_at is not None else {}
    if site_repeats is not None:
        changes.update(site_repeats=tuple(site_repeats), repeat_at="site")
    spec = spec.replace(sigma=0.0, train=False, eval=True, repeats=repeats, **changes)
    shard = parse_shard(shard)
    if isinstance(model_or_noisy, NoisyModel):
        noisy = model_or_noisy
        saved = (noisy.spec, noisy.active, noisy.rng)
    else:
        noisy, saved = NoisyModel(model_or_noisy, None), None
    if bn_protocol == "reestimate" and train_source is None and bn_batches > 0:
        raise ValueError("bn_protocol='reestimate' re-estimates batch norm on training "
                         "batches: pass train_source (or use bn_protocol='running')")
    tags = dict(tags or {})
    clash = set(tags) & {"site", "site_name", "site_kind", "noise", "ratio", "sigma", "order",
                         "repeat_at", "site_repeats",
                         "accuracy", "bn_protocol", "bn_batches", "repeats", "seed",
                         "test_subset", "n_test", "chance", "seconds", "network"}
    if clash:
        raise ValueError(f"tags may not redefine the row fields {sorted(clash)}")

    site_list = walk_sites(noisy, sites)
    mine = shard_points([(site, sigma) for site in site_list for sigma in sigmas], shard)

    def settings(site, sigma):
        return point_settings(spec, site, sigma, bn_protocol=bn_protocol,
                              bn_batches=bn_batches, seed=seed, test_subset=test_subset,
                              tags=tags)

    network = network_fingerprint(noisy.model.state_dict())
    keys = {row_key(settings(site, sigma)) for site, sigma in mine}
    done, grid = {}, None
    if out_file is not None:
        if restart and (shard is not None or out_shard is not None):
            raise UserError("restart moves every shard's file of the walk aside; restart once "
                            "without a shard, then start the shards")
        grid = walk_grid(out_file, shard if out_shard is None else parse_shard(out_shard))
        if restart:
            grid.move_aside()
        done = grid.finished(network, keys)          # refuses points of another network
    if not compute:
        return [done[k] for k in (row_key(settings(*p)) for p in mine) if k in done]
    n_test = len(test_source) if test_subset is None else min(test_subset, len(test_source))
    chance = 1.0 / _num_classes(noisy.model, test_source)
    results = []
    todo = [p for p in mine if row_key(settings(*p)) not in done]
    bar = progress_bar(progress, len(mine))
    bar.reset(f"walk {spec.label}{'' if shard is None else f' {shard[0]}/{shard[1]}'}",
              done=len(mine) - len(todo))
    was_training = noisy.training
    try:
        for site, sigma in mine:
            key = row_key(settings(site, sigma))
            if key in done:
                results.append(done[key])
                continue
            start = time.perf_counter()
            noise_rng, bn_rng = point_generators(seed, spec, site, sigma)
            where = {-1: "all", -2: "all-no-bn"}.get(site, [site])
            noisy.set_noise(spec.with_sigma(sigma), where, rng=noise_rng)
            if bn_protocol == "reestimate" and bn_batches > 0:
                with saved_batchnorm_stats(noisy.model):
                    reestimate_batchnorm(noisy, train_source, bn_batches, bn_batch_size, bn_rng)
                    error = error_rate(noisy, test_source, eval_batch_size, test_subset)
            else:
                error = error_rate(noisy, test_source, eval_batch_size, test_subset)
            s = noisy.sites[site] if site >= 0 else None
            row = settings(site, sigma)
            glob = "all" if site == -1 else "all-no-bn"
            row = {"site": site, "site_name": s.name if s else glob,
                   "site_kind": s.kind if s else glob, **row,
                   "accuracy": 1.0 - error, "n_test": n_test, "chance": chance,
                   "seconds": round(time.perf_counter() - start, 3)}
            if grid is not None:
                row = grid.append(row, network)      # one whole line, or nothing
            else:
                row["network"] = network
            done[key] = row
            results.append(row)
            bar.update(1, site=row["site_name"], sigma=f"{sigma:g}",
                       acc=f"{100 * row['accuracy']:.1f}%")
    finally:
        bar.close()
        noisy.train(was_training)
        if saved is None:
            noisy.clear_noise()
        else:
            noisy.__dict__.update(spec=saved[0], active=saved[1], rng=saved[2])
    return results
