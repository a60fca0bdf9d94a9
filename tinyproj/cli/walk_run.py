"""Running `tinyproj walk`: one of three ways of getting walk rows, then the tables and figures.

    cmd_walk(args)
        every flag checked (walk_args.check_args): nothing written before this
        rows, total = one of
            clean_walk       --protocol clean: the clean network of each seed (trained with
                             the set-up, or --run's) walked over every (site, σ)
            noisy_walk       --train-noise S: one network per (seed, site) trained with noise
                             S there, walked over every test σ at that site
            train_at_sigma   --protocol train-at-sigma: one network per (site, σ, seed)
                             trained and tested at σ (walking_noise/protocol.py)
        RUN_DIR/midpoints.csv (μ per site), walk-points.csv (accuracy per point over seeds),
        the figures (walk_report.py)

--out is checked before anything is written (walk_args.check_out_folder): a folder holding
files of walk's names that walk did not write is refused. The folder is then marked as
walk's (walk_args.WALK_MARK), so later runs resume there.

``rows`` are the points of *this* command that are on file (other shards' included, rows of
other commands left out), each checked against its network; ``total`` is how many points the
command has, so a table of a shard says how much is missing.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .walk_args import WALK_MARK, check_args, check_out_folder, check_site_repeats
from .walk_models import clean_run, noisy_model, run_skeleton, skeleton, train_config
from .walk_report import print_table, write_figures

__all__ = ["cmd_walk", "Walk"]


@dataclass
class Walk:
    """One command's walk: what ``check_args`` resolved, and where its rows go."""

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

    def claim(self) -> None:
        """Make --out (checked by walk_args.check_out_folder) and mark it as walk's; called
        once the data or the run is loaded, before the first file is written."""
        self.out.mkdir(parents=True, exist_ok=True)
        mark = self.out / WALK_MARK
        if not mark.is_file():
            mark.write_text("made by `tinyproj walk`, which may rewrite its files here "
                            "(walk.jsonl, dynamics.jsonl, midpoints.csv, walk-points.csv, "
                            "the figures)\n")


def _rows_on_file(w: Walk, calls) -> list:
    """The points of ``calls`` [(seed, model, sites, train, test)] on file, each checked
    against its network (a point of another network is refused)."""
    from ..walking_noise import walk
    rows = []
    for seed, model, s, tr, te in calls:
        rows += walk(model, tr, te, w.spec, w.sigmas, s, seed=seed, out_file=w.file,
                     compute=False, **w.options)
    return rows


def clean_walk(args, w: Walk):
    """Walk the clean network of every seed; ``(rows, total)``, or None after --train-only."""
    from ..walking_noise import NoisyModel, walk, walk_grid, walk_sites
    from ..walking_noise.setups import infer_setup, setup_tag
    if args.run is not None:
        from ..runs.training import load_run
        run = load_run(args.run, data_dir=args.data_dir)   # sites checked already (cmd_walk)
        tags = {k: v for k, v in w.options["tags"].items() if k != "setup"}
        w.options["tags"] = dict(tags, **setup_tag(infer_setup(run.config.to_dict())))
        # ^ the set-up the given run was trained with, not --setup's
        runs = {seed: run for seed in w.seeds}
        w.claim()
    else:
        w.claim()
        runs = {seed: clean_run(args, seed, w.out, w.shard, w.log) for seed in w.seeds}
    if args.train_only:
        w.log(f"trained: {', '.join(str(r.folder) for r in runs.values())}")
        return None
    calls = [(seed, r.model, w.sites, r.train, r.test) for seed, r in runs.items()]
    total = len(calls) * len(w.sigmas) * len(walk_sites(NoisyModel(calls[0][1], None), w.sites))
    if args.restart:
        walk_grid(w.file).move_aside()
    _rows_on_file(w, calls)                        # stale rows refused before any work
    for seed, model, s, tr, te in calls:
        walk(model, tr, te, w.spec, w.sigmas, s, seed=seed, out_file=w.file, shard=w.shard,
             **w.options)
    return _rows_on_file(w, calls), total


def noisy_walk(args, w: Walk):
    """--train-noise: train (or read back) this shard's networks, one per (seed, site), and
    walk each at its site; ``(rows, total)``, or None after --train-only."""
    from ..runs.build import build_data
    from ..runs.grid import shard_points
    from ..walking_noise import walk, walk_files, walk_grid, walk_path, walk_sites
    train_src, _, test_src, input_shape, num_classes = build_data(
        train_config(args, w.seeds[0], w.out))
    data = (train_src, test_src, input_shape, num_classes)
    w.claim()
    sk = skeleton(args)
    units = [(seed, site) for seed in w.seeds for site in walk_sites(sk, w.sites)]
    train_spec = w.spec.with_sigma(args.train_noise)
    dyn_file = walk_path(w.out / "dynamics.jsonl", w.shard)
    if args.restart:                  # the walk's rows and the networks' dynamics, together
        dest = walk_grid(w.file).move_aside()
        if dest is None:
            walk_grid(w.out / "dynamics.jsonl").move_aside()
        else:
            for f in walk_files(w.out / "dynamics.jsonl"):
                os.replace(f, dest / f.name)

    def network(seed, site, train=True):
        name = {-1: "all", -2: "all-no-bn"}.get(site) or sk.sites[site].name
        return noisy_model(args, train_spec, seed, site, name, w.out, data, dyn_file, w.log,
                           train=train)

    for seed, site in shard_points(units, w.shard):     # shards share out the networks
        model = network(seed, site)
        if not args.train_only:
            walk(model, train_src, test_src, w.spec, w.sigmas, [site], seed=seed,
                 out_file=w.file, out_shard=w.shard, **w.options)
    if args.train_only:
        return None
    calls = []
    for seed, site in units:                      # every unit's network that exists by now
        model = network(seed, site, train=False)
        if model is not None:
            calls.append((seed, model, [site], train_src, test_src))
    return _rows_on_file(w, calls), len(units) * len(w.sigmas)


def train_at_sigma(args, w: Walk):
    """The train-at-σ protocol: this shard's networks trained and tested; ``(rows, total)``
    with the rows of every unit on file (all shards)."""
    from ..runs.build import build_data
    from ..walking_noise import walk_grid, walk_sites
    from ..walking_noise.protocol import protocol_units, train_at_sigma as run_protocol
    walk_sites(skeleton(args), w.sites)          # a site typo stops here, before any data
    train_src, _, test_src, _, num_classes = build_data(train_config(args, w.seeds[0], w.out))
    w.claim()
    if args.restart:
        walk_grid(w.file).move_aside()
    common = dict(epochs=args.epochs, out_file=w.file, models_dir=w.out / "trained-at-sigma",
                  bn=bool(args.bn), clamp=args.clamp, test_subset=args.test_subset,
                  repeats=args.repeats, repeat_at=args.repeat_at,
                  site_repeats=args.site_repeats, num_classes=num_classes,
                  dataset=args.dataset, setup=args.setup)
    run_protocol(args.model, train_src, test_src, w.spec, w.sigmas, w.sites, w.seeds,
                 shard=w.shard, progress=not args.no_progress, log=w.log, **common)
    rows = run_protocol(args.model, train_src, test_src, w.spec, w.sigmas, w.sites, w.seeds,
                        compute=False, **common)
    total = len(protocol_units(walk_sites(skeleton(args), w.sites), w.sigmas, w.seeds))
    return rows, total


def cmd_walk(args) -> int:
    """`tinyproj walk` (module docstring); the exit status."""
    from ..walking_noise import midpoints_table, walk_sites, write_midpoints_csv
    from ..walking_noise.setups import setup_tag
    from ..walking_noise.tables import point_spread, write_point_spread_csv
    log = (lambda text: None) if args.quiet else print
    spec, sigmas, seeds, shard, sites = check_args(args)
    sk = skeleton(args) if args.run is None else run_skeleton(args.run)   # no data: < 1 s
    try:
        walk_sites(sk, sites)                     # a site typo stops here, before any data
    except UserError:
        raise
    except ValueError as err:                     # the model's own words: name the flag
        raise UserError(f"--sites: {err}", flag="--sites") from None
    check_site_repeats(args, sk)
    out = Path(args.out)
    check_out_folder(out)                         # walk writes into a folder of its own only
    options = dict(bn_protocol=args.bn_protocol, repeats=args.repeats,
                   test_subset=args.test_subset, bn_batches=args.bn_batches,
                   progress=not args.no_progress, tags={"train_sigma": args.train_noise,
                                                        "clamp": args.clamp,
                                                        **setup_tag(args.setup)},
                   repeat_at=args.repeat_at, site_repeats=args.site_repeats,
                   allow_zero=True)
    w = Walk(spec, sigmas, seeds, shard, sites, out, options, log)
    how = train_at_sigma if args.protocol == "train-at-sigma" else \
        clean_walk if args.train_noise is None else noisy_walk
    done = how(args, w)
    if done is None:                              # --train-only
        return 0
    rows, total = done
    table = midpoints_table(rows)
    write_midpoints_csv(out / "midpoints.csv", table)
    write_point_spread_csv(out / "walk-points.csv", point_spread(rows))
    figures = write_figures(rows, table, out)
    if not args.quiet:
        print(f"\n{len(rows)} of {total} point(s) of this walk done, in {w.file}"
              f"{' and its shard files' if shard is not None else ''}; midpoints in "
              f"{out / 'midpoints.csv'}")
        if len(rows) < total:
            print("(the midpoints are of the points done so far; the other shards' points "
                  "follow when they finish)")
        print_table(table)
        names = ["walk.jsonl", "midpoints.csv", "walk-points.csv"] + [f.name for f in figures]
        print(f"\nresults in {out}/: {', '.join(names)}")
    return 0
