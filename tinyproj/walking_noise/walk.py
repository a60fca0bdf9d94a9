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
    ...tags                      extra fields given by the caller (e.g. train_sigma)
    seconds                      time taken by the point

    network                      fingerprint of the network walked (runs.fingerprint)

Reproducible draws. Each grid point draws from its own generator, seeded from (seed, noise,
site, σ) only (``runs.grid.seed_words``), so a point gives the same accuracy whether it runs
alone, in a shard or in a full walk, and merged shards equal one unsharded walk number for
number.

Files: a walk is a result grid (:mod:`tinyproj.runs.grid`)::

    OUT/walk.jsonl                     with ``out_file``: every finished point, one line each
    OUT/walk.shard-<i>-of-<n>.jsonl    shard i of n (``shard="i/n"``, 0-based), beside it
    OUT/replaced/<time>/               the files a restart moved aside

Several processes may append to one file at once. Running a walk again skips every point
already on file (resume): a point is "the same" when all its settings agree (everything
except the measured fields). A point on file that was measured on *another network* (another
run walked into the same file, a retrained model) is refused, never reused: a UserError says
to write elsewhere or to restart (``restart=True`` / ``--restart`` moves the old files aside).
One file may hold walks of several networks (one per seed, or per site in noisy training);
each row's ``network`` says which. :func:`read_walk` merges the files unchecked; ``walk(...,
compute=False)`` returns the finished points of a call, checked against its network.
"""
from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path

from .. import backend
from ..errors import UserError
from ..runs.evaluation import error_rate, reestimate_batchnorm, saved_batchnorm_stats
from ..runs.files import atomic_write_text
from ..runs.fingerprint import network_fingerprint
from ..runs.grid import Grid, grid_files, parse_shard, seed_words, shard_path, shard_points
from ..runs.progress import progress_bar
from ..tensor import no_grad
from .midpoint import midpoint_sigma, summarize_midpoints
from .noise import NoiseSpec, parse_noise
from .sites import NO_BN_NAMES, NoisyModel

__all__ = ["walk", "point_settings", "SAME_SIGMA", "BN_PROTOCOLS", "check_sigmas",
           "default_sigmas", "walk_sites",
           "point_generators", "row_key", "walk_path", "walk_files", "walk_grid", "read_walk",
           "midpoints_table", "write_midpoints_csv", "MIDPOINT_COLUMNS", "MEASURED_FIELDS"]

BN_PROTOCOLS = ("running", "reestimate")

MEASURED_FIELDS = ("accuracy", "n_test", "chance", "seconds", "site_name", "site_kind",
                   "network")
"""Row fields that are results, not settings: every other field is part of a point's key.
(``network`` is checked instead: a point measured on another network is refused.)"""

MIDPOINT_COLUMNS = ("site", "site_name", "noise", "midpoint_sigma", "beyond_grid",
                    "max_accuracy")
"""The first columns of midpoints.csv (more follow: ratio, bn_protocol, repeats, seeds, ...)."""


# ---------------------------------------------------------------------------
# Grids
# ---------------------------------------------------------------------------
def check_sigmas(sigmas, allow_zero: bool = False) -> list:
    """The σ grid as floats in the given order, repeats dropped; each must be finite and > 0
    (>= 0 with ``allow_zero``: the linear grids of ``grids.py``, which start at σ = 0).

    Accepts a list or a comma-separated string ("0.01,0.1,1,10").
    """
    if isinstance(sigmas, str):
        sigmas = [s for s in (p.strip() for p in sigmas.split(",")) if s]
    if sigmas is None or isinstance(sigmas, (int, float)):
        sigmas = [] if sigmas is None else [sigmas]
    out = []
    for s in sigmas:
        try:
            value = float(s)
        except (TypeError, ValueError):
            raise ValueError(f"sigma {s!r} is not a number; give noise levels such as "
                             "0.01,0.1,1,10") from None
        if not (math.isfinite(value) and (value > 0 or (allow_zero and value == 0))):
            if allow_zero:
                raise ValueError(f"every sigma must be a finite number >= 0 (σ = 0 is the "
                                 f"clean point of a linear grid), got {s!r}")
            raise ValueError(f"every sigma must be a finite number > 0 (the walk and its "
                             f"midpoint live on a log scale; σ = 0 only on a linear grid: "
                             f"walk(..., allow_zero=True)), got {s!r}")
        if value not in out:
            out.append(value)
    if not out:
        raise ValueError("no sigmas to walk; give at least one noise level > 0, e.g. "
                         "0.01,0.1,1,10")
    return out


def default_sigmas(kind="additive") -> list:
    """A log grid in half-decade steps: additive 1e-2 … 1e10 (Walking Noise's range),
    multiplicative 1e-3 … 1e3, combined 1e-2 … 1e4."""
    kind = parse_noise(kind).kind if not isinstance(kind, NoiseSpec) else kind.kind
    lo, hi = {"additive": (-2, 10), "multiplicative": (-3, 3), "combined": (-2, 4)}[kind]
    return [float(f"{10 ** (k / 2):.6g}") for k in range(2 * lo, 2 * hi + 1)]


def walk_sites(noisy: NoisyModel, sites="each") -> list:
    """Site indices to walk: "each" = every site one at a time, "all" = [-1] (every site at
    once, global noise), "all-no-bn" = [-2] (global noise without the sites after batch norm,
    the authors' BN-noNoise), or a list of indices/names (each one at a time; "all" and
    "all-no-bn" may be in it, also as -1 and -2: in a list these are the global points, not
    the last sites)."""
    if isinstance(sites, str) and sites.strip().lower() == "each":
        return [s.index for s in noisy.sites]
    if isinstance(sites, str) and sites.strip().lower() == "all":
        return [-1]
    if isinstance(sites, str) and sites.strip().lower() in NO_BN_NAMES:
        return [-2]
    if sites is None:
        raise ValueError("sites: give 'each', 'all' or a list of site names/indices")
    if isinstance(sites, (int, str)):
        sites = [sites]
    out = []
    for s in sites:
        if (isinstance(s, str) and s.strip().lower() == "all") or (
                isinstance(s, int) and not isinstance(s, bool) and s == -1):
            index = -1
        elif (isinstance(s, str) and s.strip().lower() in NO_BN_NAMES) or (
                isinstance(s, int) and not isinstance(s, bool) and s == -2):
            index = -2
        else:
            index = noisy.site(s).index
        if index not in out:
            out.append(index)
    return out


def point_generators(seed: int, spec: NoiseSpec, site: int, sigma: float):
    """``(noise_rng, bn_rng)`` of one grid point, seeded from (seed, noise, site, σ) only."""
    key = f"{spec.label}|repeats={spec.repeats}|site={site}|sigma={float(sigma)!r}"
    if spec.repeat_at != "network":          # only then: the draws of older walks stay
        key += f"|at={spec.repeat_at}|n={spec.site_repeats}"
    return (backend.make_rng([seed, 11, *seed_words(key)]),
            backend.make_rng([seed, 12, *seed_words(key)]))


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------
def _key_value(value):
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value


def row_key(row: dict) -> tuple:
    """A row's point: every field except :data:`MEASURED_FIELDS`, σ as a float."""
    return tuple(sorted((k, float(v) if k == "sigma" else _key_value(v))
                        for k, v in row.items() if k not in MEASURED_FIELDS))


def walk_path(out_file, shard=None) -> Path:
    """``out_file`` itself, or for shard (i, n) ``<stem>.shard-<i>-of-<n><suffix>`` beside it."""
    return shard_path(out_file, shard)


def walk_files(out_file) -> list:
    """The existing files of a walk: ``out_file`` first, then its shard files by (n, i)."""
    return grid_files(out_file)


def walk_grid(out_file, shard=None) -> Grid:
    """The :class:`~tinyproj.runs.grid.Grid` of a walk file (its shards beside it)."""
    out_file = Path(out_file)
    fix = (f"Write this walk elsewhere (another --out / out_file), or run again with --restart "
           f"(restart=True), which moves the walk's files to "
           f"{out_file.parent / 'replaced'}/<time>/ (nothing is deleted).")
    return Grid(out_file, row_key, shard=shard, fix=fix, network_source="the network walked now")


def _sort_key(row):
    settings = tuple((k, str(v)) for k, v in row_key(row) if k not in ("site", "sigma"))
    return (settings, int(row["site"]), float(row["sigma"]))


def read_walk(out_file) -> list:
    """Every row of a walk (``out_file`` and its shard files), one per point, sorted by
    settings, then site (-1 = all first), then σ. [] when there is no file.

    Unchecked: the rows may come from several networks (their ``network`` field says which).
    To get the points of one walk checked against its network, use ``walk(..., compute=False)``.
    """
    return sorted(walk_grid(out_file).rows(), key=_sort_key)


# ---------------------------------------------------------------------------
# The walk
# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
# Midpoints per site
# ---------------------------------------------------------------------------
_NOT_GROUP = set(MEASURED_FIELDS) | {"site", "sigma", "seed"}

SAME_SIGMA = "sigma"
"""The ``train_sigma`` of a midpoints-table entry whose networks were each trained at the σ
they were tested at (the train-at-σ protocol, ``protocol.py``)."""


def _group_settings(row) -> tuple:
    """A row's settings without site, σ and seed; a ``train_sigma`` equal to the row's σ
    reads as :data:`SAME_SIGMA`, so that the networks of the train-at-σ protocol (one per σ)
    form one curve."""
    out = []
    for k, v in row.items():
        if k in _NOT_GROUP:
            continue
        if k == "train_sigma" and v is not None and float(v) == float(row["sigma"]):
            v = SAME_SIGMA
        out.append((k, _key_value(v)))
    return tuple(sorted(out))


def midpoints_table(rows, chance: float | None = None) -> list:
    """One dict per (settings, site): the midpoint μ, over seeds when there are several.

    rows: walk rows (several seeds, noise kinds or protocols may be mixed: they are grouped
    by every setting except the seed; rows trained at the σ they were tested at form one
    group per site, with ``train_sigma`` "sigma"). chance: the chance accuracy (default: the rows'
    ``chance``, else 0.1). Each dict has the :data:`MIDPOINT_COLUMNS` —

        midpoint_sigma  μ of the one seed, or the geometric mean over the seeds that cross
        beyond_grid     True when (some) seed's accuracy stays above the threshold up to the
                        largest σ (then midpoint_sigma is over the other seeds, or None)
        max_accuracy    the maximum accuracy of the walk (mean over seeds)

    — then ratio, bn_protocol, repeats, the tags, n_seeds, n_midpoints, n_beyond,
    midpoint_log10_std (decades, ddof 1), seeds and midpoints_per_seed.
    """
    groups = {}
    for row in rows:
        settings = _group_settings(row)
        site = int(row["site"])
        groups.setdefault((settings, site), {}).setdefault(int(row.get("seed", 0)), []).append(row)
    table, settings_order = [], {}
    for (settings, site), by_seed in groups.items():
        settings_order.setdefault(settings, len(settings_order))
        first = next(iter(by_seed.values()))[0]
        mids = []
        for seed in sorted(by_seed):
            seed_rows = by_seed[seed]
            c = chance if chance is not None else float(seed_rows[0].get("chance", 0.1))
            mids.append(midpoint_sigma([r["sigma"] for r in seed_rows],
                                       [r["accuracy"] for r in seed_rows], c))
        summary = summarize_midpoints(mids)
        entry = {"site": site, "site_name": first.get("site_name"), "noise": first.get("noise"),
                 "midpoint_sigma": summary.geo_mean if len(mids) > 1 else mids[0].sigma,
                 "beyond_grid": summary.n_beyond > 0,
                 "max_accuracy": math.fsum(m.max_accuracy for m in mids) / len(mids)}
        entry.update({k: first.get(k) for k in first if k not in _NOT_GROUP and k not in entry})
        if dict(settings).get("train_sigma") == SAME_SIGMA:
            entry["train_sigma"] = SAME_SIGMA
        entry.update(n_seeds=len(mids), n_midpoints=summary.n, n_beyond=summary.n_beyond,
                     midpoint_log10_std=summary.log10_std,
                     threshold=mids[0].threshold if len(mids) == 1 else None,
                     seeds=sorted(by_seed), midpoints_per_seed=[m.sigma for m in mids])
        table.append((settings_order[settings], site, entry))
    table.sort(key=lambda t: (t[0], t[1]))      # settings in first-seen order, then site
    return [entry for _, _, entry in table]


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ";".join(_csv_value(v) or "none" for v in value)
    return str(value)


def write_midpoints_csv(path, table) -> Path:
    """Write :func:`midpoints_table`'s dicts as CSV (atomically); returns the path.

    Columns: site, site_name, noise, midpoint_sigma, beyond_grid, max_accuracy, then every
    other key in first-seen order. Empty cells are None; lists (seeds, midpoints_per_seed)
    are joined with ';' ("none" for a seed without a midpoint).
    """
    columns = list(MIDPOINT_COLUMNS)
    for entry in table:
        for k in entry:
            if k not in columns:
                columns.append(k)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for entry in table:
        writer.writerow([_csv_value(entry.get(k)) for k in columns])
    return atomic_write_text(path, buf.getvalue())
