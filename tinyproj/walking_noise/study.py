"""A walk study in a folder of its own: rows of one of three kinds, then μ per site.

    clean_study            the clean network of each seed (trained with the set-up, or the
                           given trained ``run``) walked over every (site, σ)
    noisy_study            one network per (seed, site) trained with noise ``train_noise``
                           there (``study_noisy_networks.py``), walked over every test σ at
                           that site: a curve of its own, not the paper's noisy training
    train_at_sigma_study   the authors' noisy training: one network per (site, σ, seed)
                           trained and tested at σ (``protocol.py``)

Each takes explicit settings — how networks are trained (:class:`Training`), how points are
scored (:class:`Scoring`), the noise, its σ grid, sites, seeds, a shard — checks the folder
``out`` (``study_folder.py``) and the sites before any data is loaded, marks the folder as
walk's, and returns a :class:`StudyResult` after writing OUT/midpoints.csv and
OUT/walk-points.csv (``study_tables.py``); ``train_only=True`` trains and returns None.
This is what ``tinyproj walk`` runs; a Python user gets the same rows and files::

    from tinyproj.walking_noise import Scoring, Training, clean_study
    done = clean_study("runs/wn", "additive", [0.1, 1, 10],
                       training=Training(dataset="synthetic", epochs=1), sites="each")
    done.rows, done.total, done.table        # this study's rows on file, its points, μ

``rows`` are the points of *this* study that are on file (other shards' included, rows of
other studies in the same file left out), each checked against its network; ``total`` is how
many points the study has, so a table of a shard says how much is missing. Run again to
resume; ``restart=True`` first moves the walk's files to OUT/replaced/<time>/.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

from ..runs.grid import parse_shard, shard_points
from .noise import parse_noise
from .protocol import protocol_units, train_at_sigma
from .setups import infer_setup, setup_tag
from .sites import NoisyModel
from .study_folder import check_out_folder, claim_folder
from .study_networks import Training, clean_run, run_skeleton, skeleton, train_config
from .study_noisy_networks import noisy_model
from .study_tables import write_study_tables
from .walk import walk
from .walk_points import default_sigmas, walk_sites
from .walk_store import walk_files, walk_grid, walk_path

__all__ = ["Scoring", "StudyResult", "clean_study", "noisy_study", "train_at_sigma_study",
           "resolved"]


@dataclass(frozen=True)
class Scoring:
    """How each point is scored (``walk()``'s keywords; ``tinyproj walk``'s --bn-protocol,
    --bn-batches, --repeats, --repeat-at, --site-repeats, --test-subset).

    repeat_at None: "site" when ``site_repeats`` (one N per site) is given, else "network"."""

    bn_protocol: str = "running"
    bn_batches: int = 20
    repeats: int = 1
    repeat_at: str | None = None
    site_repeats: list | None = None
    test_subset: int | None = None

    @property
    def repeat_at_resolved(self) -> str:
        """``repeat_at``, None resolved."""
        return self.repeat_at or ("site" if self.site_repeats is not None else "network")


class StudyResult(NamedTuple):
    rows: list      # this study's points on file, each checked against its network
    total: int      # how many points the study has (all shards)
    table: list     # μ per site (``tables.midpoints_table``), as in OUT/midpoints.csv


def resolved(training: Training) -> Training:
    """``training`` with its dataset's canonical name and the set-up's epochs filled in."""
    cfg = train_config(training, 0, "unused")            # validated, no I/O
    return replace(training, dataset=cfg.dataset, epochs=cfg.epochs)


@dataclass
class _Study:
    """One study's resolved settings and where its rows go."""

    spec: object            # NoiseSpec
    sigmas: list
    seeds: list
    shard: tuple | None
    sites: object           # "each" | "all" | "all-no-bn" | [names/indices]
    out: Path
    options: dict           # walk()'s keywords shared by every call (tags included)
    log: object

    @property
    def file(self) -> Path:
        return self.out / "walk.jsonl"

    def rows_on_file(self, calls) -> list:
        """The points of ``calls`` [(seed, model, sites, train, test)] on file, each checked
        against its network (a point of another network is refused)."""
        rows = []
        for seed, model, s, tr, te in calls:
            rows += walk(model, tr, te, self.spec, self.sigmas, s, seed=seed,
                         out_file=self.file, compute=False, **self.options)
        return rows

    def finish(self, rows, total) -> StudyResult:
        return StudyResult(rows, total, write_study_tables(self.out, rows))


def _start(out, noise, sigmas, sites, seeds, shard, sk, scoring: Scoring, tags, progress,
           log) -> _Study:
    """Settings resolved, the sites checked against the skeleton ``sk`` and ``out`` checked:
    nothing loaded or written yet."""
    spec = parse_noise(noise)
    walk_sites(sk, sites)                       # a site typo stops here, before any data
    check_out_folder(out)
    options = dict(bn_protocol=scoring.bn_protocol, repeats=scoring.repeats,
                   test_subset=scoring.test_subset, bn_batches=scoring.bn_batches,
                   progress=progress, tags=tags, repeat_at=scoring.repeat_at_resolved,
                   site_repeats=scoring.site_repeats, allow_zero=True)
    return _Study(spec, default_sigmas(spec) if sigmas is None else list(sigmas),
                  [int(s) for s in seeds], parse_shard(shard), sites, Path(out), options,
                  log or (lambda text: None))


def clean_study(out, noise="additive", sigmas=None, *, training=Training(), scoring=Scoring(),
                sites="each", seeds=(0,), run=None, shard=None, train_only=False,
                restart=False, progress=True, log=print):
    """Walk the clean network of every seed (OUT/model, OUT/model-seed<S>; or the trained run
    folder ``run`` for every seed); a :class:`StudyResult`, or None with ``train_only``."""
    from ..runs.training import load_run
    training = training if run is not None else resolved(training)
    sk = skeleton(training) if run is None else run_skeleton(run)
    s = _start(out, noise, sigmas, sites, seeds, shard, sk, scoring,
               {"train_sigma": None, "clamp": None, **setup_tag(training.setup)}, progress, log)
    if run is not None:
        one = load_run(run, data_dir=training.data_dir)
        tags = {k: v for k, v in s.options["tags"].items() if k != "setup"}
        s.options["tags"] = dict(tags, **setup_tag(infer_setup(one.config.to_dict())))
        # ^ the set-up the given run was trained with, not training.setup
        runs = {seed: one for seed in s.seeds}
        claim_folder(s.out)
    else:
        claim_folder(s.out)
        runs = {seed: clean_run(training, seed, s.out, s.shard, s.log, progress)
                for seed in s.seeds}
    if train_only:
        s.log(f"trained: {', '.join(str(r.folder) for r in runs.values())}")
        return None
    calls = [(seed, r.model, s.sites, r.train, r.test) for seed, r in runs.items()]
    site_list = walk_sites(NoisyModel(calls[0][1], None), s.sites)
    total = len(calls) * len(s.sigmas) * len(site_list)
    if restart:
        walk_grid(s.file).move_aside()
    s.rows_on_file(calls)                        # stale rows refused before any work
    for seed, model, sites_, tr, te in calls:
        walk(model, tr, te, s.spec, s.sigmas, sites_, seed=seed, out_file=s.file,
             shard=s.shard, **s.options)
    return s.finish(s.rows_on_file(calls), total)


def noisy_study(out, noise="additive", sigmas=None, *, train_noise, clamp=None,
                training=Training(), scoring=Scoring(), sites="each", seeds=(0,), shard=None,
                train_only=False, restart=False, progress=True, log=print):
    """Train (or read back) this shard's networks, one per (seed, site) with noise σ =
    ``train_noise`` of the same kind at that site (weights clipped to [-clamp, clamp] when
    given), and walk each at its site; a :class:`StudyResult`, or None with ``train_only``."""
    from ..runs.build import build_data
    training = resolved(training)
    sk = skeleton(training)
    s = _start(out, noise, sigmas, sites, seeds, shard, sk, scoring,
               {"train_sigma": train_noise, "clamp": clamp, **setup_tag(training.setup)},
               progress, log)
    train_src, _, test_src, input_shape, num_classes = build_data(
        train_config(training, s.seeds[0], s.out))
    data = (train_src, test_src, input_shape, num_classes)
    claim_folder(s.out)
    units = [(seed, site) for seed in s.seeds for site in walk_sites(sk, s.sites)]
    train_spec = s.spec.with_sigma(train_noise)
    dyn_file = walk_path(s.out / "dynamics.jsonl", s.shard)
    if restart:                       # the walk's rows and the networks' dynamics, together
        dest = walk_grid(s.file).move_aside()
        if dest is None:
            walk_grid(s.out / "dynamics.jsonl").move_aside()
        else:
            for f in walk_files(s.out / "dynamics.jsonl"):
                os.replace(f, dest / f.name)

    def network(seed, site, train=True):
        name = {-1: "all", -2: "all-no-bn"}.get(site) or sk.sites[site].name
        return noisy_model(training, train_spec, seed, site, name, s.out, data, dyn_file,
                           s.log, clamp=clamp, test_subset=scoring.test_subset,
                           progress=progress, train=train)

    for seed, site in shard_points(units, s.shard):     # shards share out the networks
        model = network(seed, site)
        if not train_only:
            walk(model, train_src, test_src, s.spec, s.sigmas, [site], seed=seed,
                 out_file=s.file, out_shard=s.shard, **s.options)
    if train_only:
        return None
    calls = []
    for seed, site in units:                      # every unit's network that exists by now
        model = network(seed, site, train=False)
        if model is not None:
            calls.append((seed, model, [site], train_src, test_src))
    return s.finish(s.rows_on_file(calls), len(units) * len(s.sigmas))


def train_at_sigma_study(out, noise="additive", sigmas=None, *, clamp=None,
                         training=Training(), scoring=Scoring(), sites="each", seeds=(0,),
                         shard=None, restart=False, progress=True, log=print):
    """The train-at-σ protocol: this shard's networks (OUT/trained-at-sigma/) trained and
    tested; a :class:`StudyResult` with the rows of every unit on file (all shards)."""
    from ..runs.build import build_data
    training = resolved(training)
    sk = skeleton(training)
    s = _start(out, noise, sigmas, sites, seeds, shard, sk, scoring, None, progress, log)
    train_src, _, test_src, _, num_classes = build_data(
        train_config(training, s.seeds[0], s.out))
    claim_folder(s.out)
    if restart:
        walk_grid(s.file).move_aside()
    common = dict(epochs=training.epochs, out_file=s.file,
                  models_dir=s.out / "trained-at-sigma", bn=bool(training.bn), clamp=clamp,
                  test_subset=scoring.test_subset, repeats=scoring.repeats,
                  repeat_at=scoring.repeat_at_resolved, site_repeats=scoring.site_repeats,
                  num_classes=num_classes, dataset=training.dataset, setup=training.setup)
    train_at_sigma(training.model, train_src, test_src, s.spec, s.sigmas, s.sites, s.seeds,
                   shard=s.shard, progress=progress, log=s.log, **common)
    rows = train_at_sigma(training.model, train_src, test_src, s.spec, s.sigmas, s.sites,
                          s.seeds, compute=False, **common)
    return s.finish(rows, len(protocol_units(walk_sites(sk, s.sites), s.sigmas, s.seeds)))
