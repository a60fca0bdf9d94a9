"""Sweeps: test error against the strength of a distortion (Figures 2A-C), resumable and shardable.

Three distortions, each with a default grid spanning the paper's range::

    addnorm   sigma  0 … 1      AddNorm(σ) = w + N(0, alpha·σ)     error grows with σ (Fig. 2A)
    multunif  gamma  1 … 0.05   MultUnif(γ) = w·U(γ, 1/γ)          error grows as γ falls (2B)
    power     beta   0 … 2      Power(β) = alpha·|w/alpha|^β·sign(w)  β = 1 exact, 0 = Sign (2C)

Level ``x`` of a distortion is the spec ``addnorm:sigma=x`` / ``multunif:gamma=x`` /
``power:beta=x``. Power is deterministic and gets one draw; the noisy ones get K draws.

Every grid point (layer, level) is scored with ``scoring.score_distortion`` (batch norm
re-estimated per draw) and appended at once, atomically, as one JSON line to the sweep file
(see ``shards.py`` for file names). A sweep that is stopped (Ctrl-C, a crash, a SLURM time
limit) resumes when run again with the same settings: finished points are read back and
skipped, none is lost or repeated. ``layer`` (one layer) and ``walk`` (every weight layer in
model order, one at a time) distort that layer only, every other layer exact: the per-layer
robustness profile, written to ``walk-<distortion>.jsonl``.

Fields of a row::

    distortion, param, level, spec       "addnorm", "sigma", 0.3, "addnorm:sigma=0.3"
    layer, layer_index                   distorted weight name and its position in model
                                         order; null for the whole network
    error_mean, error_std, errors, draws test error (fraction) over the K draws (std: ddof=1)
    n_test, chance_error                 test images scored; 1 − 1/classes
    seed, bn_batches, bn_batch_size,     the settings (equal across a sweep; checked on resume)
    test_subset, checkpoint_step
    bits_per_weight, bits_per_weight_pooled, bits_per_layer      addnorm, multunif (exact)
    bits_per_weight_empirical            addnorm, multunif: Q_n measured from the K draws
    seconds                              time taken by this point

Bits are over the distorted layers only (``bits.py``); infinite bits (σ = 0, γ = 1) are null.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from ..runs.files import append_jsonl
from ..tensor import no_grad
from . import bits as _bits
from . import scoring
from .scoring import DEFAULT_DRAWS, select_weights
from .shards import (SETTINGS_KEYS, merge_sweep_files, parse_shard, row_key, shard_points,
                     sweep_files, sweep_path)

__all__ = ["Distortion", "DISTORTIONS", "get_distortion", "check_levels", "sweep_name",
           "grid_points", "run_sweep", "DEFAULT_DRAWS"]


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
        raise ValueError(f"unknown distortion {name!r}; valid distortions: "
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
            raise ValueError(f"{dist.name}: level {level!r} is not a number") from None
        dist.spec(value)                          # raises with the rule when out of range
        if value not in out:
            out.append(value)
    if not out:
        raise ValueError(f"{dist.name}: no levels to sweep (default grid: "
                         f"{', '.join(map(str, dist.levels))})")
    return out


def sweep_name(distortion, per_layer: bool = False) -> str:
    """``addnorm`` for a whole-network sweep, ``walk-addnorm`` for a layer-by-layer one."""
    name = get_distortion(distortion).name
    return f"walk-{name}" if per_layer else name


def grid_points(layers: list, levels: list) -> list:
    """``[(layer, level), ...]``: for each layer (None = all) every level, in the given orders."""
    return [(layer, level) for layer in layers for level in levels]


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


def _check_resume(existing: list, settings: dict, name: str, folder: Path) -> None:
    if not existing:
        return
    old = {k: existing[0].get(k) for k in SETTINGS_KEYS}
    diff = {k: (old[k], settings[k]) for k in SETTINGS_KEYS if old[k] != settings[k]}
    if diff:
        said = ", ".join(f"{k}={a!r} (now {b!r})" for k, (a, b) in diff.items())
        raise ValueError(f"the sweep {name!r} in {folder} was started with other settings: "
                         f"{said}. Run it again with the same settings to resume it, or start "
                         "it afresh with --restart (restart=True), which deletes its files.")


def run_sweep(run, distortion, levels=None, *, draws: int = DEFAULT_DRAWS, layer=None,
              walk: bool = False, shard=None, seed: int = 0, bn_batches: int = 20,
              bn_batch_size: int = 50, test_subset: int | None = None,
              eval_batch_size: int = 500, data_dir=None, restart: bool = False,
              progress: bool = True, progress_position: int = 0) -> list:
    """Sweep ``distortion`` over ``levels`` for a trained run; returns the sweep's merged rows.

    run: a run folder (``tinyproj train --out``) or a ``training.LoadedRun``. distortion:
    "addnorm" | "multunif" | "power". levels: the grid (default: the distortion's). draws: K
    for addnorm and multunif (power always 1). layer: one weight name, or walk=True for every
    weight layer one at a time (the others exact). shard: ``"i/n"`` or ``(i, n)``, 0 <= i < n:
    do only grid points i, i+n, … and write them to the shard's own file. seed, bn_batches,
    bn_batch_size, test_subset, eval_batch_size: as in ``scoring.score_distortion``.
    data_dir: where the run's dataset is, when it moved. restart: delete this sweep's files
    first. Points already in any file of this sweep are skipped (resume).

    Returns ``merge_sweep_files(run_dir, name)``: every finished row of the sweep, all shards.
    """
    from ..runs.training import LoadedRun, load_run

    dist = get_distortion(distortion)
    levels = check_levels(dist, levels)
    shard = parse_shard(shard)
    if layer is not None and walk:
        raise ValueError("give either layer=NAME (one layer) or walk=True (every layer), not both")
    if not isinstance(run, LoadedRun):
        run = load_run(run, data_dir=data_dir)
    model = run.model
    order = list(select_weights(model))
    if walk:
        layers = order
    elif layer is not None:
        layers = list(select_weights(model, layer))
    else:
        layers = [None]
    draws = draws if dist.stochastic else 1
    if not isinstance(draws, int) or isinstance(draws, bool) or draws < 1:
        raise ValueError(f"draws must be an integer >= 1; got {draws!r}")

    name = sweep_name(dist, per_layer=walk or layer is not None)
    if restart:
        if shard is not None:
            raise ValueError("restart deletes every shard's file of the sweep; run it once "
                             "without --shard (or delete the files by hand), not from a shard")
        for path in sweep_files(run.folder, name):
            path.unlink()
    out = sweep_path(run.folder, name, shard)
    pos = (run.meta or {}).get("pos", {})
    settings = {"distortion": dist.name, "seed": seed, "bn_batches": bn_batches,
                "bn_batch_size": bn_batch_size, "test_subset": test_subset,
                "checkpoint_step": pos.get("step"), "draws": draws}
    existing = merge_sweep_files(run.folder, name)
    _check_resume(existing, settings, name, out.parent)
    done = {row_key(r) for r in existing}
    mine = shard_points(grid_points(layers, levels), shard)
    todo = [p for p in mine if (p[0], p[1]) not in done]

    chance = 1.0 - 1.0 / _num_classes(run)
    clean = {n: p.data for n, p in select_weights(model).items()}
    bar = _bar(progress, len(mine), len(mine) - len(todo), progress_position,
               f"{name}{'' if shard is None else f' {shard[0]}/{shard[1]}'}")
    try:
        for layer_name, level in todo:
            start = time.perf_counter()
            spec = dist.spec(level)
            chosen = None if layer_name is None else [layer_name]
            score = scoring.score_distortion(
                model, run.train, run.test, spec, draws=draws, layers=chosen, seed=seed,
                bn_batches=bn_batches, bn_batch_size=bn_batch_size, test_subset=test_subset,
                eval_batch_size=eval_batch_size, measure_noise=dist.name != "power")
            weights = clean if layer_name is None else {layer_name: clean[layer_name]}
            row = {"distortion": dist.name, "param": dist.param, "level": level, "spec": spec,
                   "layer": layer_name,
                   "layer_index": None if layer_name is None else order.index(layer_name),
                   "error_mean": score.mean, "error_std": score.std, "errors": score.errors,
                   "draws": score.draws, "n_test": score.n_test, "chance_error": chance,
                   **{k: settings[k] for k in SETTINGS_KEYS if k not in ("distortion", "draws")},
                   **_bits_fields(dist, level, weights, score),
                   "seconds": round(time.perf_counter() - start, 3)}
            append_jsonl(out, row)                 # atomic: the file has the row or not
            if bar is not None:
                bar.set_postfix(level=level, error=f"{100 * score.mean:.1f}%", refresh=False)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return merge_sweep_files(run.folder, name)


def _bar(enabled, total, initial, position, desc):
    """A tqdm bar over grid points (None when off or tqdm is missing)."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, position=position, desc=desc, unit="point",
                leave=position == 0, dynamic_ncols=True)
