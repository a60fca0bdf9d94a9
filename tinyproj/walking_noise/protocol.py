"""The authors' noisy-training protocol: train at σ, test at the same σ, one network per point.

Walking Noise's noisy-training curves (docs/papers.md §2.4; the authors' experiment configurations,
``enable_in_training: 1``) are not a walk of one trained network. Every point is its own
network::

    for each site k (one at a time; or "all" / "all-no-bn": global noise):
        for each σ of the grid:
            for each seed s:
                train a fresh network (seed s) with noise σ at site k     (train_noisy)
                test it with noise σ at site k                            -> one row

The accuracy against σ of those networks, and its midpoint μ (``midpoint.py``), are the
paper's noisy-training quantities; μ per seed, its geometric mean and spread over seeds come
from ``tables.midpoints_table`` (rows trained at the σ they are tested at form one curve:
``train_sigma`` reads "sigma"), the accuracy's mean and spread over seeds per point from
:func:`~tinyproj.walking_noise.tables.point_spread` (importable from here too).

Rows are ordinary walk rows (``walk.py``: one ``walk()`` call of the trained network at its
own (site, σ)), tagged ``protocol="train-at-sigma"``, ``train_sigma`` (= σ) and the
training's settings (model, bn, dataset, n_train, epochs, lr, batch_size, clamp, and the
set-up of ``setups.py`` unless legacy: part of a point's key), and stamped with the fingerprint of the network. They go into the result grid of
``runs/grid.py``, so the protocol is

- resumable: a point whose row is on file is skipped before anything is trained; a network
  trained but not yet tested (a kill in between) is read back from ``models_dir``, not
  retrained; a point on file whose saved network is another one, or a saved network trained
  with other settings, is refused (UserError);
- shardable: ``shard="i/n"`` trains and tests units i, i+n, … of the (site, σ, seed) list
  into its own file; several processes on disjoint ``sites`` may append to one file (each
  row is one locked line).

σ = 0 (the linear grids) trains the network cleanly through the same loop.
"""
from __future__ import annotations

import re
from pathlib import Path

from .. import backend
from ..errors import UserError
from ..runs.fingerprint import network_fingerprint
from ..runs.files import load_checkpoint, save_checkpoint
from ..runs.grid import parse_shard, shard_points
from .noise import parse_noise
from .noisy_training import build_walk_model, source_classes, train_noisy
from .setups import (DEFAULT_SETUP, check_setup, recorded_setup, setup_hint, setup_settings,
                     setup_tag)
from .sites import NoisyModel
from .tables import point_spread, write_point_spread_csv
from .walk import check_sigmas, point_settings, row_key, walk, walk_grid, walk_sites

__all__ = ["PROTOCOLS", "train_at_sigma", "protocol_units", "point_spread",
           "write_point_spread_csv", "model_path"]

PROTOCOLS = ("clean", "train-at-sigma")
"""``tinyproj walk --protocol``: walk a cleanly trained network (default), or the authors'
one network per (site, σ, seed) trained and tested at σ."""


def protocol_units(site_list, sigmas, seeds) -> list:
    """The (site, σ, seed) units in order: site, then σ, then seed (a shard takes every n-th)."""
    return [(site, float(sigma), int(seed)) for site in site_list for sigma in sigmas
            for seed in seeds]


def model_path(models_dir, spec, site_name: str, sigma: float, seed: int, clamp=None) -> Path:
    """Where the network of one unit is saved: ``<kind>-<site>-sigma<σ>-seed<s>.npz``.

    At σ = 0 the training has no noise anywhere, so the network does not depend on the site
    (nor the kind): one file ``clean-sigma0-seed<s>.npz`` serves every site of the seed.
    """
    if float(sigma) == 0.0:
        site_name, kind = "clean", ""
    else:
        kind = spec.label.replace(":", "-").replace(",", "-").replace("=", "") + "-"
    text = f"{kind}{site_name}-sigma{sigma:g}-seed{seed}" + \
        ("" if clamp is None else f"-clamp{clamp:g}")
    return Path(models_dir) / (re.sub(r"[^A-Za-z0-9.+-]", "_", text) + ".npz")


def train_at_sigma(model_name, train_source, test_source, noise, sigmas, sites="each",
                   seeds=(0,), epochs: int | None = None, *, out_file=None, models_dir=None,
                   shard=None, bn: bool = False, clamp=None, test_subset=None, repeats: int = 1,
                   repeat_at=None, site_repeats=None, num_classes=None,
                   batch_size: int | None = None, lr: float | None = None,
                   dataset: str = "synthetic", setup: str = DEFAULT_SETUP,
                   progress: bool = False, log=None, compute: bool = True) -> list:
    """Train and test one network per (site, σ, seed) at that σ; returns the rows.

    model_name: "mlp_tfc" | "lenet5" (built per seed, with ``bn``). noise: the kind
    ("additive", "multiplicative", "combined:ratio=0.3,order=add-mul"; a σ in it is
    ignored). sigmas: the grid (σ = 0 allowed: a clean network). sites: "each", "all",
    "all-no-bn" or a list of names/indices. seeds, epochs, batch_size, lr, clamp: the
    trainings (``train_noisy``); setup: their set-up (``setups.py``, default the authors';
    epochs, batch_size, lr: None takes the set-up's for (model, ``dataset``)). test_subset: score the first N test images. repeats,
    repeat_at, site_repeats: repeated execution at test (``noise.py``). out_file: the walk
    file (None: in memory only); models_dir: where each network is saved (None: not saved).
    shard: "i/n" of the unit list. compute=False: train nothing, return the rows on file.

    Returns the rows of this call's units (the shard's), in unit order, those already on
    file included.
    """
    spec = parse_noise(noise)
    sigmas = check_sigmas(sigmas, allow_zero=True)
    setup = check_setup(setup)
    settings = setup_settings(setup, model_name, dataset)
    epochs, lr, batch_size = (settings[k] if v is None else v for k, v in
                              (("epochs", epochs), ("lr", lr), ("batch_size", batch_size)))
    seeds = [int(s) for s in seeds]
    shard = parse_shard(shard)
    say = log or (lambda text: None)
    if num_classes is None:
        num_classes = source_classes(train_source)
    skeleton = NoisyModel(build_walk_model(model_name, train_source.input_shape, num_classes,
                                           backend.make_rng(0), bn=bn, setup=setup), None)
    site_list = walk_sites(skeleton, sites)
    units = shard_points(protocol_units(site_list, sigmas, seeds), shard)
    eval_spec = spec.replace(repeats=repeats, **({} if repeat_at is None else
                                                 {"repeat_at": repeat_at}))
    if site_repeats is not None:
        eval_spec = eval_spec.replace(site_repeats=tuple(site_repeats), repeat_at="site")
    options = dict(repeats=repeats, repeat_at=eval_spec.repeat_at, site_repeats=site_repeats,
                   test_subset=test_subset, progress=False, allow_zero=True)

    def name(site):
        return {-1: "all", -2: "all-no-bn"}.get(site) or skeleton.sites[site].name

    made = {"model": str(model_name).strip().lower().replace("-", "_"), "bn": bool(bn),
            "dataset": dataset, "n_train": len(train_source), "epochs": epochs, "lr": lr,
            "batch_size": batch_size, "clamp": clamp, **setup_tag(setup)}

    def tags(sigma):                     # the training is part of a point's settings
        return {"protocol": "train-at-sigma", "train_sigma": sigma, **made}

    def read_back(path):
        """The state saved at ``path``, refused when trained with other settings."""
        state, _, meta = load_checkpoint(path)
        diff = {k: (meta[k], v) for k, v in made.items() if k in meta and meta[k] != v}
        if recorded_setup(meta) != setup:        # a network saved before set-ups had names
            diff["setup"] = (recorded_setup(meta), setup)          # reads as legacy's
        if diff:
            said = ", ".join(f"{k}: trained with {a!r}, now {b!r}" for k, (a, b) in diff.items())
            raise UserError(f"{path} holds a network trained with other settings ({said}); use "
                            "the same settings, or write elsewhere (another --out / "
                            "models_dir)." + setup_hint(diff), flag="--out")
        return state

    def key(site, sigma, seed):
        return row_key(point_settings(eval_spec, site, sigma, seed=seed,
                                      test_subset=test_subset, tags=tags(sigma)))

    on_file = {}
    if out_file is not None:
        on_file = {row_key(r): r for r in walk_grid(out_file).rows()}
    rows = []
    for n, (site, sigma, seed) in enumerate(units, 1):
        path = None if models_dir is None else model_path(models_dir, spec, name(site), sigma,
                                                          seed, clamp)
        done = on_file.get(key(site, sigma, seed))
        if done is not None:
            if path is not None and path.exists():       # the row must be of this network
                state = read_back(path)
                if network_fingerprint(state) != done.get("network"):
                    raise UserError(f"{out_file} holds a row for {name(site)} σ={sigma:g} seed "
                                    f"{seed} measured on another network than {path}; write "
                                    "elsewhere (another --out) or run with --restart",
                                    flag="--restart")
            rows.append(done)
            continue
        if not compute:
            continue
        model = build_walk_model(model_name, train_source.input_shape, num_classes,
                                 backend.make_rng(seed), bn=bn, setup=setup)
        if path is not None and path.exists():
            model.load_state_dict(read_back(path))
            say(f"[{n}/{len(units)}] read back {path.name}")
        else:
            say(f"[{n}/{len(units)}] train at σ: {spec.label} σ={sigma:g} at {name(site)}, "
                f"seed {seed}, {epochs} epoch(s)")
            where = {-1: "all", -2: "all-no-bn"}.get(site, [site])
            model, dyn = train_noisy(model, train_source, spec.with_sigma(sigma), sites=where,
                                     epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                                     clamp=clamp, record_dynamics=True, progress=progress,
                                     allow_clean=True, dataset=dataset, setup=setup)
            if path is not None:
                save_checkpoint(path, model.state_dict(), {"state": [], "hyper": {}, "t": 0},
                                dict(made, protocol="train-at-sigma",
                                     site=site if sigma else None,
                                     site_name=name(site) if sigma else "clean", sigma=sigma,
                                     seed=seed, noise=spec.label, dynamics=dyn))
        model.eval()
        rows += walk(model, train_source, test_source, eval_spec, [sigma], [site], seed=seed,
                     out_file=out_file, out_shard=shard, tags=tags(sigma), **options)
    return rows
