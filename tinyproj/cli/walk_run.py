"""Running `tinyproj walk`: the flags checked, the library's study called, its results shown.

    cmd_walk(args)
        every flag checked (walk_args.check_args, the sites against the network's,
        --site-repeats, --out): nothing written before this
        one study of walking_noise/study.py, with the flags as Training and Scoring
        (walk_models.py):
            clean_study            --protocol clean (--run: that trained network)
            noisy_study            --train-noise S
            train_at_sigma_study   --protocol train-at-sigma
        which writes the rows, RUN_DIR/midpoints.csv and walk-points.csv; then the figures
        and the table (walk_report.py) and the names of the result files

The study checks --out again and marks it as walk's (walking_noise/study_folder.py), so later
runs resume there. It returns the points of *this* command on file and how many it has, so a
table of a shard says how much is missing.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..walking_noise import walk_sites
from ..walking_noise.study import clean_study, noisy_study, train_at_sigma_study
from ..walking_noise.study_folder import check_out_folder
from ..walking_noise.study_networks import run_skeleton
from .walk_args import check_args, check_site_repeats
from .walk_models import scoring, skeleton, training
from .walk_report import print_table, write_figures

__all__ = ["cmd_walk"]


def cmd_walk(args) -> int:
    """`tinyproj walk` (module docstring); the exit status."""
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
    _check_data_dir(args)
    out = Path(args.out)
    check_out_folder(out)                         # walk writes into a folder of its own only
    common = dict(training=training(args), scoring=scoring(args), sites=sites, seeds=seeds,
                  shard=shard, restart=args.restart, progress=not args.no_progress, log=log)
    if args.protocol == "train-at-sigma":
        done = train_at_sigma_study(out, spec, sigmas, clamp=args.clamp, **common)
    elif args.train_noise is None:
        done = clean_study(out, spec, sigmas, run=args.run, train_only=args.train_only,
                           **common)
    else:
        done = noisy_study(out, spec, sigmas, train_noise=args.train_noise, clamp=args.clamp,
                           train_only=args.train_only, **common)
    if done is None:                              # --train-only
        return 0
    rows, total, table = done
    figures = write_figures(rows, table, out)
    if not args.quiet:
        print(f"\n{len(rows)} of {total} point(s) of this walk done, in {out / 'walk.jsonl'}"
              f"{' and its shard files' if shard is not None else ''}; midpoints in "
              f"{out / 'midpoints.csv'}")
        if len(rows) < total:
            print("(the midpoints are of the points done so far; the other shards' points "
                  "follow when they finish)")
        print_table(table)
        names = ["walk.jsonl", "midpoints.csv", "walk-points.csv"] + [f.name for f in figures]
        print(f"\nresults in {out}/: {', '.join(names)}")
    return 0


def _check_data_dir(args) -> None:
    """A --data-dir (or $TINYPROJ_DATA) that does not exist is refused before anything is
    written or downloaded, as `train` does; with --run and no --data-dir the run's own data
    folder (config.json) is used and checked when it is loaded."""
    from ..data.location import check_data_dir
    from ..runs.folder import read_config
    if args.run is None:
        check_data_dir(args.data_dir, args.dataset)
    elif args.data_dir is not None:
        check_data_dir(args.data_dir, read_config(args.run).dataset)
