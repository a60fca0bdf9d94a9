"""Sweeps: test error against the strength of a distortion (Figures 2A-C), resumable and shardable.

Three distortions, each with a default grid spanning the paper's range::

    addnorm   sigma  0 … 1      AddNorm(σ) = w + N(0, alpha·σ)     error grows with σ (Fig. 2A)
    multunif  gamma  1 … 0.05   MultUnif(γ) = w·U(γ, 1/γ)          error grows as γ falls (2B)
    power     beta   0 … 2      Power(β) = alpha·|w/alpha|^β·sign(w)  β = 1 exact, 0 = Sign (2C)

Level ``x`` of a distortion is the spec ``addnorm:sigma=x`` / ``multunif:gamma=x`` /
``power:beta=x``. Power is deterministic and gets one draw; the noisy ones get K draws.

A sweep is a result grid (:mod:`tinyproj.runs.grid`) of points (layer, level): layers in model
order (None = the whole network), then levels as given. Each point is scored with
``scoring.score_distortion`` (batch norm re-estimated per draw) and appended at once as one
JSON line. Files::

    RUN/sweeps/<name>.jsonl                     an unsharded sweep (several processes may
                                                append to it at once, e.g. one per --layer)
    RUN/sweeps/<name>.shard-<i>-of-<n>.jsonl    shard i of n: grid points i, i+n, i+2n, …
    RUN/sweeps/replaced/<time>/                 the files a --restart moved aside

with ``<name>`` = ``addnorm`` | ``multunif`` | ``power`` for the whole network and
``layers-<distortion>`` for per-layer sweeps (``per_layer=True`` / ``--per-layer``: every
weight layer in turn; ``layer=NAME`` / ``--layer NAME``: one), each distorting that layer
only, every other layer exact: the per-layer robustness profile.

Resume and merge: a sweep that is stopped resumes when run again with the same settings;
finished points are read back (all shards) and skipped. :func:`merge_sweep_files` reads the
unsharded file and every shard, one row per (layer, level), sorted. Every draw's random
numbers depend only on (seed, spec, layer, draw) (``scoring.draw_generators``), so merged
shards equal one unsharded run number for number. Rows of another network (the run was
retrained in its folder: another ``network`` fingerprint than ``checkpoint.npz``), rows
without a fingerprint and rows of other settings (:data:`SETTINGS_KEYS`) are refused with a
UserError that says to run again with ``--restart`` (which moves the old files aside to
``replaced/``, deleting nothing).

Fields of a row::

    distortion, param, level, spec       "addnorm", "sigma", 0.3, "addnorm:sigma=0.3"
    layer, layer_index                   distorted weight name and its position in model
                                         order; null for the whole network
    error_mean, error_std, errors, draws test error (fraction) over the K draws (std: ddof=1)
    n_test, chance_error                 test images scored; 1 − 1/classes
    seed, bn_batches, bn_batch_size,     the settings (equal across a sweep; checked on resume);
    bn_images, bn_pass_size,             bn_images/bn_pass_size: the exact re-estimation (images
    test_subset, checkpoint_step         read, images per pass; bn_batches null), or null with
                                         bn_batches × bn_batch_size: the old protocol (rows made
                                         before the exact one existed lack these two fields)
    bn_protocol                          "exact" | "batches" | "none", in words (not checked)
    bits_per_weight, bits_per_weight_pooled, bits_per_layer      addnorm, multunif (exact)
    bits_per_weight_empirical            addnorm, multunif: Q_n measured from the K draws
    seconds                              time taken by this point
    network                              fingerprint of the network scored (runs.fingerprint)

Bits are over the distorted layers only (``bits.py``); infinite bits (σ = 0, γ = 1) are null.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..runs.fingerprint import checkpoint_fingerprint, network_fingerprint
from ..runs.grid import Grid, grid_files, parse_shard, shard_path
from ..runs.progress import progress_bar
from ..tensor import no_grad
from . import bits as _bits
from . import scoring
from .bn_estimate import BNProtocol
from .scoring import DEFAULT_DRAWS, select_weights

__all__ = ["Distortion", "DISTORTIONS", "get_distortion", "check_levels", "sweep_name",
           "grid_points", "run_sweep", "DEFAULT_DRAWS", "SETTINGS_KEYS", "row_key",
           "sweep_path", "sweep_files", "sweep_grid", "merge_sweep_files"]

SETTINGS_KEYS = ("distortion", "seed", "bn_batches", "bn_batch_size", "bn_images",
                 "bn_pass_size", "test_subset", "checkpoint_step", "draws")
"""Row fields that must agree across all rows of one sweep (resuming or merging with other
settings would mix incomparable numbers)."""


@dataclass(frozen=True)
class Distortion:
    """One test distortion swept over a level.

    name, param   the projection and its parameter (``"addnorm"``, ``"sigma"``)
    levels        the default grid (the paper's range)
    identity      the level at which the weights are unchanged (the clean error)
    worse         the direction in which the distortion grows: "up" or "down" (midpoints)
    stochastic    True: K random draws per level; False: one draw
    """

    name: str
    param: str
    levels: tuple
    identity: float
    worse: str
    stochastic: bool

    def spec(self, level: float) -> str:
        """The spec of one level, e.g. ``addnorm:sigma=0.3`` (checked against the rule)."""
        from ..projections import Projection
        return Projection(self.name, **{self.param: float(level)}).spec


DISTORTIONS = {
    "addnorm": Distortion("addnorm", "sigma", (0.0, 0.1, 0.2, 0.3, 0.4, 0.55, 0.7, 0.85, 1.0),
                          0.0, "up", True),
    "multunif": Distortion("multunif", "gamma", (1.0, 0.9, 0.75, 0.5, 0.3, 0.2, 0.1, 0.05),
                           1.0, "down", True),
    "power": Distortion("power", "beta", (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0),
                        1.0, "down", False),
}
"""The sweepable distortions. For power both sides of β = 1 distort; "down" (towards Sign) is
the default side of a midpoint, ``midpoints(..., side="up")`` gives the other."""


def get_distortion(name) -> Distortion:
    """The :class:`Distortion` called ``name`` (ValueError listing the valid names otherwise)."""
    if isinstance(name, Distortion):
        return name
    key = str(name).strip().lower()
    if key not in DISTORTIONS:
        raise UserError(f"unknown distortion {name!r}; valid distortions: "
                         f"{', '.join(DISTORTIONS)} (AddNorm σ, MultUnif γ, Power β of Figure 2)")
    return DISTORTIONS[key]


def check_levels(distortion, levels=None) -> list:
    """The levels as floats (the default grid for None), repeats dropped, each checked.

    Raises ValueError for an empty grid or a level that breaks the parameter's rule
    (σ >= 0, 0 < γ <= 1, β >= 0).
    """
    dist = get_distortion(distortion)
    levels = dist.levels if levels is None else levels
    out = []
    for level in levels:
        try:
            value = float(level) + 0.0            # + 0.0 turns -0.0 into 0.0
        except (TypeError, ValueError):
            raise UserError(f"{dist.name}: level {level!r} is not a number",
                            flag="--levels") from None
        try:
            dist.spec(value)                      # raises with the rule when out of range
        except ValueError as err:                 # its first line: the rule, without the list
            rule = str(err).splitlines()[0].removeprefix(f"projection {dist.name!r}: ")
            raise UserError(f"{dist.name}: level {level!r}: {rule}", flag="--levels") from None
        if value not in out:
            out.append(value)
    if not out:
        raise UserError(f"{dist.name}: no levels to sweep (default grid: "
                        f"{', '.join(map(str, dist.levels))})", flag="--levels")
    return out


def sweep_name(distortion, per_layer: bool = False) -> str:
    """``addnorm`` for a whole-network sweep, ``layers-addnorm`` for a per-layer one."""
    name = get_distortion(distortion).name
    return f"layers-{name}" if per_layer else name


def grid_points(layers: list, levels: list) -> list:
    """``[(layer, level), ...]``: for each layer (None = all) every level, in the given orders."""
    return [(layer, level) for layer in layers for level in levels]


# ---------------------------------------------------------------------------------------------
# Sweep files
# ---------------------------------------------------------------------------------------------
def sweep_path(run_dir, name: str, shard=None) -> Path:
    """``RUN_DIR/sweeps/<name>.jsonl`` or, for shard (i, n), ``<name>.shard-<i>-of-<n>.jsonl``."""
    return shard_path(Path(run_dir) / "sweeps" / f"{name}.jsonl", shard)


def sweep_files(run_dir, name: str) -> list:
    """The existing files of sweep ``name``: the unsharded one first, then shards by (n, i)."""
    return grid_files(sweep_path(run_dir, name))


def row_key(row: dict) -> tuple:
    """A row's grid point: ``(layer or None, level)``."""
    return (row.get("layer"), float(row["level"]))


def _sort_key(row: dict):
    index = row.get("layer_index")
    return (-1 if row.get("layer") is None else (index if index is not None else 10**9),
            str(row.get("layer") or ""), float(row["level"]))


def sweep_grid(run_dir, name: str, shard=None, settings: dict | None = None) -> Grid:
    """The :class:`~tinyproj.runs.grid.Grid` of sweep ``name`` of a run folder.

    settings: the current values of :data:`SETTINGS_KEYS` (rows with others are refused);
    None: the rows must only agree among themselves (reading a finished sweep).
    """
    run_dir = Path(run_dir)
    fix = (f"Run the sweep again with --restart (in Python: restart=True): its files are moved to "
           f"{run_dir / 'sweeps' / 'replaced'}/<time>/ (nothing is deleted) and it starts afresh.")
    return Grid(sweep_path(run_dir, name), row_key, shard=shard, settings=settings,
                settings_keys=SETTINGS_KEYS, fix=fix,
                network_source=f"the network in {run_dir / 'checkpoint.npz'}")


def rows_network(run_dir, network, no_checkpoint: str):
    """The fingerprint that stored rows must carry: ``network`` as given, or for
    ``"checkpoint"`` that of ``RUN_DIR/checkpoint.npz`` — a UserError with the text
    ``no_checkpoint`` when that file is missing."""
    if network != "checkpoint":
        return network
    checkpoint = Path(run_dir) / "checkpoint.npz"
    if not checkpoint.is_file():
        raise UserError(no_checkpoint)
    return checkpoint_fingerprint(checkpoint)


def merge_sweep_files(run_dir, name: str, check_settings: bool = True,
                      network="checkpoint") -> list:
    """All rows of sweep ``name`` (unsharded file and shard files), one per (layer, level).

    A point found in several files is kept once (the first: the unsharded file, then the
    shards in order). Rows are sorted by layer (whole network first, then model order) and
    then by level, ascending. Returns [] when there is no file.

    Refused with a UserError (a ValueError): rows of another network than ``network`` —
    ``"checkpoint"`` (default): the fingerprint of ``RUN_DIR/checkpoint.npz``, i.e. rows from
    before a retraining; a fingerprint string; None: not checked — and, with
    ``check_settings``, rows that disagree on a setting of :data:`SETTINGS_KEYS`.
    """
    grid = sweep_grid(run_dir, name)
    if not check_settings:
        grid.settings_keys = ()
    if not grid.files():
        return []
    network = rows_network(run_dir, network,
                           f"{run_dir} has sweep files ({name}) but no checkpoint.npz, so "
                           "nothing tells which network they measured; put the run's "
                           "checkpoint back (or read them unchecked with network=None)")
    return sorted(grid.finished(network).values(), key=_sort_key)


# ---------------------------------------------------------------------------------------------
# Running a sweep
# ---------------------------------------------------------------------------------------------
def _num_classes(run) -> int:
    x, _ = run.test.batch([0])
    with no_grad():
        return int(run.model(x).data.shape[1])


def _bits_fields(dist, level, weights: dict, score) -> dict:
    """Bits-per-weight fields of a row (addnorm and multunif), see ``bits.py``."""
    if dist.name == "addnorm":
        report = _bits.addnorm_bits(weights, level)
    elif dist.name == "multunif":
        report = _bits.multunif_bits(weights, level)
    else:
        return {}
    fields = report.as_json()
    if score.noise_power:
        mean_noise = {k: math.fsum(d[k] for d in score.noise_power) / len(score.noise_power)
                      for k in weights}
        empirical = _bits.bits_report(weights, mean_noise)
        fields["bits_per_weight_empirical"] = _bits.finite_or_none(empirical.per_weight)
    return fields


def run_sweep(run, distortion, levels=None, *, draws: int | None = None, layer=None,
              per_layer: bool = False, shard=None, seed: int = 0, bn=None,
              bn_batches: int | None = None, bn_batch_size: int = 50,
              test_subset: int | None = None,
              eval_batch_size: int = 500, data_dir=None, restart: bool = False,
              progress: bool = True) -> list:
    """Sweep ``distortion`` over ``levels`` for a trained run; returns the sweep's merged rows.

    run: a run folder (``tinyproj train --out``) or a ``LoadedRun``. distortion: "addnorm" |
    "multunif" | "power". levels: the grid (default: the distortion's). draws: K (default:
    DEFAULT_DRAWS for addnorm and multunif, 1 for power; K > 1 for power gives an error bar
    over the re-estimation's training images). bn: a ``bn_estimate.BNProtocol``; None with
    ``bn_batches`` given: the old protocol, ``bn_batches`` batches of ``bn_batch_size``;
    neither: ``BNProtocol()``, exact over a full pass of the training set. layer: one weight name, or per_layer=True for every weight
    layer one at a time (the others exact). shard: ``"i/n"`` or ``(i, n)``, 0 <= i < n: do
    only grid points i, i+n, … and write them to the shard's own file. seed, bn_batches,
    bn_batch_size, test_subset, eval_batch_size: as in ``scoring.score_distortion``.
    data_dir: where the run's dataset is, when it moved. restart: move this sweep's files
    (all shards) to ``sweeps/replaced/<time>/`` first. Points already in any file of this
    sweep are skipped (resume); rows of another network or other settings are refused
    (module docstring).

    Returns every finished row of the sweep, all shards (as :func:`merge_sweep_files`).
    """
    from ..runs.training import LoadedRun, load_run

    dist = get_distortion(distortion)
    levels = check_levels(dist, levels)
    shard = parse_shard(shard)
    if layer is not None and per_layer:
        raise UserError("give either layer=NAME / --layer (one layer) or per_layer=True / "
                        "--per-layer (every layer), not both")
    if draws is None:
        draws = DEFAULT_DRAWS if dist.stochastic else 1
    if bn is None:
        bn = BNProtocol() if bn_batches is None else BNProtocol.batches(bn_batches,
                                                                       bn_batch_size)
    if not isinstance(draws, int) or isinstance(draws, bool) or draws < 1:
        raise UserError(f"draws (--draws) must be an integer >= 1; got {draws!r}")
    if restart and shard is not None:
        raise UserError("--restart moves every shard's file of the sweep aside; run it once "
                        "without --shard, then start the shards")
    if not isinstance(run, LoadedRun):
        run = load_run(run, data_dir=data_dir)
    model = run.model
    order = list(select_weights(model))
    if per_layer:
        layers = order
    elif layer is not None:
        layers = list(select_weights(model, layer))
    else:
        layers = [None]

    name = sweep_name(dist, per_layer=per_layer or layer is not None)
    pos = (run.meta or {}).get("pos", {})
    settings = {"distortion": dist.name, "seed": seed, **bn.settings(len(run.train)),
                "test_subset": test_subset, "checkpoint_step": pos.get("step"), "draws": draws}
    grid = sweep_grid(run.folder, name, shard, settings)
    if restart:
        grid.move_aside()
    network = network_fingerprint(model.state_dict())
    done = grid.finished(network)               # refuses rows of another network or settings
    mine = grid.mine(grid_points(layers, levels))
    todo = [p for p in mine if p not in done]

    chance = 1.0 - 1.0 / _num_classes(run)
    clean = {n: p.data for n, p in select_weights(model).items()}
    bar = progress_bar(progress, len(mine))
    bar.reset(f"{name}{'' if shard is None else f' {shard[0]}/{shard[1]}'}",
              done=len(mine) - len(todo))
    try:
        for layer_name, level in todo:
            start = time.perf_counter()
            spec = dist.spec(level)
            chosen = None if layer_name is None else [layer_name]
            score = scoring.score_distortion(
                model, run.train, run.test, spec, draws=draws, layers=chosen, seed=seed,
                bn=bn, test_subset=test_subset,
                eval_batch_size=eval_batch_size, measure_noise=dist.name != "power")
            weights = clean if layer_name is None else {layer_name: clean[layer_name]}
            row = {"distortion": dist.name, "param": dist.param, "level": level, "spec": spec,
                   "layer": layer_name,
                   "layer_index": None if layer_name is None else order.index(layer_name),
                   "error_mean": score.mean, "error_std": score.std, "errors": score.errors,
                   "draws": score.draws, "n_test": score.n_test, "chance_error": chance,
                   **{k: settings[k] for k in SETTINGS_KEYS if k not in ("distortion", "draws")},
                   "bn_protocol": bn.kind,
                   **_bits_fields(dist, level, weights, score),
                   "seconds": round(time.perf_counter() - start, 3)}
            grid.append(row, network)             # one whole line, or nothing
            bar.update(1, level=level, error=f"{100 * score.mean:.1f}%")
    finally:
        bar.close()
    return sorted(grid.finished(network).values(), key=_sort_key)
